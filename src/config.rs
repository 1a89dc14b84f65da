//! The agent's configuration: `load(path)` reads the TOML, rejects unknown keys and checks
//! every value, returning a [`Config`] that the agent can build from without further checks.
//!
//! Three stages, each testable alone: `raw` is the file as written (serde, no I/O);
//! `validate` turns it into this model (durations, kinds, references, files that must
//! exist; each backend type, auth method and secret kind is one entry of [`kinds`]);
//! `App::build` in the agent binds sockets and starts backends. `sidekey-agent check`
//! stops after the second stage. Paths are used as written, relative to the directory the
//! agent runs in.

mod check;
pub mod error;
pub mod kinds;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::Error;
pub use validate::not_a_socket;

use crate::secret::SecretName;

/// A validated agent configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (for messages).
    pub file: PathBuf,
    /// `[agent]`
    pub agent: AgentSettings,
    /// `[backends.NAME]`, by name.
    pub backends: BTreeMap<String, BackendConfig>,
    /// `[secrets.NAME]`, by name.
    pub secrets: BTreeMap<SecretName, SecretSpec>,
    /// `[[access]]` rules in file order.
    pub access: Vec<AccessRule>,
    /// `[[file]]` deliveries in file order.
    pub files: Vec<FileSpec>,
    /// `[registry]`: where fingerprints are published for scanners elsewhere.
    pub registry: Option<RegistryConfig>,
    /// `[[proxy]]` database proxies in file order.
    pub proxies: Vec<ProxySpec>,
}

/// `[registry]`: the agent publishes its fingerprint registry (fingerprints, names, lease ids;
/// never values) to `MOUNT/data/PATH/NAME` of a Vault/OpenBao KV v2 engine.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The `vault` backend to write with.
    pub backend: String,
    /// The KV v2 mount.
    pub mount: String,
    /// The path under the mount; each agent writes `PATH/NAME`.
    pub path: String,
    /// This agent's entry (default: the host name).
    pub name: String,
}

/// `[agent]`
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The Unix socket to serve on.
    pub socket: PathBuf,
    /// Group that owns the socket, when set.
    pub socket_group: Option<String>,
    /// Loopback TCP listener, when set; every request on it needs a token.
    pub tcp: Option<std::net::SocketAddr>,
    /// Accepted bearer tokens: name → argon2id PHC hash.
    pub tokens: BTreeMap<String, String>,
    /// JSON-lines audit log; `None` means audit events go to stderr only.
    pub audit_log: Option<PathBuf>,
    /// HMAC key file for leak fingerprints.
    pub fingerprint_key_file: Option<PathBuf>,
    /// Revoke this agent's leases on a graceful stop.
    pub revoke_on_exit: bool,
    /// The encrypted cache file and its key file (`cache`, `cache_key_file`).
    pub cache: Option<(PathBuf, PathBuf)>,
}

/// One configured backend.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// HashiCorp Vault or OpenBao.
    Vault(VaultBackend),
    /// The embedded encrypted store.
    Local(LocalBackend),
    /// AWS (Secrets Manager, STS), credentials from the standard chain.
    Aws(AwsBackend),
}

impl BackendConfig {
    /// The `type` as written in the config.
    pub fn type_name(&self) -> &'static str {
        kinds::BackendType::of(self).name
    }
}

