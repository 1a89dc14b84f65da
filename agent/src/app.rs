//! `Config` → [`App::build`] (bind the listeners, start backends) → [`App::run_until`] a
//! shutdown signal (one scheduler task per secret, one delivery task per `[[file]]`, the
//! server) → drain. Reads like the daemon's life.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use nix::sys::stat::{umask, Mode};
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
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::scheduler::{Command, SystemClock, Task, DRAIN};
use crate::server::{self, token::Tokens, Listeners, Shared};
use crate::store::Store;

/// A built agent: listeners bound, backends started, nothing served yet.
pub struct App {
    config: Config,
    listeners: Listeners,
    shared: Arc<Shared>,
    audit_writer: Writer,
    /// Backends by name: each secret's task and the registry publisher get theirs from here.
    backends: BTreeMap<String, Arc<dyn Backend>>,
    /// Each secret task's end of its command channel (revocations, route commands).
    commands: BTreeMap<sidekey::SecretName, mpsc::Receiver<Command>>,
    /// The encrypted cache, and what it restored (served already; their tasks renew them).
    cache: Option<crate::cache::Cache>,
    restored: BTreeMap<sidekey::SecretName, crate::scheduler::plan::Held>,
}

impl App {
    /// Binds the listeners and builds every backend; fails with a message naming what is wrong.
    /// `aws_token` is the value of the `AWS_TOKEN` environment variable, if set.
    pub async fn build(config: Config, aws_token: Option<&str>) -> anyhow::Result<Self> {
        let metrics = Metrics::install()?;
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
        // TCP first: once the socket file exists, every listener is up (readiness = socket).
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
            stop: CancellationToken::new(),
        });
        Ok(App {
            config,
            listeners: Listeners { unix, tcp },
            shared,
            audit_writer,
            backends,
            commands,
            cache,
            restored,
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

    /// Serves until `signal` completes, then stops gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let App {
            config,
            listeners,
            shared,
            audit_writer,
            backends,
            mut commands,
            cache,
            mut restored,
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
        let tcp = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
        let server = tokio::spawn(server::serve(listeners, shared.clone(), stop.clone()));
        tracing::info!(socket = %config.agent.socket.display(), tcp = ?tcp, secrets = config.secrets.len(), files = config.files.len(), "sidekey-agent serving");

        signal.await;
        stop.cancel();
        // A file write or on_change command in progress finishes within the drain period;
        // one still running after it is killed.
        let drain_files = async {
            let all = async { while files.join_next().await.is_some() {} };
            if tokio::time::timeout(DRAIN, all).await.is_err() {
                files.shutdown().await;
            }
        };
        let _ = tokio::join!(server, drain_files);
        let _guard = SocketFile(config.agent.socket.clone());
        let mut leases = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Ok((name, backend, Some(lease))) = result {
                leases.push((name, backend, lease));
            }
        }
        if config.agent.revoke_on_exit {
            revoke_on_exit(&shared, &backends, &leases).await;
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
    let previous = umask(Mode::from_bits_truncate(0o117));
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
