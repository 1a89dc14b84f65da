//! Response: what `--revoke` does with findings `--verify` proved to be the broker's. Each is
//! revoked through the agent (`POST /v1/revoke` by fingerprint — the value never leaves the
//! scanner) and recorded as an incident: what, where it was found, what was done, when.
//!
//! What `--verify` proved live and the broker does not own is acted on at its issuer
//! ([`revoke_live`]): an AWS access key is deactivated through IAM with the operator's
//! credentials (the standard chain, never the leaked ones), a Vault token revokes itself.
//!
//! This module is the orchestration and the incident records; the calls themselves are the
//! issuers' ([`crate::issuer::aws`], [`crate::issuer::vault`]) and the agent's
//! ([`crate::agent`]).

use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;
use sidekey::api::{RevokeAction, RevokeAnswer};

use crate::finding::Finding;
use crate::issuer::{aws, vault, Action};
use crate::owned::Owned;
use crate::verify::{Live, Options};

/// One incident record (JSON line); never the value.
#[derive(Debug, Serialize)]
pub struct Incident<'a> {
    /// When the action was taken (RFC 3339 UTC).
    pub at: String,
    /// The rule that found it and its fingerprint (the report's, not the HMAC).
    pub rule_id: &'a str,
    /// The report fingerprint.
    pub fingerprint: &'a str,
    /// The broker secret it is.
    pub owned_secret: Option<&'a str>,
    /// Where it was found.
    pub path: &'a str,
    /// Line.
    pub line: usize,
    /// The commit that introduced it, for history findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'a str>,
    /// Whose credential it is, when the issuer said (an IAM user name, a Vault token's display
    /// name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'a str>,
    /// What was done.
    pub action: RevokeAction,
    /// Whether it is now unusable at its source.
    pub revoked: bool,
    /// What happened, in words (the agent's, or the issuer's).
    pub detail: String,
}