/// `type = "vault"`
#[derive(Debug, Clone)]
pub struct VaultBackend {
    /// Node addresses; the first that answers as active is used.
    pub addresses: Vec<String>,
    /// How the agent logs in.
    pub auth: VaultAuth,
    /// PEM CA bundle to trust, besides the system roots.
    pub ca_cert: Option<PathBuf>,
    /// The TLS client certificate and key presented to Vault (and used by `cert` logins).
    pub client_cert: Option<ClientCert>,
    /// The name Vault's certificate is checked against (and sent as SNI) instead of the
    /// address's host, e.g. when `address` is an IP.
    pub tls_server_name: Option<String>,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace` on every call.
    pub namespace: Option<String>,
    /// The settings that came from the environment because the config left them out, in
    /// the order `address`, `ca_cert`, `namespace` (for `check` and the start-up log).
    pub from_env: Vec<FromEnv>,
}

/// A TLS client certificate: `client_cert` and `client_key` (PEM files).
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A backend setting taken from an environment variable (`VAULT_ADDR`, `BAO_CACERT`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromEnv {
    /// The config key it stands for (`address`, `ca_cert`, `namespace`).
    pub key: &'static str,
    /// The variable it was read from.
    pub var: &'static str,
    /// The value (an address, a path or a namespace: never a secret).
    pub value: String,
}

/// How the agent authenticates to Vault.
#[derive(Debug, Clone)]
pub enum VaultAuth {
    /// A token read from a file (re-read when the token can no longer be renewed).
    Token {
        /// The file holding the token.
        token_file: PathBuf,
    },
    /// AppRole login with a role id and secret id read from files.
    AppRole {
        /// Auth mount (default `approle`).
        mount: String,
        /// The role id file.
        role_id_file: PathBuf,
        /// The secret id file (with `secret_id_wrapped`, a response-wrapping token).
        secret_id_file: PathBuf,
        /// The secret id file holds a wrapping token, unwrapped once (`sys/wrapping/unwrap`).
        secret_id_wrapped: bool,
    },
    /// JWT/OIDC login with a token read from a file at every login (projected service
    /// account tokens, CI OIDC tokens: replaced while the agent runs).
    Jwt {
        /// Auth mount (default `jwt`).
        mount: String,
        /// The role to log in as.
        role: String,
        /// The file holding the JWT.
        token_file: PathBuf,
    },
    /// Kubernetes login with the service account token read from a file at every login.
    Kubernetes {
        /// Auth mount (default `kubernetes`).
        mount: String,
        /// The role to log in as.
        role: String,
        /// The service account token (default: the pod's projected token).
        token_file: PathBuf,
    },
    /// TLS certificate login with the backend's `client_cert`.
    Cert {
        /// Auth mount (default `cert`).
        mount: String,
        /// The certificate role; `None` lets Vault try every role of the mount.
        name: Option<String>,
    },
}

impl VaultAuth {
    /// The `method` as written in the config.
    pub fn method_name(&self) -> &'static str {
        kinds::AuthMethod::of(self).name
    }
}

/// `type = "local"`
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// The encrypted store file.
    pub path: PathBuf,
    /// The passphrase file; created (32 random bytes, hex, 0600) when missing.
    pub key_file: PathBuf,
}

/// `type = "aws"`
#[derive(Debug, Clone)]
pub struct AwsBackend {
    /// Region; `None` takes it from the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override for emulators and VPC endpoints.
    pub endpoint_url: Option<String>,
}

/// What a secret is and where it comes from.
#[derive(Debug, Clone)]
pub struct SecretSpec {
    /// `[secrets.NAME]`
    pub name: SecretName,
    /// The backend's name (a key of [`Config::backends`]).
    pub backend: String,
    /// The kind and its parameters.
    pub source: SecretSource,
    /// How often a non-leased secret is re-read.
    pub refresh: Duration,
}

/// The `kind` of a secret with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `vault.kv2`: the KV map at `mount`/`path`.
    VaultKv2 {
        /// KV v2 mount (default `secret`).
        mount: String,
        /// Path under the mount.
        path: String,
    },
    /// `vault.database`: a dynamic database user.
    VaultDatabase {
        /// Database engine mount (default `database`).
        mount: String,
        /// Role name.
        role: String,
    },
    /// `vault.pki`: a certificate issued from a PKI role.
    VaultPki {
        /// PKI mount (default `pki`).
        mount: String,
        /// Role name.
        role: String,
        /// The certificate's common name.
        common_name: String,
        /// Subject alternative names.
        alt_names: Vec<String>,
        /// Requested TTL, when set.
        ttl: Option<Duration>,
    },
    /// `vault.lease`: any leased read path, e.g. `rabbitmq/creds/app`.
    VaultLease {
        /// The full API path under `/v1/`.
        path: String,
    },
    /// `local.generated`: random bytes (hex) regenerated every `rotate_every`.
    LocalGenerated {
        /// How long one value is served.
        rotate_every: Duration,
        /// Bytes of randomness.
        length: usize,
    },
    /// `local.static`: a value set with `sidekey-agent store set`.
    LocalStatic,
    /// `aws.secretsmanager`: GetSecretValue of one secret and stage.
    AwsSecretsManager {
        /// Secret name or ARN.
        secret_id: String,
        /// Version stage (default `AWSCURRENT`).
        version_stage: String,
        /// Call RotateSecret when the current version is this old.
        rotate_every: Option<Duration>,
    },
    /// `aws.sts`: AssumeRole session credentials.
    AwsSts {
        /// The role to assume.
        role_arn: String,
        /// Requested session length.
        duration: Duration,
        /// External id, when the role's trust policy asks for one.
        external_id: Option<String>,
        /// Session name (default `sidekey-agent`).
        session_name: String,
    },
}

impl SecretSource {
    /// The `rotate_every` of kinds that rotate at their source.
    pub fn rotate_every(&self) -> Option<Duration> {
        match self {
            SecretSource::AwsSecretsManager { rotate_every, .. } => *rotate_every,
            _ => None,
        }
    }

    /// The `kind` as written in the config.
    pub fn kind_name(&self) -> &'static str {
        kinds::Kind::of(self).name
    }
}

/// The token name under which the `AWS_TOKEN` value is accepted.
pub const AWS_TOKEN_NAME: &str = "aws";

/// Who an `[[access]]` rule matches on the Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidMatch {
    /// A numeric uid.
    Id(u32),
    /// The uid the agent runs as.
    Agent,
}

/// One `[[access]]` rule: a peer matching every given criterion may read the matching secrets.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// Position in the file (0-based), for audit and messages.
    pub index: usize,
    /// Peer uid to match, if any.
    pub uid: Option<UidMatch>,
    /// Peer gid to match, if any.
    pub gid: Option<u32>,
    /// Token name the request must carry, if any.
    pub token: Option<String>,
    /// Secret names or globs.
    pub secrets: Vec<String>,
    /// May call `POST /v1/revoke`.
    pub revoke: bool,
}

/// One `[[file]]` delivery.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// `secret`: the secret whose fields the template's bare names are, and whose data is
    /// written as JSON when there is no template.
    pub secret: Option<SecretName>,
    /// Every secret the file renders: `secret` first, then the others in the template's
    /// order. The file is written once all are served, and again when any changes.
    pub secrets: Vec<SecretName>,
    /// Destination file.
    pub path: PathBuf,
    /// The template, its names resolved; `None` writes `secret`'s data as JSON.
    pub template: Option<crate::template::Bound>,
    /// File mode (default 0600).
    pub mode: u32,
    /// The user the file is given to (default: the agent's).
    pub owner: Option<Account>,
    /// The group the file is given to (default: the agent's).
    pub group: Option<Account>,
    /// Command run after each write.
    pub on_change: Vec<String>,
}

/// One `[[proxy]]`: a Unix socket where apps connect to a database with no password; the
/// agent logs in upstream with the served credential of `secret`.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// Position in the file (0-based), for messages.
    pub index: usize,
    /// The Unix socket to listen on (`/run/sidekey/.s.PGSQL.5432`).
    pub listen: PathBuf,
    /// The wire protocol spoken on it.
    pub protocol: ProxyProtocol,
    /// The served secret whose `username` and `password` log in upstream.
    pub secret: SecretName,
    /// The database server.
    pub upstream: Upstream,
    /// TLS to the database server.
    pub tls: UpstreamTls,
}

/// A `[[proxy]]` `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// PostgreSQL's frontend/backend protocol 3.
    Postgres,
}

