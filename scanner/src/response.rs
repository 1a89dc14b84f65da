//! Response: what `--revoke` does with findings `--verify` proved to be the broker's. Each is
//! revoked through the agent (`POST /v1/revoke` by fingerprint — the value never leaves the
//! scanner) and recorded as an incident: what, where it was found, what was done, when.
//!
//! What `--verify` proved live and the broker does not own is acted on at its issuer
//! ([`revoke_live`]): an AWS access key is deactivated through IAM with the operator's
//! credentials (the standard chain, never the leaked ones), a Vault token revokes itself.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use sidekey::api::{RevokeAction, RevokeAnswer, RevokeRequest};

use crate::agent;
use crate::finding::Finding;
use crate::owned::Owned;
use crate::verify::{self, Live, LiveAwsKey, Options};

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
    Agent(&'a Path),
    /// `sys/leases/revoke` with the lease id the registry published.
    Vault(&'a crate::registry::Vault),
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
            let Via::Agent(socket) = &via else {
                unreachable!("matched above")
            };
            let body = serde_json::to_vec(&RevokeRequest::Fingerprint(print.clone()))?;
            let (status, answer) = agent::request(socket, "POST", "/v1/revoke", &body)?;
            match serde_json::from_slice::<RevokeAnswer>(&answer) {
                Ok(a) => a,
                Err(_) => RevokeAnswer {
                    secret: owner.clone(),
                    action: RevokeAction::Failed,
                    revoked: false,
                    lease_id: None,
                    version: None,
                    detail: serde_json::from_slice::<sidekey::api::ErrorBody>(&answer)
                        .map(|e| e.error)
                        .unwrap_or_else(|_| format!("the agent answered {status}")),
                },
            }
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

/// What one action on a leaked credential came to.
struct Outcome {
    action: RevokeAction,
    revoked: bool,
    principal: Option<String>,
    detail: String,
}

impl Outcome {
    fn new(action: RevokeAction, revoked: bool, principal: Option<String>, detail: String) -> Outcome {
        Outcome {
            action,
            revoked,
            principal,
            detail,
        }
    }
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
    let mut outcomes: Vec<(Vec<usize>, Outcome)> = Vec::new();
    if !live.aws.is_empty() {
        let keys: Vec<&str> = live.aws.iter().map(|k| k.key_id(findings)).collect();
        let answers = if dry_run {
            live.aws.iter().zip(&keys).map(|(k, id)| aws_dry_run(k, id)).collect()
        } else {
            deactivate_aws(&live.aws, &keys, opts)
        };
        outcomes.extend(live.aws.iter().map(|k| k.findings().collect()).zip(answers));
    }
    if !live.vault.is_empty() {
        let agent = verify::http_agent();
        for token in &live.vault {
            let name = token.display_name.clone();
            let accessor = token
                .accessor
                .as_deref()
                .map(|a| format!(" (accessor {a})"))
                .unwrap_or_default();
            let outcome = match (&opts.vault_addr, dry_run) {
                (_, true) | (None, _) => Outcome::new(
                    RevokeAction::DryRun,
                    false,
                    name,
                    format!("would revoke the Vault token{accessor} (revoke-self)"),
                ),
                (Some(addr), false) => {
                    let value = findings[token.findings[0]].secret.expose();
                    match revoke_self(&agent, addr, value) {
                        Ok(()) => Outcome::new(
                            RevokeAction::RevokedToken,
                            true,
                            name,
                            format!("revoked the Vault token{accessor} at {addr} (revoke-self)"),
                        ),
                        Err(why) => Outcome::new(
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

/// What `--revoke` would do with a live AWS key (no call is made).
fn aws_dry_run(key: &LiveAwsKey, id: &str) -> Outcome {
    let user = key.arn_user().map(str::to_owned);
    if !long_term(id) {
        return temporary(user);
    }
    let whose = match &user {
        Some(u) => format!("IAM user {u}"),
        None => "its IAM user (GetAccessKeyLastUsed)".to_owned(),
    };
    Outcome::new(
        RevokeAction::DryRun,
        false,
        user,
        format!("would deactivate the access key of {whose} (UpdateAccessKey Status=Inactive)"),
    )
}

/// Whether an access key id is a long-term IAM user key, which IAM can deactivate.
fn long_term(id: &str) -> bool {
    id.starts_with("AKIA")
}

/// Temporary credentials: not deactivatable through IAM.
fn temporary(user: Option<String>) -> Outcome {
    Outcome::new(
        RevokeAction::NotRevocable,
        false,
        user,
        "temporary AWS credentials: IAM cannot deactivate them; they expire on their own, or revoke the \
         role's active sessions"
            .to_owned(),
    )
}

/// Deactivates each long-term key through IAM with the operator's credentials.
fn deactivate_aws(keys: &[LiveAwsKey], ids: &[&str], opts: &Options) -> Vec<Outcome> {
    let runtime = match verify::runtime() {
        Ok(r) => r,
        Err(e) => {
            return keys
                .iter()
                .map(|_| {
                    Outcome::new(
                        RevokeAction::Failed,
                        false,
                        None,
                        format!("no runtime for the AWS SDK: {e}"),
                    )
                })
                .collect()
        }
    };
    runtime.block_on(async {
        let config = verify::sdk_config(opts.aws_endpoint_url.as_deref(), true).await;
        let iam = aws_sdk_iam::Client::new(&config);
        let mut out = Vec::new();
        for (key, id) in keys.iter().zip(ids) {
            out.push(if long_term(id) {
                deactivate(&iam, id).await
            } else {
                temporary(key.arn_user().map(str::to_owned))
            });
        }
        out
    })
}

/// `GetAccessKeyLastUsed` (whose key) then `UpdateAccessKey Status=Inactive`.
async fn deactivate(iam: &aws_sdk_iam::Client, id: &str) -> Outcome {
    let hide = |text: String| text.replace(id, "the key");
    let user = match iam.get_access_key_last_used().access_key_id(id).send().await {
        Ok(out) => match out.user_name() {
            Some(u) => u.to_owned(),
            None => {
                return Outcome::new(
                    RevokeAction::Failed,
                    false,
                    None,
                    "IAM GetAccessKeyLastUsed named no user (a root key?): deactivate it by hand".to_owned(),
                )
            }
        },
        Err(e) => {
            return Outcome::new(
                RevokeAction::Failed,
                false,
                None,
                hide(format!("IAM GetAccessKeyLastUsed: {}", iam_error(&e))),
            )
        }
    };
    match iam
        .update_access_key()
        .user_name(&user)
        .access_key_id(id)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
    {
        Ok(_) => Outcome::new(
            RevokeAction::DeactivatedAccessKey,
            true,
            Some(user.clone()),
            format!("deactivated the access key of IAM user {user} (UpdateAccessKey Status=Inactive)"),
        ),
        Err(e) => Outcome::new(
            RevokeAction::Failed,
            false,
            Some(user.clone()),
            hide(format!("IAM UpdateAccessKey for user {user}: {}", iam_error(&e))),
        ),
    }
}

/// An IAM error in words: the service's code and message, or why it could not be reached.
fn iam_error<E>(e: &aws_sdk_iam::error::SdkError<E>) -> String
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match verify::service_error(e) {
        Some((code, message)) => format!("{code}: {message}"),
        None => verify::error_chain(e),
    }
}

/// `POST /v1/auth/token/revoke-self` with the token itself.
fn revoke_self(agent: &ureq::Agent, addr: &str, token: &str) -> Result<(), String> {
    let url = format!("{}/v1/auth/token/revoke-self", addr.trim_end_matches('/'));
    match agent.post(&url).set("X-Vault-Token", token).call() {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let errors = body["errors"]
                .as_array()
                .map(|e| e.iter().filter_map(|e| e.as_str()).collect::<Vec<_>>().join("; "))
                .unwrap_or_default();
            Err(format!("answered {code} {errors}").trim_end().to_owned())
        }
        Err(e) => Err(format!("could not be reached: {e}")),
    }
}