/// Where owned credentials are revoked: through the agent, or — from a machine without one —
/// their lease directly at Vault (the agent notices at its next renewal and re-issues).
pub enum Via<'a> {
    /// `POST /v1/revoke` on the agent's socket.
    Agent(&'a crate::agent::Agent),
    /// `sys/leases/revoke` with the lease id the registry published.
    Vault(&'a vault::Vault),
}

/// Revokes every owned finding `via` the agent or Vault (or only says what it would do, when
/// `dry_run`), marks findings `revoked`, and writes one incident line each to `log`.
pub fn revoke_owned(
    findings: &mut [Finding],
    owned: &Owned,
    via: Via<'_>,
    dry_run: bool,
    log: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut done: Vec<(String, RevokeAnswer)> = Vec::new();
    for f in findings.iter_mut() {
        let Some(owner) = f.owned_secret.clone() else { continue };
        let print = owned.fingerprint(f.secret.expose().as_bytes());
        // The same credential found twice is revoked once.
        let answer = if let Some((_, a)) = done.iter().find(|(p, _)| *p == print) {
            a.clone()
        } else if dry_run {
            RevokeAnswer {
                secret: owner.clone(),
                action: RevokeAction::DryRun,
                revoked: false,
                lease_id: None,
                version: None,
                detail: format!("would ask the agent to revoke {owner}"),
            }
        } else if let Via::Vault(vault) = &via {
            let lease = owned.lease_of(f.secret.expose().as_bytes()).map(str::to_owned);
            let (action, revoked, detail) = match &lease {
                None => (
                    RevokeAction::NotRevocable,
                    false,
                    format!("{owner} has no lease in the registry: revoke it through its agent or at its source"),
                ),
                Some(id) => match vault.revoke_lease(id) {
                    Ok(()) => (
                        RevokeAction::RevokedLease,
                        true,
                        format!("lease {id} revoked at Vault; the agent re-issues at its next renewal"),
                    ),
                    Err(e) => (
                        RevokeAction::Failed,
                        false,
                        format!("revoking lease {id} at Vault failed: {e:#}"),
                    ),
                },
            };
            RevokeAnswer {
                secret: owner.clone(),
                action,
                revoked,
                lease_id: lease,
                version: None,
                detail,
            }
        } else {
            let Via::Agent(agent) = &via else {
                unreachable!("matched above")
            };
            agent.revoke(&print, &owner)?
        };
        f.revoked = answer.revoked;
        let incident = Incident {
            at: sidekey::audit::format_time(SystemTime::now()),
            rule_id: &f.rule_id,
            fingerprint: &f.fingerprint,
            owned_secret: Some(&owner),
            path: &f.path,
            line: f.line,
            commit: f.commit.as_ref().map(|c| c.id.as_str()),
            principal: None,
            action: answer.action,
            revoked: answer.revoked,
            detail: answer.detail.clone(),
        };
        writeln!(log, "{}", serde_json::to_string(&incident)?)?;
        done.push((print, answer));
    }
    Ok(())
}

/// Acts on what `--verify` proved live and the broker does not own (or, when `dry_run`, only
/// says what it would do): a long-term AWS access key (`AKIA`) is deactivated — IAM
/// `GetAccessKeyLastUsed` names its user, `UpdateAccessKey Status=Inactive` with the operator's
/// credentials from the standard chain (at `--aws-endpoint-url`); temporary AWS credentials are
/// `not_revocable` (they expire; the role's sessions can be revoked by hand); a Vault token is
/// revoked with itself (`POST /v1/auth/token/revoke-self` at `--vault-addr`). Marks findings
/// `revoked` and writes one incident line per finding to `log`; never a value.
pub fn revoke_live(
    findings: &mut [Finding],
    live: &Live,
    opts: &Options,
    dry_run: bool,
    log: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut outcomes: Vec<(Vec<usize>, Action)> = Vec::new();
    if !live.aws.is_empty() {
        let keys: Vec<(&str, Option<String>)> = live
            .aws
            .iter()
            .map(|k| (k.key_id(findings), k.arn_user().map(str::to_owned)))
            .collect();
        let answers = if dry_run {
            keys.iter().map(|(id, user)| aws::dry_run(id, user.clone())).collect()
        } else {
            aws::deactivate_all(&keys, opts.aws_endpoint_url.as_deref())
        };
        outcomes.extend(live.aws.iter().map(|k| k.findings().collect()).zip(answers));
    }
    if !live.vault.is_empty() {
        let client = opts
            .vault_addr
            .as_deref()
            .map(|addr| vault::Client::for_tokens(addr, opts.vault_cacert.as_deref()).map_err(|e| format!("{e:#}")));
        for token in &live.vault {
            let name = token.display_name.clone();
            let accessor = token
                .accessor
                .as_deref()
                .map(|a| format!(" (accessor {a})"))
                .unwrap_or_default();
            let outcome = match (&client, dry_run) {
                (_, true) | (None, _) => Action::new(
                    RevokeAction::DryRun,
                    false,
                    name,
                    format!("would revoke the Vault token{accessor} (revoke-self)"),
                ),
                (Some(client), false) => {
                    let value = findings[token.findings[0]].secret.expose();
                    let addr = opts.vault_addr.as_deref().unwrap_or_default();
                    match client
                        .as_ref()
                        .map_err(String::clone)
                        .and_then(|c| c.revoke_self(value))
                    {
                        Ok(()) => Action::new(
                            RevokeAction::RevokedToken,
                            true,
                            name,
                            format!("revoked the Vault token{accessor} at {addr} (revoke-self)"),
                        ),
                        Err(why) => Action::new(
                            RevokeAction::Failed,
                            false,
                            name,
                            format!("revoke-self at {addr}: {why}"),
                        ),
                    }
                }
            };
            outcomes.push((token.findings.clone(), outcome));
        }
    }
    for (indices, outcome) in outcomes {
        for i in indices {
            let f = &mut findings[i];
            f.revoked |= outcome.revoked;
            let incident = Incident {
                at: sidekey::audit::format_time(SystemTime::now()),
                rule_id: &f.rule_id,
                fingerprint: &f.fingerprint,
                owned_secret: None,
                path: &f.path,
                line: f.line,
                commit: f.commit.as_ref().map(|c| c.id.as_str()),
                principal: outcome.principal.as_deref(),
                action: outcome.action,
                revoked: outcome.revoked,
                detail: outcome.detail.clone(),
            };
            writeln!(log, "{}", serde_json::to_string(&incident)?)?;
        }
    }
    Ok(())
}