impl ProxyProtocol {
    /// Every protocol, as written in the config.
    pub const NAMES: &'static [&'static str] = &["postgres"];

    /// The `protocol` as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::Postgres => "postgres",
        }
    }
}

/// `upstream = "host:port"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `upstream_tls`: as libpq's `sslmode`, without `allow` and `verify-ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain TCP otherwise (libpq's default).
    Prefer,
    /// TLS or nothing, unverified (encryption against passive listeners only).
    Require,
    /// TLS with the server's certificate checked against `ca_cert` (or the system roots) and
    /// `server_name`.
    VerifyFull {
        /// PEM CA bundle; `None`: the system's roots.
        ca_cert: Option<PathBuf>,
        /// The name the certificate must carry (default: the upstream host).
        server_name: String,
    },
}

impl UpstreamTls {
    /// Every mode, as written in the config.
    pub const NAMES: &'static [&'static str] = &["disable", "prefer", "require", "verify-full"];

    /// The mode as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            UpstreamTls::Disable => "disable",
            UpstreamTls::Prefer => "prefer",
            UpstreamTls::Require => "require",
            UpstreamTls::VerifyFull { .. } => "verify-full",
        }
    }
}

/// A user or a group (`[[file]]` `owner`, `group`): as written, and its numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name or number as written (for messages).
    pub name: String,
    /// The id; `None` only for a name in a config checked `--portable` (not looked up).
    pub id: Option<u32>,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) if id.to_string() != self.name => write!(f, "{} ({id})", self.name),
            _ => f.write_str(&self.name),
        }
    }
}

/// Default re-read period of non-leased secrets.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// The process environment, where a vault backend's `address`, `ca_cert` and `namespace` are
/// looked up when the config leaves them out (`VAULT_ADDR`, `BAO_ADDR`, ...).
fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Validates config text; `file` is used in messages and nothing else.
pub fn parse(file: &Path, text: &str) -> Result<Config, Error> {
    let raw = validate::parse_raw(file, text)?;
    validate::validate(file, raw, true, true, &process_env)
}

/// Reads and validates the config at `path` for an agent that binds nothing
/// (`sidekey-agent run --once`): as [`load`], but `agent.socket` and `socket_group` are not
/// held against this machine — the socket's directory need not exist (an init container
/// rarely has the sidecar's), and whatever is at its path is left alone.
pub fn load_unbound(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_owned(),
        source,
    })?;
    parse_unbound(path, &text)
}

/// [`parse`] for an agent that binds nothing, like [`load_unbound`].
pub fn parse_unbound(file: &Path, text: &str) -> Result<Config, Error> {
    let raw = validate::parse_raw(file, text)?;
    validate::validate(file, raw, true, false, &process_env)
}

/// Reads and validates the config at `path` as text only: keys, types, values and references
/// between tables, but not the files, directories and groups it names on this machine
/// (`sidekey-agent check --portable`, for a config written for another host).
pub fn load_portable(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_owned(),
        source,
    })?;
    parse_portable(path, &text)
}

/// [`parse`] as text only, like [`load_portable`].
pub fn parse_portable(file: &Path, text: &str) -> Result<Config, Error> {
    let raw = validate::parse_raw(file, text)?;
    validate::validate(file, raw, false, false, &process_env)
}
