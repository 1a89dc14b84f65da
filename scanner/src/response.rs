//! Response: what `--revoke` does with findings `--verify` proved to be the broker's. Each is
//! revoked through the agent (`POST /v1/revoke` by fingerprint — the value never leaves the
//! scanner) and recorded as an incident: what, where it was found, what was done, when.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use sidekey::api::{RevokeAnswer, RevokeRequest};

use crate::finding::Finding;
use crate::owned::{request, Owned};

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
    /// What was done: `revoked_lease`, `regenerated`, `rotated`, `not_revocable`, `failed`,
    /// `dry_run`.
    pub action: String,
    /// Whether it is now unusable at its source.
    pub revoked: bool,
    /// The agent's words.
    pub detail: String,
}

/// Revokes every owned finding through the agent at `socket` (or only says what it would do,
/// when `dry_run`), marks findings `revoked`, and writes one incident line each to `log`.
pub fn revoke_owned(
    findings: &mut [Finding],
    owned: &Owned,
    socket: &Path,
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
                action: "dry_run".into(),
                revoked: false,
                lease_id: None,
                version: None,
                detail: format!("would ask the agent to revoke {owner}"),
            }
        } else {
            let body = serde_json::to_vec(&RevokeRequest {
                fingerprint: Some(print.clone()),
                ..Default::default()
            })?;
            let (status, answer) = request(socket, "POST", "/v1/revoke", &body)?;
            match serde_json::from_slice::<RevokeAnswer>(&answer) {
                Ok(a) => a,
                Err(_) => RevokeAnswer {
                    secret: owner.clone(),
                    action: "failed".into(),
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
            action: answer.action.clone(),
            revoked: answer.revoked,
            detail: answer.detail.clone(),
        };
        writeln!(log, "{}", serde_json::to_string(&incident)?)?;
        done.push((print, answer));
    }
    Ok(())
}
