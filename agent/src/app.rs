//! `Config` → [`App::build`] (bind the listeners, start backends) → [`App::start`] (one
//! scheduler task per secret, one delivery task per `[[file]]`, the server) → wait: for a
//! shutdown signal (the daemon), or for [`Running::readiness`] to settle (`run --once`) →
//! [`Running::stop`] (drain). Reads like the daemon's life; `cmd/run.rs` says what to wait for.
//!
//! `run --once` is the same life without listeners ([`Mode::Once`]): the same scheduler and
//! delivery tasks fetch and write, nothing is bound, and no socket file is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use nix::sys::stat::{umask, Mode as FileMode};
use sidekey::config::Config;
use sidekey::fingerprint::FingerprintKey;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit_log::{AuditLog, Writer};
use crate::backend::{self, Backend};
use crate::delivery;
use crate::fingerprints::Registry;
use crate::holds::Holds;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::ready::Readiness;
use crate::scheduler::{Command, SystemClock, Task, DRAIN};
use crate::server::{self, token::Tokens, Listeners, Shared};
use crate::store::Store;

/// What the agent is started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The daemon: the socket (and the TCP listener when configured) bound and served.
    Serve,
    /// `run --once`: secrets fetched and files written, nothing bound, no socket touched.
    Once,
}

/// A built agent: listeners bound, backends started, nothing served yet.
pub struct App {
    config: Config,
    mode: Mode,
    /// `None` in [`Mode::Once`].
    listeners: Option<Listeners>,
    shared: Arc<Shared>,
    audit_writer: Writer,
    /// Backends by name: each secret's task and the registry publisher get theirs from here.
    backends: BTreeMap<String, Arc<dyn Backend>>,
    /// Each secret task's end of its command channel (revocations, route commands).
    commands: BTreeMap<sidekey::SecretName, mpsc::Receiver<Command>>,
    /// The encrypted cache, and what it restored (served already; their tasks renew them).
    cache: Option<crate::cache::Cache>,
    restored: BTreeMap<sidekey::SecretName, crate::scheduler::plan::Held>,
    /// `[[proxy]]` sockets, bound (none in [`Mode::Once`]).
    proxies: Vec<(sidekey::config::ProxySpec, UnixListener)>,
    /// Proxy sessions' holds on served versions, which the scheduler consults.
    holds: Arc<Holds>,
}

impl App {
    /// Binds the listeners (in [`Mode::Serve`]) and builds every backend; fails with a message
    /// naming what is wrong. `aws_token` is the value of the `AWS_TOKEN` environment variable,
    /// if set.
    pub async fn build(config: Config, aws_token: Option<&str>, mode: Mode) -> anyhow::Result<Self> {
        let proxies = crate::metrics::Owned {
            counters: crate::proxy::metrics::COUNTERS,
            gauges: crate::proxy::metrics::GAUGES,
        };
        let metrics = Metrics::install(crate::server::routes::LABELS, proxies)?;
        let (audit, audit_writer) = AuditLog::open(config.agent.audit_log.as_deref())?;
        let mut store = Store::new(config.secrets.keys().cloned());
        if let Some(path) = &config.agent.fingerprint_key_file {
            let key = FingerprintKey::load(path).map_err(|e| anyhow::anyhow!("agent.fingerprint_key_file: {e}"))?;
            let backends = config
                .secrets
                .iter()
                .map(|(name, spec)| (name.clone(), spec.backend.clone()))
                .collect();
            store = store.with_fingerprints(Arc::new(Registry::new(key, backends)));
        }
        let store = Arc::new(store);
        let (cache, restored) = match &config.agent.cache {
            None => (None, BTreeMap::new()),
            Some((path, key_file)) => {
                let (cache, entries, warning) =
                    crate::cache::Cache::open(path, key_file, std::time::SystemTime::now())?;
                if let Some(warning) = warning {
                    tracing::warn!("agent.cache: {warning}");
                }
                let mut held = BTreeMap::new();
                for (name, r) in entries
                    .into_iter()
                    .filter(|(n, _)| config.secrets.contains_key(n.as_str()))
                {
                    let lease = r.issued.lease.clone();
                    store.restore(&name, r.version, r.issued, r.fetched_at);
                    tracing::info!(secret = %name, version = r.version, "serving from the encrypted cache");
                    held.insert(
                        name,
                        crate::scheduler::plan::Held {
                            lease,
                            fetched_at: r.fetched_at,
                            refresh_at: None,
                            rotate_at: None,
                            last_rotation: None,
                        },
                    );
                }
                (Some(cache), held)
            }
        };
        let policy = Policy::new(&config.access, nix::unistd::geteuid().as_raw())?;
        let tokens = Tokens::new(&config.agent.tokens, aws_token)?;
        let mut backends: BTreeMap<String, Arc<dyn Backend>> = BTreeMap::new();
        for (name, b) in &config.backends {
            backends.insert(
                name.clone(),
                backend::build(name, b)
                    .await
                    .with_context(|| format!("backends.{name}"))?,
            );
        }
        let listeners = match mode {
            Mode::Serve => Some(bind(&config, &tokens).await?),
            Mode::Once => None,
        };
        let proxies = match mode {
            Mode::Serve => crate::proxy::bind(&config.proxies, |path| {
                bind_unix(&config.file, path, config.agent.socket_group.as_deref())
            })?,
            Mode::Once => Vec::new(),
        };
        let (mut tasks, mut commands) = (BTreeMap::new(), BTreeMap::new());
        for name in config.secrets.keys() {
            let (tx, rx) = mpsc::channel(4);
            tasks.insert(name.clone(), tx);
            commands.insert(name.clone(), rx);
        }
        let shared = Arc::new(Shared {
            store,
            policy,
            tokens,
            audit,
            metrics,
            specs: config.secrets.clone(),
            tasks,
            files: Arc::new(delivery::Status::default()),
            proxies: Arc::new(crate::proxy::Status::default()),
            stop: CancellationToken::new(),
        });
        Ok(App {
            config,
            mode,
            listeners,
            shared,
            audit_writer,
            backends,
            commands,
            cache,
            restored,
            proxies,
            holds: Arc::new(Holds::default()),
        })
    }

