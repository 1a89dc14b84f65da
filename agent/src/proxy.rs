//! `[[proxy]]`: database connections with no password in the app. The app connects to a Unix
//! socket of the agent; the kernel names it (`SO_PEERCRED`), the `[[access]]` policy must
//! grant it the proxy's `secret`, and the agent logs in to the database server with the
//! credential it serves at that moment, then relays bytes both ways.
//!
//! Rooms: this file (listening, the protocol seam, health and metrics), `session.rs` (one
//! connection's life, whatever the protocol), `upstream.rs` (TCP and TLS to the server), and
//! one file per protocol (`postgres.rs`) implementing [`Protocol`]. A new protocol (MySQL's
//! `caching_sha2_password`, Redis' `AUTH`/`HELLO`) is one more such file and one match arm
//! in [`serve`].
//!
//! Rotation: a session keeps the credential it logged in with; a [`crate::holds::Hold`] on
//! that version keeps the scheduler from revoking it while the session runs, up to its lease's
//! expiry — when the session ends itself with the protocol's "terminated by the
//! administrator" error (57P01 for PostgreSQL). A revocation ends its sessions at once.
//! Passwords are read from the store for each login and dropped when it is done.

pub mod postgres;
mod session;
pub mod upstream;

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey::config::{ProxyProtocol, ProxySpec, Upstream};
use sidekey::SecretString;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::holds::Holds;
use crate::policy::Policy;
use crate::store::Store;
pub use upstream::Stream;
use upstream::Tls;

/// What every proxy shares with the rest of the agent.
pub struct Context {
    /// What is served (read at each login; never written here).
    pub store: Arc<Store>,
    /// The `[[access]]` rules.
    pub policy: Policy,
    /// The audit log.
    pub audit: AuditLog,
    /// Sessions' holds on the versions they logged in with.
    pub holds: Arc<Holds>,
    /// Each proxy's upstream state, for `/v1/health`.
    pub status: Arc<Status>,
    /// Cancelled when the agent stops: sessions end (57P01) and listeners close.
    pub stop: CancellationToken,
}

/// What a client opens a connection with.
#[derive(Debug)]
pub enum Opening<S, K> {
    /// A session: the protocol's startup data.
    Session(S),
    /// A request to cancel the running query of the session whose key this is.
    Cancel(K),
}

/// Why the proxy turns a client away (each protocol has its own code for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `[[access]]` rule grants the caller the proxy's secret.
    NotPermitted,
    /// The credential cannot be served now.
    Unavailable,
    /// The database server cannot be reached or refused the served credential.
    Upstream,
    /// The client broke the protocol.
    Protocol,
    /// The session is ended: its credential expired or was revoked, or the agent stops.
    Ended,
}

/// A login the server accepted.
pub struct LoggedIn<K> {
    /// What the client is sent before the relay starts (the server's greeting).
    pub greeting: Vec<u8>,
    /// The key that cancels this session's queries, when the protocol has one.
    pub cancel: Option<K>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The server refused: its own error message, passed on to the client as it is; the
    /// text says only the server's code (its message may name the user).
    #[error("the server refused the login (code {code})")]
    Refused {
        /// The server's error code (SQLSTATE).
        code: String,
        /// The server's message, to pass on.
        message: Vec<u8>,
    },
    /// Anything else: I/O, an unsupported method, a server that failed to prove itself.
    #[error("{0}")]
    Failed(String),
}

impl From<io::Error> for LoginError {
    fn from(e: io::Error) -> Self {
        LoginError::Failed(e.to_string())
    }
}

