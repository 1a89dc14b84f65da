//! Vault/OpenBao, through one client ([`Client`], every request in [`Client::call`]): reqwest
//! over rustls on a current-thread tokio runtime of its own (the scanner is synchronous),
//! trusting the system's roots plus the PEM file of `--vault-cacert`, else `VAULT_CACERT`, else
//! `BAO_CACERT` (a private CA); no proxy. `VAULT_NAMESPACE` (else `BAO_NAMESPACE`) is sent
//! as `X-Vault-Namespace` on every call.
//!
//! - a leaked token is looked up with itself (`GET auth/token/lookup-self`: 200 live, 403
//!   refused) and revoked with itself (`POST auth/token/revoke-self`);
//! - with the operator's token ([`Vault`]: `--vault-token-file`, else `VAULT_TOKEN` /
//!   `BAO_TOKEN`), the fingerprint registry the agents publish (`[registry]`, KV v2
//!   `MOUNT/PATH/NAME`) is read, and a broker lease is revoked (`sys/leases/revoke`) when no
//!   agent is reachable.
//!
//! Nothing here sends a value except a leaked token to its own issuer, as the credential it
//! is; the registry holds fingerprints and lease ids only. Tokens are held zeroized and never
//! appear in errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use sidekey::api::RegistrySnapshot;
use sidekey::vault::ErrorBody;
use zeroize::Zeroizing;

use super::Answer;

/// How long one call with a leaked token may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one call with the operator's token may take.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(30);

/// A Vault address and the HTTP client to reach it.
pub struct Client {
    addr: String,
    /// `VAULT_NAMESPACE`, else `BAO_NAMESPACE`, when set.
    namespace: Option<String>,
    http: reqwest::Client,
    /// Runs the calls (never from within another runtime: the AWS calls have their own, and
    /// no Vault call is made inside it).
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client for `addr` (no proxy), whose calls may take `timeout`, trusting the system's
    /// roots and those of `cacert` (else `VAULT_CACERT`, else `BAO_CACERT`).
    pub fn new(addr: &str, timeout: Duration, cacert: Option<&Path>) -> anyhow::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a runtime for the Vault client")?;
        let mut builder = reqwest::Client::builder().timeout(timeout).no_proxy();
        if let Some((path, from)) = ca_file(cacert) {
            builder = builder.tls_certs_merge(ca_certs(&path).with_context(|| format!("{from} {}", path.display()))?);
        }
        let http = {
            let _in = runtime.enter(); // the client's background parts belong to this runtime
            builder.build().context("cannot set up the HTTP client for Vault")?
        };
        let namespace = ["VAULT_NAMESPACE", "BAO_NAMESPACE"]
            .into_iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
        Ok(Client {
            addr: addr.trim_end_matches('/').to_owned(),
            namespace,
            http,
            runtime,
        })
    }

    /// A client for checking leaked tokens at `addr` (see [`Client::new`]).
    pub fn for_tokens(addr: &str, cacert: Option<&Path>) -> anyhow::Result<Client> {
        Client::new(addr, TOKEN_TIMEOUT, cacert)
    }

    /// The address, as calls use it.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// One request to `/v1/PATH` with `token`: the status and body, or why Vault could not be
    /// reached.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut token = reqwest::header::HeaderValue::from_str(token).map_err(|_| "the token is not a header value")?;
        token.set_sensitive(true);
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace.as_str());
        }
        if let Some(b) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| unreachable_why(&e))?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| unreachable_why(&e))?;
            Ok((status, bytes.to_vec()))
        })
    }

    /// `GET auth/token/lookup-self` with `token`: 200 live (its display name and accessor),
    /// 403 refused, anything else cannot tell.
    pub fn lookup_self(&self, token: &str) -> Answer {
        let addr = &self.addr;
        match self.call("GET", "auth/token/lookup-self", token, None) {
            Ok((code, body)) if code < 400 => {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let field = |k: &str| body["data"][k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
                Answer::Live {
                    who: field("display_name"),
                    accessor: field("accessor"),
                }
            }
            Ok((403, _)) => Answer::Dead,
            Ok((code, _)) => Answer::Unknown(format!("{addr} answered {code}")),
            Err(e) => Answer::Unknown(format!("{addr} could not be reached: {e}")),
        }
    }

    /// `POST auth/token/revoke-self` with `token`.
    pub fn revoke_self(&self, token: &str) -> Result<(), String> {
        match self.call("POST", "auth/token/revoke-self", token, None) {
            Ok((code, _)) if code < 400 => Ok(()),
            Ok((code, body)) => Err(format!("answered {code} {}", ErrorBody::parse(&body).joined())
                .trim_end()
                .to_owned()),
            Err(e) => Err(format!("could not be reached: {e}")),
        }
    }
}

/// Where Vault's extra CA certificates are, and which setting named them: `cacert`
/// (`--vault-cacert`), else `VAULT_CACERT`, else `BAO_CACERT`.
fn ca_file(cacert: Option<&Path>) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = cacert {
        return Some((path.to_owned(), "--vault-cacert"));
    }
    ["VAULT_CACERT", "BAO_CACERT"].into_iter().find_map(|var| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), var))
    })
}

/// The certificates of a PEM file (one or a bundle).
fn ca_certs(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).context("cannot read the CA certificate file")?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).context("not a PEM certificate file")?;
    if certs.is_empty() {
        bail!("holds no PEM certificate");
    }
    Ok(certs)
}

/// Why a request got no answer, in words: the error and its causes (a certificate Vault's CA
/// did not sign says so, with the hint to name that CA).
fn unreachable_why(e: &reqwest::Error) -> String {
    let why = super::error_chain(e);
    if why.contains("certificate") || why.contains("UnknownIssuer") {
        format!("{why} (is Vault's CA in --vault-cacert, VAULT_CACERT or BAO_CACERT?)")
    } else {
        why
    }
}

/// Vault with the operator's token: the fingerprint registry and lease revocation.
pub struct Vault {
    client: Client,
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
    /// `addr` with the token from `token_file`, else `VAULT_TOKEN` / `BAO_TOKEN`; `cacert` as
    /// [`Client::new`].
    pub fn new(addr: &str, token_file: Option<&Path>, cacert: Option<&Path>) -> anyhow::Result<Vault> {
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
            client: Client::new(addr, OPERATOR_TIMEOUT, cacert)?,
            token,
        })
    }

    /// A call with the operator's token: the JSON answer, `None` for 204 and 404.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        match self.client.call(method, path, &self.token, body.as_ref()) {
            Ok((204 | 404, _)) => Ok(None),
            Ok((code, body)) if code < 400 => Ok(Some(
                serde_json::from_slice(&body).with_context(|| format!("{path}: the answer is not JSON"))?,
            )),
            Ok((code, body)) => bail!("{path}: Vault answered {code} {}", ErrorBody::parse(&body).joined()),
            Err(e) => bail!("{}: cannot reach Vault: {e}", self.client.addr),
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