    /// The audit log, e.g. to reopen it on SIGHUP.
    pub fn audit_log(&self) -> AuditLog {
        self.shared.audit.clone()
    }

    /// Cancelled when the agent starts to stop; work tied to the agent's life ends with it.
    pub fn stopping(&self) -> CancellationToken {
        self.shared.stop.clone()
    }

    /// Starts every task: a scheduler task per secret, a delivery task per `[[file]]`, the
    /// cache writer, the registry publisher and, in [`Mode::Serve`], the server.
    pub fn start(self) -> Running {
        let App {
            config,
            mode,
            listeners,
            shared,
            audit_writer,
            backends,
            mut commands,
            cache,
            mut restored,
            proxies,
            holds,
        } = self;
        let stop = shared.stop.clone();
        let mut tasks = JoinSet::new();
        for spec in config.secrets.values() {
            let task = Task {
                spec: spec.clone(),
                backend: backends[&spec.backend].clone(),
                store: shared.store.clone(),
                audit: shared.audit.clone(),
                stop: stop.clone(),
                commands: commands.remove(&spec.name).expect("one channel per secret"),
                held: restored.remove(&spec.name),
                clock: Arc::new(SystemClock),
                holds: holds.clone(),
            };
            let (name, backend) = (spec.name.clone(), spec.backend.clone());
            tasks.spawn(async move { (name, backend, task.run().await) });
        }
        let mut files = JoinSet::new();
        for spec in &config.files {
            files.spawn(
                delivery::Task {
                    spec: spec.clone(),
                    store: shared.store.clone(),
                    audit: shared.audit.clone(),
                    status: shared.files.clone(),
                    stop: stop.clone(),
                }
                .run(),
            );
        }
        let cache_writer = cache.map(|c| tokio::spawn(crate::cache::run(c, shared.store.clone(), stop.clone())));
        if let (Some(cfg), Some(registry)) = (&config.registry, shared.store.fingerprint_registry()) {
            let backend = backends[&cfg.backend].clone();
            tokio::spawn(crate::publish::run(registry, backend, cfg.clone(), stop.clone()));
        }
        let proxy = (!proxies.is_empty()).then(|| {
            let context = crate::proxy::Context {
                store: shared.store.clone(),
                policy: Policy::new(&config.access, nix::unistd::geteuid().as_raw()).expect("compiled once already"),
                audit: shared.audit.clone(),
                holds: holds.clone(),
                status: shared.proxies.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(crate::proxy::serve(proxies, Arc::new(context)))
        });
        let (secrets, file_count) = (config.secrets.len(), config.files.len());
        let server = match listeners {
            Some(listeners) => {
                let tcp = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
                let server = tokio::spawn(server::serve(listeners, shared.clone(), stop.clone()));
                tracing::info!(socket = %config.agent.socket.display(), tcp = ?tcp, secrets, files = file_count, "sidekey-agent serving");
                Some(server)
            }
            None => {
                tracing::info!(
                    secrets,
                    files = file_count,
                    "run --once: fetching every secret and writing every file; no socket"
                );
                None
            }
        };
        Running {
            config,
            mode,
            shared,
            audit_writer,
            backends,
            tasks,
            files,
            cache_writer,
            server,
            proxy,
        }
    }
}

/// A started agent: its tasks run until [`Running::stop`].
pub struct Running {
    config: Config,
    mode: Mode,
    shared: Arc<Shared>,
    audit_writer: Writer,
    backends: BTreeMap<String, Arc<dyn Backend>>,
    /// Each secret's scheduler task; each answers the lease it held at the end.
    tasks: JoinSet<(sidekey::SecretName, String, Option<sidekey::Lease>)>,
    files: JoinSet<()>,
    cache_writer: Option<tokio::task::JoinHandle<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The `[[proxy]]` listeners and their sessions.
    proxy: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Whether every secret is served and every `[[file]]` delivered ([`crate::ready`]).
    pub fn readiness(&self) -> Readiness {
        let files = self
            .config
            .files
            .iter()
            .map(|f| (f.path.clone(), f.secrets.clone()))
            .collect();
        Readiness::new(self.shared.store.clone(), self.shared.files.clone(), files)
    }

