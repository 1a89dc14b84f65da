//! The agent's socket API as the scanner uses it, through the one client of that API
//! ([`sidekey_client`]): the fingerprint set ([`Agent::fingerprints`]) and revocation by
//! fingerprint ([`Agent::revoke`], for [`crate::response`]). One [`Agent`] (and its runtime)
//! serves the whole scan. No value is ever sent, fingerprints only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sidekey::api::{FingerprintSet, RevokeAction, RevokeAnswer, RevokeRequest};
use sidekey_client::blocking::Client;

/// The agent at `--agent-socket`.
pub struct Agent {
    client: Client,
    socket: PathBuf,
}

impl Agent {
    /// A client of the agent at `socket` (nothing is sent yet).
    pub fn new(socket: &Path) -> anyhow::Result<Agent> {
        Ok(Agent {
            client: Client::new(socket).context("no runtime for the agent's client")?,
            socket: socket.to_owned(),
        })
    }

    /// `GET /v1/fingerprints`: the broker's fingerprint set.
    pub fn fingerprints(&self) -> anyhow::Result<FingerprintSet> {
        let socket = self.socket.display();
        self.client.fingerprints().map_err(|e| match e {
            sidekey_client::Error::Agent { .. } => {
                anyhow::anyhow!("--agent-socket {socket}: the agent refused the fingerprint set: {e}")
            }
            other => anyhow::Error::new(other).context(format!("--agent-socket {socket}: cannot ask the agent")),
        })
    }

    /// `POST /v1/revoke` with `{"fingerprint": print}`; the agent's refusal is a `failed`
    /// answer for `owner` (an agent that cannot be reached is an error).
    pub fn revoke(&self, print: &str, owner: &str) -> anyhow::Result<RevokeAnswer> {
        match self.client.revoke(&RevokeRequest::Fingerprint(print.to_owned())) {
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
}
