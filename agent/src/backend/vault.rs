//! The `vault` backend: HashiCorp Vault and OpenBao over their HTTP API (vaultrs client).
//!
//! One [`Session`] per backend holds the agent's own token: it logs in (one module per auth
//! method in [`auth`]), renews the token at about two thirds of its TTL, and logs in again
//! when the token can no longer be renewed or a call is refused with 403 ([`login`] decides
//! when). Secret kinds live in [`kv2`] and [`leased`]; both go through [`Session::call`], which
//! maps Vault's answers to [`Error`]s that never include a response body (it may hold a
//! credential). Each node's HTTP client (TLS, namespace) is built by [`client`].
//!
//! With several `address`es (an HA cluster) the session follows the active node: before each
//! login, and whenever a node cannot be reached or answers 503, it asks every node's
//! `sys/leader` and moves its client, with the same token, to the one that says `is_self`
//! (or, while an election is under way, to any node that answers: standbys forward).

mod auth;
mod client;
mod kv2;
mod leased;
mod login;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use serde::Deserialize;
use sidekey::api::RevokeAction;
use sidekey::config::{SecretSource, SecretSpec, VaultBackend};
use sidekey::vault::ErrorBody;
use sidekey::{Lease, LeaseId, SecretString};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vaultrs::client::{Client as _, VaultClient};
use zeroize::Zeroizing;

use super::{Backend, Error, Issued, Revocation};

/// A Vault/OpenBao backend.
pub struct Vault {
    session: Arc<Session>,
    auth_task: JoinHandle<()>,
}

impl Vault {
    /// Builds the backend and starts logging in in the background.
    pub fn start(name: &str, config: &VaultBackend) -> anyhow::Result<Self> {
        for setting in &config.from_env {
            tracing::info!(
                backend = %name,
                key = setting.key,
                from = setting.var,
                value = %setting.value,
                "Vault setting from the environment (the config leaves it out)"
            );
        }
        let session = Arc::new(Session {
            backend: name.to_owned(),
            method: auth::method(&config.auth),
            config: config.clone(),
            address: AtomicUsize::new(0),
            client: RwLock::new(None),
            last_error: Mutex::new(Some("logging in".to_owned())),
            reauth: Notify::new(),
            moved: Notify::new(),
            ready: Notify::new(),
        });
        let auth_task = tokio::spawn({
            let session = session.clone();
            async move { login::keep_logged_in(&*session).await }
        });
        Ok(Vault { session, auth_task })
    }
}

#[async_trait]
impl Backend for Vault {
    async fn fetch(&self, spec: &SecretSpec) -> Result<Issued, Error> {
        match &spec.source {
            SecretSource::VaultKv2 { mount, path } => kv2::read(&self.session, mount, path).await,
            other => leased::issue(&self.session, other).await,
        }
    }

    /// Leases by id at the issuer; a certificate by its serial, onto the CRL. A KV value is
    /// the writer's to change.
    fn revocation(&self, spec: &SecretSpec) -> Revocation {
        match &spec.source {
            SecretSource::VaultDatabase { .. } | SecretSource::VaultLease { .. } => Revocation::Lease,
            SecretSource::VaultPki { .. } => Revocation::AtSource(RevokeAction::RevokedCertificate),
            _ => Revocation::not_at_source(spec),
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, Error> {
        leased::renew(&self.session, lease).await
    }

    async fn revoke(&self, lease: &LeaseId) -> Result<(), Error> {
        leased::revoke(&self.session, lease).await
    }

    async fn revoke_issued(&self, spec: &SecretSpec, data: &sidekey::SecretData) -> Result<String, Error> {
        match &spec.source {
            SecretSource::VaultPki { mount, .. } => leased::revoke_certificate(&self.session, mount, data).await,
            _ => Err(Error::Unsupported("revocation")),
        }
    }

    async fn write_kv(&self, mount: &str, path: &str, data: serde_json::Value) -> Result<(), Error> {
        kv2::write(&self.session, mount, path, data).await
    }

    fn shutdown(&self) {
        self.auth_task.abort();
    }
}

/// The standard Vault response envelope, as far as sidekey reads it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    lease_id: String,
    lease_duration: u64,
    renewable: bool,
    data: Option<serde_json::Map<String, serde_json::Value>>,
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: String,
    lease_duration: u64,
    renewable: bool,
}

/// One API call: method, path under `/v1/`, optional JSON body.
struct Call {
    method: RequestMethod,
    path: String,
    body: Option<Zeroizing<Vec<u8>>>,
}

impl Endpoint for Call {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> RequestMethod {
        self.method.clone()
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.as_ref().map(|b| b.to_vec()))
    }
}