/// One wire protocol: what a session needs to know of it.
#[async_trait::async_trait]
pub trait Protocol: Send + Sync + 'static {
    /// What a client asks for when it opens a session (kept for the upstream login).
    type Startup: Send + Sync;
    /// What identifies a session to a cancel request.
    type Key: Send + Sync + Copy + Eq + Hash + std::fmt::Debug;
    /// Follows the server's message boundaries in the relayed bytes.
    type Framing: Framing;

    /// Reads what the client opens with (answering the protocol's preliminaries); a
    /// malformed opening is an error naming what was wrong.
    async fn open(&self, client: &mut UnixStream) -> Result<Opening<Self::Startup, Self::Key>, String>;

    /// The bytes that tell the client it is turned away, or its session ends, and why.
    fn refusal(&self, refusal: Refusal, message: &str) -> Vec<u8>;

    /// Connects to the server, with TLS as configured.
    async fn connect(&self, to: &Upstream, tls: &Tls) -> io::Result<Stream>;

    /// Logs in on `server` as `user` with `password`, for the client's `startup`.
    async fn login(
        &self,
        server: &mut Stream,
        startup: &Self::Startup,
        user: &str,
        password: &SecretString,
    ) -> Result<LoggedIn<Self::Key>, LoginError>;

    /// Forwards a cancel request for `key` to the server.
    async fn cancel(&self, to: &Upstream, tls: &Tls, key: Self::Key) -> io::Result<()>;
}

/// Message boundaries in a relayed byte stream, from lengths alone.
pub trait Framing: Default + Send {
    /// Accounts for the next bytes.
    fn advance(&mut self, data: &[u8]);
    /// Whether the bytes so far end at a message boundary.
    fn at_boundary(&self) -> bool;
}

/// One configured proxy, while it runs.
pub struct Proxy<P: Protocol> {
    /// Its config.
    pub spec: ProxySpec,
    /// The socket path as text: the `proxy` label of its metrics and audit lines.
    pub label: String,
    protocol: P,
    tls: Tls,
    /// The cancel keys of its open sessions.
    cancels: Mutex<HashSet<P::Key>>,
}

/// Binds every `[[proxy]]` socket (0660 from creation, given to `group` when set); fails
/// naming the socket.
pub fn bind(
    specs: &[ProxySpec],
    bind_unix: impl Fn(&std::path::Path) -> anyhow::Result<UnixListener>,
) -> anyhow::Result<Vec<(ProxySpec, UnixListener)>> {
    specs
        .iter()
        .map(|spec| {
            let listener =
                bind_unix(&spec.listen).map_err(|e| anyhow::anyhow!("proxy[{}].listen: {e:#}", spec.index))?;
            Ok((spec.clone(), listener))
        })
        .collect()
}

/// Serves every proxy until `ctx.stop`; then their sessions end (57P01) within
/// [`crate::scheduler::DRAIN`] and the socket files are removed.
pub async fn serve(listeners: Vec<(ProxySpec, UnixListener)>, ctx: Arc<Context>) {
    let mut proxies = JoinSet::new();
    for (spec, listener) in listeners {
        let tls = match Tls::new(&spec.tls, &spec.upstream) {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!(proxy = %spec.listen.display(), error = %e, "proxy not started: its TLS settings do not work");
                ctx.status.fail(&spec, format!("not started: {e}"));
                continue;
            }
        };
        let label = spec.listen.display().to_string();
        ctx.status.add(&spec);
        match spec.protocol {
            ProxyProtocol::Postgres => {
                let proxy = Arc::new(Proxy {
                    spec,
                    label,
                    protocol: postgres::Postgres,
                    tls,
                    cancels: Mutex::default(),
                });
                proxies.spawn(accept(proxy, listener, ctx.clone()));
            }
        }
    }
    while proxies.join_next().await.is_some() {}
}

/// Connections one proxy holds at most (each is two file descriptors).
fn cap() -> usize {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    (limit.saturating_sub(64) / 8).max(4) as usize
}

/// How often a proxy with no recent login checks that its server accepts connections.
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// Every [`PROBE_EVERY`] with no login in between, connects to the server as a session would
/// (TCP, and TLS as `upstream_tls` says, so that a certificate that fails verification is
/// seen), then closes. A probe does not log in: it clears a connection failure, not a failed
/// login (only a login that works does).
async fn probe<P: Protocol>(proxy: Arc<Proxy<P>>, ctx: Arc<Context>) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if ctx.status.recently_ok(&proxy.label, PROBE_EVERY) {
            continue;
        }
        let connected = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            c = proxy.protocol.connect(&proxy.spec.upstream, &proxy.tls) => c,
        };
        match connected {
            Ok(mut server) => {
                use tokio::io::AsyncWriteExt as _;
                // A TLS close_notify, so that the server logs nothing.
                let _ = tokio::time::timeout(Duration::from_secs(1), server.shutdown()).await;
                ctx.status.reachable(&proxy.label);
            }
            Err(e) => ctx.status.fail(
                &proxy.spec,
                format!("cannot connect to {} ({}): {e}", proxy.spec.upstream, proxy.tls_mode()),
            ),
        }
    }
}

