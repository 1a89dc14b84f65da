//! The agent's socket API as the scanner uses it, through the one client of that API
//! ([`sidekey_client`]): the fingerprint set ([`fingerprints`]) and revocation by fingerprint
//! ([`revoke`], for [`crate::response`]). No value is ever sent, fingerprints only.

use std::path::Path;

use anyhow::Context as _;
use sidekey::api::{FingerprintSet, RevokeAction, RevokeAnswer, RevokeRequest};
use sidekey_client::blocking::Client;

/// `GET /v1/fingerprints`: the broker's fingerprint set.
pub fn fingerprints(socket: &Path) -> anyhow::Result<FingerprintSet> {
    let client = Client::new(socket).context("no runtime for the agent's client")?;
    client.fingerprints().map_err(|e| match e {
        sidekey_client::Error::Agent { .. } => anyhow::anyhow!(
            "--agent-socket {}: the agent refused the fingerprint set: {e}",
            socket.display()
        ),
        other => {
            anyhow::Error::new(other).context(format!("--agent-socket {}: cannot ask the agent", socket.display()))
        }
    })
}

/// `POST /v1/revoke` with `{"fingerprint": print}`; the agent's refusal is a `failed` answer
/// for `owner` (an agent that cannot be reached is an error).
pub fn revoke(socket: &Path, print: &str, owner: &str) -> anyhow::Result<RevokeAnswer> {
    let client = Client::new(socket).context("no runtime for the agent's client")?;
    match client.revoke(&RevokeRequest::Fingerprint(print.to_owned())) {
        Ok(answer) => Ok(answer),
        Err(e @ sidekey_client::Error::Agent { .. }) => Ok(RevokeAnswer {
            secret: owner.to_owned(),
            action: RevokeAction::Failed,
            revoked: false,
            lease_id: None,
            version: None,
            detail: e.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}