    /// Stops: no new connections; in-flight requests, `[[file]]` work and backend calls get up
    /// to `drain` ([`DRAIN`] for a graceful stop; a failed `run --once` ends them at once);
    /// the socket is removed (only in [`Mode::Serve`]: `run --once` never touches it); the held
    /// leases are revoked when `revoke_on_exit` (never after `run --once`, whose files must
    /// outlive it); the cache is written and the audit log flushed.
    pub async fn stop(self, drain: std::time::Duration) -> anyhow::Result<()> {
        let Running {
            config,
            mode,
            shared,
            audit_writer,
            backends,
            mut tasks,
            mut files,
            cache_writer,
            server,
            proxy,
        } = self;
        shared.stop.cancel();
        let until = tokio::time::Instant::now() + drain;
        // A file write or on_change command in progress finishes within the drain period;
        // one still running after it is killed.
        let drain_files = async {
            let all = async { while files.join_next().await.is_some() {} };
            if tokio::time::timeout_at(until, all).await.is_err() {
                files.shutdown().await;
            }
        };
        let server = async {
            if let Some(server) = server {
                let _ = server.await;
            }
        };
        // Proxy sessions are told goodbye (57P01) and their sockets removed.
        let proxy = async {
            if let Some(proxy) = proxy {
                let _ = proxy.await;
            }
        };
        let _ = tokio::join!(server, drain_files, proxy);
        let _guard = (mode == Mode::Serve).then(|| SocketFile(config.agent.socket.clone()));
        // A task stops at its next wait; one still inside a backend call (a Vault that does not
        // answer) is ended at the end of the drain period, so a stop is bounded.
        let mut leases = Vec::new();
        let joined = tokio::time::timeout_at(until, async {
            while let Some(result) = tasks.join_next().await {
                if let Ok((name, backend, Some(lease))) = result {
                    leases.push((name, backend, lease));
                }
            }
        })
        .await;
        if joined.is_err() {
            if !drain.is_zero() {
                tracing::warn!("some secrets were still waiting on their backend after the drain period; ending them");
            }
            tasks.shutdown().await;
        }
        match mode {
            Mode::Serve if config.agent.revoke_on_exit => revoke_on_exit(&shared, &backends, &leases).await,
            Mode::Once if config.agent.revoke_on_exit => {
                tracing::info!("revoke_on_exit does not apply to run --once: the credentials it wrote must outlive it")
            }
            _ => {}
        }
        if let Some(writer) = cache_writer {
            writer.await.ok();
        }
        for b in backends.values() {
            b.shutdown();
        }
        tracing::info!(leases_held = leases.len(), "stopped");
        drop(shared);
        audit_writer.finish();
        Ok(())
    }
}

/// Binds the TCP listener, when configured, then the Unix socket: once the socket file
/// exists, every listener is up.
async fn bind(config: &Config, tokens: &Tokens) -> anyhow::Result<Listeners> {
    let tcp = match config.agent.tcp {
        None => None,
        Some(addr) => {
            if !tokens.any() {
                tracing::warn!(%addr, "the TCP listener accepts no request: no [agent] tokens and no AWS_TOKEN");
            }
            Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("agent.tcp: cannot listen on {addr}"))?,
            )
        }
    };
    let unix = bind_unix(&config.file, &config.agent.socket, config.agent.socket_group.as_deref())?;
    Ok(Listeners { unix, tcp })
}