/// The agent's logged-in session with one Vault backend.
pub struct Session {
    backend: String,
    /// How it logs in (`auth.method`).
    method: Box<dyn auth::Login>,
    config: VaultBackend,
    /// Index into `config.addresses` of the node in use.
    address: AtomicUsize,
    client: RwLock<Option<Arc<VaultClient>>>,
    last_error: Mutex<Option<String>>,
    /// Log in again (our token was refused).
    reauth: Notify,
    /// The node in use failed: find the active one and move there.
    moved: Notify,
    ready: Notify,
}

/// The agent's token, as a login answered it.
struct Token {
    value: SecretString,
    ttl: Duration,
    renewable: bool,
}

impl Session {
    /// Calls the API; `body` is serialized JSON. Answers the envelope of a 2xx reply.
    async fn call(
        &self,
        method: RequestMethod,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Envelope, Error> {
        let client = self.client().await?;
        self.call_with(&client, method, path, body).await
    }

    async fn call_with(
        &self,
        client: &VaultClient,
        method: RequestMethod,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Envelope, Error> {
        let body = body.map(|b| Zeroizing::new(b.to_string().into_bytes()));
        self.send(client, method, path, body, true).await
    }

    /// A login's call (a login, `lookup-self` of a token file's token, the wrapping calls): to
    /// the node in use, with `token` if any. Its failure never makes the session react (a
    /// refused login is not a lapsed token: the login loop backs off).
    async fn login_call(
        &self,
        method: RequestMethod,
        path: &str,
        token: Option<&SecretString>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Envelope, Error> {
        let client = self.new_client(token)?;
        self.send(&client, method, path, body, false).await
    }

    /// Sends one call; `react`: a 403 makes the session log in again and an unreachable node
    /// or a 503 makes it look for the active node ([`Self::classify`]).
    async fn send(
        &self,
        client: &VaultClient,
        method: RequestMethod,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
        react: bool,
    ) -> Result<Envelope, Error> {
        let call = Call {
            method,
            path: path.to_owned(),
            body,
        };
        let result = call.with_middleware(client.middle()).exec(client.http()).await;
        let raw = match result {
            Ok(response) => Zeroizing::new(response.raw()),
            Err(e) => return Err(self.classify(path, e, react)),
        };
        if raw.is_empty() {
            return Ok(Envelope::default());
        }
        serde_json::from_slice(&raw).map_err(|e| {
            Error::Permanent(format!(
                "{}: unexpected answer from Vault for {path} (not JSON at line {})",
                self.backend,
                e.line()
            ))
        })
    }

    /// Maps a failed call to an [`Error`] ([`status_error`] for an HTTP answer), and, when
    /// `react`, reacts to it: a 403 logs in again, an unreachable node or a 503 looks for the
    /// active node.
    fn classify(&self, path: &str, e: rustify::errors::ClientError, react: bool) -> Error {
        use rustify::errors::ClientError as E;
        match e {
            E::ServerResponseError { code, content } => {
                match code {
                    // Our token may have lapsed: log in again, and let the caller retry.
                    403 if react => self.reauth.notify_one(),
                    // Sealed, or a standby that lost its leader: look for the active node.
                    503 if react => self.node_failed(),
                    _ => {}
                }
                status_error(&self.backend, path, code, content.as_deref())
            }
            E::RequestError { source, .. } => {
                if react {
                    self.node_failed();
                }
                Error::Transient(format!(
                    "{}: cannot reach Vault: {}",
                    self.backend,
                    error_chain(&*source)
                ))
            }
            other => Error::Transient(format!("{}: request for {path} failed: {other}", self.backend)),
        }
    }

    /// The logged-in client, waiting briefly for a login in progress.
    async fn client(&self) -> Result<Arc<VaultClient>, Error> {
        for _ in 0..2 {
            if let Some(c) = self.client.read().expect("client lock is never poisoned").clone() {
                return Ok(c);
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.ready.notified()).await;
        }
        let why = self
            .last_error
            .lock()
            .expect("never poisoned")
            .clone()
            .unwrap_or_default();
        Err(Error::Transient(format!(
            "{}: not logged in to Vault: {why}",
            self.backend
        )))
    }

    fn address(&self) -> &str {
        let i = self.address.load(Ordering::Relaxed) % self.config.addresses.len();
        &self.config.addresses[i]
    }

    /// The node in use could not be reached or could not answer.
    fn node_failed(&self) {
        if self.config.addresses.len() > 1 {
            self.moved.notify_one();
        }
    }

    /// Points [`Self::address`] at the active node: the one whose `sys/leader` says
    /// `is_self`; failing that (an election under way) the next node that answers at all, as
    /// a standby forwards to the active node once there is one; failing that, the next node.
    async fn follow_active(&self) {
        let n = self.config.addresses.len();
        if n < 2 {
            return;
        }
        let current = self.address.load(Ordering::Relaxed) % n;
        let mut probes = tokio::task::JoinSet::new();
        for (i, address) in self.config.addresses.iter().enumerate() {
            let client = client::build(&self.backend, &self.config, address, None, false);
            probes.spawn(async move { (i, probe_leader(client.ok()).await) });
        }
        let mut answered = vec![false; n];
        let mut active = None;
        let deadline = tokio::time::sleep(PROBE_TIMEOUT);
        tokio::pin!(deadline);
        while active.is_none() {
            tokio::select! {
                probe = probes.join_next() => match probe {
                    Some(Ok((i, Some(is_self)))) => {
                        answered[i] = true;
                        if is_self {
                            active = Some(i);
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        probes.abort_all();
        let chosen = active
            .or_else(|| (1..=n).map(|k| (current + k) % n).find(|&i| answered[i]))
            .unwrap_or((current + 1) % n);
        if chosen != current {
            tracing::info!(
                backend = %self.backend,
                address = %self.config.addresses[chosen],
                active = active.is_some(),
                "using another Vault node"
            );
        }
        self.address.store(chosen, Ordering::Relaxed);
    }

    /// A client for the node in use, calling with `token`.
    fn new_client(&self, token: Option<&SecretString>) -> Result<VaultClient, Error> {
        client::build(&self.backend, &self.config, self.address(), token, true)
    }

    /// Logs in with the configured method at the active node and installs the new token.
    async fn login(&self) -> Result<Token, Error> {
        self.follow_active().await;
        let token = self.method.log_in(self).await?;
        let client = Arc::new(self.new_client(Some(&token.value))?);
        *self.client.write().expect("never poisoned") = Some(client);
        *self.last_error.lock().expect("never poisoned") = None;
        self.ready.notify_waiters();
        Ok(token)
    }
}

/// The login loop's calls ([`login::keep_logged_in`] makes the decisions).
#[async_trait]
impl login::Auth for Session {
    fn backend(&self) -> &str {
        &self.backend
    }

    async fn log_in(&self) -> Result<Token, Error> {
        self.login().await
    }

    async fn renew_token(&self, token: &Token) -> Result<Duration, Error> {
        let body = serde_json::json!({ "increment": token.ttl.as_secs() });
        let answer = self
            .call(RequestMethod::POST, "auth/token/renew-self", Some(body))
            .await?;
        Ok(answer
            .auth
            .map(|auth| Duration::from_secs(auth.lease_duration))
            .unwrap_or_default())
    }

    async fn move_to_active(&self, token: &Token) -> bool {
        self.follow_active().await;
        match self.new_client(Some(&token.value)) {
            Ok(client) => {
                *self.client.write().expect("never poisoned") = Some(Arc::new(client));
                true
            }
            Err(_) => false,
        }
    }

    fn login_failed(&self, e: &Error) {
        *self.last_error.lock().expect("never poisoned") = Some(e.to_string());
        *self.client.write().expect("never poisoned") = None;
    }

    fn reauth(&self) -> &Notify {
        &self.reauth
    }

    fn moved(&self) -> &Notify {
        &self.moved
    }
}

/// The [`Error`] for Vault's HTTP answer `code` to `path`, with Vault's `errors` as detail.
/// The status decides the kind; a 400 is a gone lease only when Vault says so in words, as
/// it has no other signal for it.
fn status_error(backend: &str, path: &str, code: u16, content: Option<&str>) -> Error {
    let errors = ErrorBody::parse(content.unwrap_or_default().as_bytes()).joined();
    let msg = format!(
        "{backend}: Vault answered {code} for {path}: {}",
        if errors.is_empty() { "no detail" } else { &errors }
    );
    let lease_gone = ["lease not found", "invalid lease", "lease expired"]
        .iter()
        .any(|m| errors.contains(m));
    match code {
        400 if lease_gone => Error::LeaseGone(msg),
        404 => Error::NotFound(msg),
        403 | 429 | 500..=599 => Error::Transient(msg),
        _ => Error::Permanent(msg),
    }
}

/// How long [`Session::follow_active`] waits for the nodes' answers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks one node `sys/leader` (no token needed): `Some(is_self)` if it answered.
async fn probe_leader(client: Option<VaultClient>) -> Option<bool> {
    let client = client?;
    let call = Call {
        method: RequestMethod::GET,
        path: "sys/leader".to_owned(),
        body: None,
    };
    let answer = call.with_middleware(client.middle()).exec(client.http()).await.ok()?;
    let leader: serde_json::Value = serde_json::from_slice(&answer.raw()).ok()?;
    Some(leader.get("is_self").and_then(|v| v.as_bool()).unwrap_or(false))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_are_classified_by_status_and_carry_only_the_errors_list() {
        let body = r#"{"errors": ["permission denied"], "data": {"password": "hunter2"}}"#;
        let e = status_error("vault", "auth/token/lookup-self", 403, Some(body));
        assert!(e.is_transient());
        assert_eq!(
            e.to_string(),
            "vault: Vault answered 403 for auth/token/lookup-self: permission denied"
        );
        let e = status_error("vault", "kv/data/x", 404, Some(r#"{"errors": []}"#));
        assert!(matches!(e, Error::NotFound(_)) && !e.is_transient());
        assert!(e.to_string().ends_with("for kv/data/x: no detail"));
        let e = status_error(
            "vault",
            "sys/leases/renew",
            400,
            Some(r#"{"errors": ["lease not found"]}"#),
        );
        assert!(matches!(e, Error::LeaseGone(_)));
        let e = status_error("vault", "db/creds/app", 400, Some(r#"{"errors": ["unknown role"]}"#));
        assert!(matches!(e, Error::Permanent(_)));
        for code in [429, 500, 503] {
            assert!(status_error("vault", "p", code, Some("<html>not json</html>")).is_transient());
        }
        assert!(!status_error("vault", "p", 400, None).to_string().contains("hunter2"));
    }
}
