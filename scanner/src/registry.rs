//! Vault/OpenBao as seen by the scanner: the fingerprint registry agents publish
//! (`[registry]`, KV v2 `MOUNT/PATH/NAME`), and lease revocation when no agent is reachable.
//! Nothing here sends a value: fingerprints and lease ids only.

use std::path::Path;

use anyhow::{bail, Context as _};
use sidekey::api::RegistrySnapshot;
use zeroize::Zeroizing;

/// A Vault address and the token to use there.
pub struct Vault {
    addr: String,
    token: Zeroizing<String>,
}

/// One published fingerprint.
#[derive(Debug, Clone)]
pub struct Published {
    /// Lowercase hex HMAC.
    pub fingerprint: String,
    /// The broker secret.
    pub secret: String,
    /// Its lease at the issuer, if any.
    pub lease_id: Option<String>,
    /// The value's length in bytes, if published.
    pub length: Option<usize>,
}

impl Vault {
    /// `addr` with the token from `token_file`, else `VAULT_TOKEN` / `BAO_TOKEN`.
    pub fn new(addr: &str, token_file: Option<&Path>) -> anyhow::Result<Vault> {
        let token = match token_file {
            Some(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--vault-token-file {}: cannot read", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => Zeroizing::new(
                std::env::var("VAULT_TOKEN")
                    .or_else(|_| std::env::var("BAO_TOKEN"))
                    .context("--vault-addr needs a token: --vault-token-file, VAULT_TOKEN or BAO_TOKEN")?,
            ),
        };
        if token.is_empty() {
            bail!("--vault-addr: the Vault token is empty");
        }
        Ok(Vault {
            addr: addr.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let request = ureq::request(method, &format!("{}/v1/{path}", self.addr))
            .set("X-Vault-Token", &self.token)
            .timeout(std::time::Duration::from_secs(30));
        let result = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        };
        match result {
            Ok(r) if r.status() == 204 => Ok(None),
            Ok(r) => Ok(Some(
                r.into_json()
                    .with_context(|| format!("{path}: the answer is not JSON"))?,
            )),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Status(code, r)) => {
                let errors = r
                    .into_json::<serde_json::Value>()
                    .ok()
                    .and_then(|v| {
                        v["errors"]
                            .as_array()
                            .map(|e| e.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                    })
                    .unwrap_or_default();
                bail!("{path}: Vault answered {code} {errors}")
            }
            Err(e) => bail!("{}: cannot reach Vault: {e}", self.addr),
        }
    }

    /// Every fingerprint the agents published under `registry` (`MOUNT/PATH`).
    pub fn published(&self, registry: &str) -> anyhow::Result<Vec<Published>> {
        let (mount, path) = registry
            .split_once('/')
            .with_context(|| format!("--registry {registry:?}: expected MOUNT/PATH"))?;
        let list = self
            .call("GET", &format!("{mount}/metadata/{path}?list=true"), None)
            .with_context(|| format!("reading the fingerprint registry at {registry}"))?;
        let keys: Vec<String> = list
            .as_ref()
            .and_then(|l| l["data"]["keys"].as_array())
            .map(|k| k.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for key in keys.iter().filter(|k| !k.ends_with('/')) {
            let Some(entry) = self.call("GET", &format!("{mount}/data/{path}/{key}"), None)? else {
                continue;
            };
            // KV v2 wraps the entry as `data.data`.
            let Some(data) = entry.get("data").and_then(|d| d.get("data")) else {
                continue;
            };
            let snapshot: RegistrySnapshot = serde_json::from_value(data.clone())
                .with_context(|| format!("{registry}/{key}: not a fingerprint registry entry"))?;
            for (print, e) in snapshot.fingerprints {
                out.push(Published {
                    fingerprint: print,
                    secret: e.secret,
                    lease_id: e.lease_id,
                    length: e.length,
                });
            }
        }
        Ok(out)
    }

    /// Revokes `lease_id` at Vault (`sys/leases/revoke`).
    pub fn revoke_lease(&self, lease_id: &str) -> anyhow::Result<()> {
        self.call(
            "PUT",
            "sys/leases/revoke",
            Some(serde_json::json!({ "lease_id": lease_id })),
        )
        .map(|_| ())
    }
}