/// Removes the socket file when dropped.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `revoke_on_exit = true`: the leases held at a graceful stop are revoked at their issuers
/// (each within the drain period), so nothing this agent issued outlives it.
async fn revoke_on_exit(
    shared: &Shared,
    backends: &BTreeMap<String, Arc<dyn Backend>>,
    leases: &[(sidekey::SecretName, String, sidekey::Lease)],
) {
    for (name, backend_name, lease) in leases {
        let Some(id) = &lease.id else { continue };
        let Some(backend) = backends.get(backend_name) else {
            continue;
        };
        let kind = match tokio::time::timeout(DRAIN, backend.revoke(id)).await {
            Ok(Ok(())) => {
                tracing::info!(secret = %name, lease = %id, "revoked on exit");
                sidekey::audit::EventKind::Revoke
            }
            Ok(Err(e)) => sidekey::audit::EventKind::Failure {
                action: "revoke".into(),
                reason: format!("on exit: {e}"),
            },
            Err(_) => sidekey::audit::EventKind::Failure {
                action: "revoke".into(),
                reason: format!("on exit: no answer within {DRAIN:?}"),
            },
        };
        shared.audit.record(
            sidekey::AuditEvent::new(kind)
                .secret(name)
                .backend(backend_name)
                .lease(Some(id)),
        );
    }
}

/// Binds the Unix socket with mode 0660 from creation (umask around `bind`), refusing to
/// take over a socket another agent still serves, and hands it to `group` when set.
/// Binds the agent's socket at `path`. Only a socket is ever removed there (a stale one, that
/// nothing accepts on); a regular file, directory, symlink or FIFO is refused as a config error
/// (`agent.socket`, exit 2), left as it is. `check` refuses the same (`not_a_socket`).
fn bind_unix(config_file: &Path, path: &Path, group: Option<&str>) -> anyhow::Result<UnixListener> {
    if let Some(kind) = sidekey::config::not_a_socket(path) {
        return Err(sidekey::config::Error::Invalid {
            file: config_file.to_owned(),
            key: "agent.socket".to_owned(),
            reason: format!(
                "{} exists and is {kind}, not a socket (the agent replaces only a stale socket)",
                path.display()
            ),
        }
        .into());
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("{}: another process is already serving on this socket", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("{}: cannot remove stale socket", path.display()))?;
    }
    // Bound and listening under a temporary name, then renamed: the socket path only ever
    // names a socket that accepts connections (a client that sees the file can connect).
    let staging = path.with_file_name(format!(
        ".{}.{}.binding",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::remove_file(&staging).ok();
    let previous = umask(FileMode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(&staging);
    umask(previous);
    let listener = listener.with_context(|| format!("{}: cannot bind socket", path.display()))?;
    if let Err(e) = std::fs::rename(&staging, path) {
        std::fs::remove_file(&staging).ok();
        return Err(e).with_context(|| format!("{}: cannot put the socket in place", path.display()));
    }
    if let Some(group) = group {
        let gid = match group.parse::<u32>() {
            Ok(id) => nix::unistd::Gid::from_raw(id),
            Err(_) => {
                nix::unistd::Group::from_name(group)
                    .with_context(|| format!("agent.socket_group: cannot look up group {group:?}"))?
                    .ok_or_else(|| anyhow::anyhow!("agent.socket_group: no group named {group:?}"))?
                    .gid
            }
        };
        nix::unistd::chown(path, None, Some(gid))
            .with_context(|| format!("{}: cannot give the socket to group {group}", path.display()))?;
    }
    Ok(listener)
}
