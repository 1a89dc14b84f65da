//! The TOML exactly as written: a serde mirror of the config file, no I/O, no validation
//! beyond shape. Every table rejects unknown keys, so a typo is an error that names the key.
//!
//! Backends, their `auth` and secrets are flat tables (every key any `type`/`method`/`kind` may
//! take); which keys a given one accepts is checked against [`super::kinds`], where the error
//! can say "`common_name` is not a key of kind `vault.kv2`" instead of serde's generic
//! message. They also serialize, so that check reads the keys that are set from the table
//! itself (under the names they are written with) and no list of keys is kept by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub agent: RawAgent,
    pub registry: Option<RawRegistry>,
    #[serde(default)]
    pub backends: BTreeMap<String, RawBackend>,
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    #[serde(default)]
    pub access: Vec<RawAccess>,
    #[serde(default)]
    pub file: Vec<RawFile>,
    #[serde(default)]
    pub proxy: Vec<RawProxy>,
}

/// `[agent]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub socket: Option<String>,
    pub socket_group: Option<String>,
    pub tcp: Option<String>,
    pub tokens: Option<BTreeMap<String, String>>,
    pub audit_log: Option<String>,
    pub cache: Option<String>,
    pub cache_key_file: Option<String>,
    pub fingerprint_key_file: Option<String>,
    pub revoke_on_exit: Option<bool>,
}

/// `[registry]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub backend: String,
    pub path: Option<String>,
    pub mount: Option<String>,
    pub name: Option<String>,
}

/// `address = "…"` or `address = ["…", "…"]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[backends.NAME]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    #[serde(rename = "type")]
    pub kind: String,
    // vault (address, ca_cert and namespace may come from VAULT_*/BAO_* instead)
    pub address: Option<OneOrMany>,
    pub auth: Option<RawAuth>,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub tls_server_name: Option<String>,
    pub namespace: Option<String>,
    // aws
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    // local
    pub path: Option<String>,
    pub key_file: Option<String>,
}

/// `auth = { method = … }` of a vault backend.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub method: String,
    pub token_file: Option<String>,
    pub role_id_file: Option<String>,
    pub secret_id_file: Option<String>,
    /// `approle`: the secret id file holds a response-wrapping token.
    pub secret_id_wrapped: Option<bool>,
    /// `jwt`, `kubernetes`: the role to log in as.
    pub role: Option<String>,
    /// `cert`: the certificate role to log in as.
    pub name: Option<String>,
    /// Where the auth method is mounted (default: the method's name).
    pub mount: Option<String>,
}

/// `[secrets.NAME]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub backend: String,
    pub kind: String,
    pub mount: Option<String>,
    pub path: Option<String>,
    pub role: Option<String>,
    pub refresh: Option<String>,
    pub common_name: Option<String>,
    pub alt_names: Option<Vec<String>>,
    pub ttl: Option<String>,
    pub secret_id: Option<String>,
    pub version_stage: Option<String>,
    pub rotate_every: Option<String>,
    pub role_arn: Option<String>,
    pub duration: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// `local.generated`: bytes of randomness (default 32), rendered as hex.
    pub length: Option<usize>,
}

/// `uid = 1000` or `uid = "self"`
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawUid {
    Id(u32),
    Name(String),
}

/// `[[access]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    pub uid: Option<RawUid>,
    pub gid: Option<u32>,
    pub token: Option<String>,
    pub secrets: Vec<String>,
    pub revoke: Option<bool>,
}

/// `owner = "nobody"` or `owner = 65534` (and `group`)
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAccount {
    Id(u32),
    Name(String),
}

/// `[[file]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub secret: Option<String>,
    pub path: String,
    pub template: Option<String>,
    pub mode: Option<String>,
    pub owner: Option<RawAccount>,
    pub group: Option<RawAccount>,
    pub on_change: Option<Vec<String>>,
}

/// `[[proxy]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: Option<String>,
    pub protocol: Option<String>,
    pub secret: Option<String>,
    pub upstream: Option<String>,
    pub upstream_tls: Option<String>,
    pub ca_cert: Option<String>,
    pub tls_server_name: Option<String>,
}