async fn accept<P: Protocol>(proxy: Arc<Proxy<P>>, listener: UnixListener, ctx: Arc<Context>) {
    tracing::info!(proxy = %proxy.label, protocol = proxy.spec.protocol.name(), secret = %proxy.spec.secret, upstream = %proxy.spec.upstream, tls = proxy.tls_mode(), "proxy listening");
    let _socket = SocketFile(proxy.spec.listen.clone());
    let mut sessions = JoinSet::new();
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cap = cap();
    // Its own task: a server that does not answer holds up no client's accept.
    let prober = tokio::spawn(probe(proxy.clone(), ctx.clone()));
    let mut backoff = Duration::from_millis(10);
    loop {
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(proxy = %proxy.label, error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        if open.load(std::sync::atomic::Ordering::Acquire) >= cap {
            metrics::refused(&proxy.label, "busy");
            let mut stream = stream;
            let bytes = proxy
                .protocol
                .refusal(Refusal::Unavailable, "sidekey: too many sessions on this proxy");
            sessions.spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
            });
            continue;
        }
        let (proxy, ctx, open) = (proxy.clone(), ctx.clone(), open.clone());
        open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        sessions.spawn(async move {
            session::run(&proxy, &ctx, stream).await;
            open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
    }
    drop(listener);
    prober.abort();
    // Every session saw the stop and is sending its goodbye.
    if tokio::time::timeout(crate::scheduler::DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        sessions.shutdown().await;
    }
}

impl<P: Protocol> Proxy<P> {
    fn tls_mode(&self) -> &'static str {
        self.spec.tls.name()
    }
}

/// Removes a proxy's socket file when dropped.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Each proxy's last word on its server, for `/v1/health`.
#[derive(Default)]
pub struct Status(Mutex<BTreeMap<String, Entry>>);

struct Entry {
    secret: String,
    upstream: String,
    failure: Option<String>,
    /// The failure is a login's (the server was reached): a probe does not clear it.
    login_failed: bool,
    last_ok: Option<std::time::Instant>,
}

impl Status {
    fn add(&self, spec: &ProxySpec) {
        self.0
            .lock()
            .expect("status lock")
            .entry(spec.listen.display().to_string())
            .or_insert_with(|| Entry {
                secret: spec.secret.to_string(),
                upstream: spec.upstream.to_string(),
                failure: None,
                login_failed: false,
                last_ok: None,
            });
    }

    /// A login worked.
    fn ok(&self, label: &str) {
        if let Some(e) = self.0.lock().expect("status lock").get_mut(label) {
            e.failure = None;
            e.login_failed = false;
            e.last_ok = Some(std::time::Instant::now());
        }
    }

    /// A probe connected (TCP and TLS): clears a connection failure, not a failed login.
    fn reachable(&self, label: &str) {
        if let Some(e) = self.0.lock().expect("status lock").get_mut(label) {
            if !e.login_failed {
                e.failure = None;
            }
            e.last_ok = Some(std::time::Instant::now());
        }
    }

    /// The server could not be reached, TLS failed (or the proxy could not start).
    fn fail(&self, spec: &ProxySpec, reason: String) {
        self.set_failure(spec, reason, false);
    }

    /// The server was reached but the login failed (refused, or broken off).
    fn login_failed(&self, spec: &ProxySpec, reason: String) {
        self.set_failure(spec, reason, true);
    }

    fn set_failure(&self, spec: &ProxySpec, reason: String, login: bool) {
        self.add(spec);
        if let Some(e) = self
            .0
            .lock()
            .expect("status lock")
            .get_mut(&spec.listen.display().to_string())
        {
            e.failure = Some(reason);
            e.login_failed = login;
        }
    }

    fn recently_ok(&self, label: &str, within: Duration) -> bool {
        self.0
            .lock()
            .expect("status lock")
            .get(label)
            .and_then(|e| e.last_ok)
            .is_some_and(|at| at.elapsed() < within)
    }

    /// The proxies whose server is down, with why (never a value).
    pub fn failing(&self) -> Vec<sidekey::api::FailingProxy> {
        self.0
            .lock()
            .expect("status lock")
            .iter()
            .filter_map(|(listen, e)| {
                e.failure.as_ref().map(|reason| sidekey::api::FailingProxy {
                    listen: listen.clone(),
                    secret: e.secret.clone(),
                    upstream: e.upstream.clone(),
                    reason: reason.clone(),
                })
            })
            .collect()
    }
}

/// The proxy's metrics (labels: the proxy's socket path; never a user or a value).
pub mod metrics {
    /// `# HELP` texts of the counters.
    pub const COUNTERS: &[(&str, &str)] = &[
        (
            "sidekey_proxy_sessions_total",
            "Proxy sessions logged in upstream, by proxy.",
        ),
        (
            "sidekey_proxy_refused_total",
            "Proxy connections turned away, by proxy and reason (access, unavailable, protocol, busy).",
        ),
        (
            "sidekey_proxy_upstream_failures_total",
            "Proxy logins that failed at the database server (unreachable, TLS, refused), by proxy.",
        ),
        (
            "sidekey_proxy_bytes_total",
            "Bytes relayed by proxy sessions, by proxy and direction (to_server, to_client).",
        ),
        (
            "sidekey_proxy_sessions_ended_total",
            "Proxy sessions ended by the agent, by proxy and reason (expired, revoked, stopping).",
        ),
        (
            "sidekey_proxy_cancels_total",
            "Cancel requests forwarded to the database server, by proxy.",
        ),
    ];
    /// `# HELP` texts of the gauges.
    pub const GAUGES: &[(&str, &str)] = &[("sidekey_proxy_sessions_open", "Proxy sessions open now, by proxy.")];

    /// Counts a refused connection.
    pub fn refused(proxy: &str, reason: &'static str) {
        metrics::counter!("sidekey_proxy_refused_total", "proxy" => proxy.to_owned(), "reason" => reason).increment(1);
    }

    /// Counts a failed upstream connection or login.
    pub fn upstream_failure(proxy: &str) {
        metrics::counter!("sidekey_proxy_upstream_failures_total", "proxy" => proxy.to_owned()).increment(1);
    }

    /// Counts a session ended by the agent.
    pub fn ended(proxy: &str, reason: &'static str) {
        metrics::counter!("sidekey_proxy_sessions_ended_total", "proxy" => proxy.to_owned(), "reason" => reason)
            .increment(1);
    }

    /// Counts a forwarded cancel request.
    pub fn cancel(proxy: &str) {
        metrics::counter!("sidekey_proxy_cancels_total", "proxy" => proxy.to_owned()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::config::UpstreamTls;

    #[test]
    fn a_probe_clears_a_connection_failure_but_not_a_refused_login() {
        let spec = ProxySpec {
            index: 0,
            listen: "/run/sidekey/.s.PGSQL.5432".into(),
            protocol: ProxyProtocol::Postgres,
            secret: sidekey::SecretName::new("db"),
            upstream: Upstream {
                host: "db.internal".into(),
                port: 5432,
            },
            tls: UpstreamTls::Require,
        };
        let label = spec.listen.display().to_string();
        let status = Status::default();
        status.add(&spec);
        let reasons = |status: &Status| -> Vec<String> { status.failing().into_iter().map(|p| p.reason).collect() };
        assert!(reasons(&status).is_empty());
        status.fail(&spec, "cannot connect".into());
        status.reachable(&label);
        assert!(reasons(&status).is_empty(), "the server answers again");
        status.login_failed(&spec, "the server refused the login (code 28000)".into());
        status.reachable(&label);
        assert_eq!(reasons(&status), ["the server refused the login (code 28000)"]);
        status.fail(&spec, "cannot connect".into());
        assert_eq!(reasons(&status), ["cannot connect"]);
        status.login_failed(&spec, "refused".into());
        status.ok(&label);
        assert!(reasons(&status).is_empty(), "a login worked");
    }
}
