//! The server: HTTP/1.1 (hyper) on the Unix socket and, when configured, a loopback TCP
//! listener. A Unix connection's peer comes from the kernel (`SO_PEERCRED`) once, at accept;
//! a TCP connection has only its address, so every request on it must carry a token. Both
//! feed the same [`routes`], except `GET /ping` ([`ping`]), answered to anyone before the
//! caller is identified: it says only that the server is up. On shutdown the listeners close, in-flight requests finish (up
//! to [`crate::scheduler::DRAIN`]), and the caller removes the socket file.

pub mod aws_compat;
pub mod fingerprints;
pub mod ping;
pub mod respond;
pub mod revoke;
pub mod routes;
pub mod secrets;
pub mod tcp_owner;
pub mod token;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sidekey::audit::Peer;
use sidekey::config::SecretSpec;
use sidekey::SecretName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::metrics::Metrics;
use crate::policy::{Caller, Policy};
use crate::store::Store;

/// What request handlers share.
pub struct Shared {
    /// Served values.
    pub store: Arc<Store>,
    /// The access policy.
    pub policy: Policy,
    /// Accepted bearer tokens.
    pub tokens: token::Tokens,
    /// The audit log.
    pub audit: AuditLog,
    /// The metrics recorder.
    pub metrics: Metrics,
    /// Every configured secret.
    pub specs: BTreeMap<SecretName, SecretSpec>,
    /// Each secret's scheduler task: the server's only way to change what is served
    /// (`Revoke`, `Refresh`, `FetchVersion`).
    pub tasks: BTreeMap<SecretName, tokio::sync::mpsc::Sender<crate::scheduler::Command>>,
    /// `[[file]]` deliveries that are failing, for `/v1/health`.
    pub files: Arc<crate::delivery::Status>,
    /// `[[proxy]]` sockets whose database server is down, for `/v1/health`.
    pub proxies: Arc<crate::proxy::Status>,
    /// Cancelled when the agent stops: long-polls answer at once instead of holding the stop.
    pub stop: CancellationToken,
}

/// What the server knows of a connection before any request: the kernel's peer on the Unix
/// socket, the remote address on TCP.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    /// The Unix socket peer.
    pub peer: Option<Peer>,
    /// The TCP remote address.
    pub remote: Option<SocketAddr>,
    /// The TCP listener's own address (to find who owns the remote end, [`tcp_owner`]).
    pub local: Option<SocketAddr>,
}

impl From<Conn> for Caller {
    fn from(conn: Conn) -> Caller {
        Caller {
            peer: conn.peer,
            remote: conn.remote,
            token: None,
        }
    }
}

/// The listeners the agent serves on.
pub struct Listeners {
    /// The Unix socket.
    pub unix: UnixListener,
    /// The loopback TCP listener, when configured.
    pub tcp: Option<TcpListener>,
}

/// File descriptors kept out of every listener's share: backends, files, the runtime.
const RESERVED_FDS: u64 = 64;

/// How many connections each listener may hold at once, from the process's open-file limit:
/// the Unix socket half of what is left after [`RESERVED_FDS`], the TCP listener a quarter, so
/// that a flood of TCP connections can never take the fds the socket's callers need.
fn caps() -> Caps {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let budget = limit.saturating_sub(RESERVED_FDS).max(8);
    Caps {
        unix: (budget / 2) as usize,
        tcp: (budget / 4) as usize,
    }
}

struct Caps {
    unix: usize,
    tcp: usize,
}

/// Connections open on one listener; a [`Slot`] is held for each.
#[derive(Default)]
struct Open(Arc<std::sync::atomic::AtomicUsize>);

/// One open connection, counted until it is dropped.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Open {
    /// A slot, unless `cap` connections are open already.
    fn take(&self, cap: usize) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.0.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A warning that repeats at most once per [`Throttled::EVERY`], with the count of what it
/// held back: a flood must not turn into a flood of log lines.
struct Throttled {
    last: Option<tokio::time::Instant>,
    held: u64,
}

impl Throttled {
    const EVERY: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Throttled { last: None, held: 0 }
    }

    /// Whether to log now; when so, also how many were held back since the last line.
    fn due(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|at| now.duration_since(at) < Self::EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// Accepts connections until `stop`, then drains in-flight requests for at most
/// [`crate::scheduler::DRAIN`]; connections still open after that are ended, so the agent's
/// stop never waits on a client. Each listener holds at most its share of the open-file limit
/// ([`caps`]); a connection past it is closed at once. A failing `accept` (EMFILE) backs off.
pub async fn serve(listeners: Listeners, shared: Arc<Shared>, stop: CancellationToken) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let Listeners { unix, tcp } = listeners;
    let (unix_open, tcp_open) = (Open::default(), Open::default());
    let (mut full, mut failing) = (Throttled::new(), Throttled::new());
    let mut backoff = Duration::from_millis(10);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = unix.accept() => a.map(|(s, _)| unix_conn(s)),
            a = async { tcp.as_ref().expect("guarded").accept().await }, if tcp.is_some() => a.map(tcp_conn),
        };
        let caps = caps();
        let (stream, conn) = match accepted {
            Ok(Some(accepted)) => accepted,
            Ok(None) => continue,
            Err(e) => {
                if let Some(held) = failing.due() {
                    tracing::warn!(error = %e, repeated = held, "accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let (slot, listener, cap) = match &stream {
            Stream::Unix(_) => (unix_open.take(caps.unix), "unix", caps.unix),
            Stream::Tcp(_) => (tcp_open.take(caps.tcp), "tcp", caps.tcp),
        };
        let Some(slot) = slot else {
            metrics::counter!("sidekey_connections_refused_total", "listener" => listener).increment(1);
            if let Some(held) = full.due() {
                tracing::warn!(
                    listener,
                    cap,
                    repeated = held,
                    "connection limit reached; closing new connections"
                );
            }
            continue; // dropping the stream closes it
        };
        match stream {
            Stream::Unix(s) => spawn(&graceful, &mut connections, &shared, s, conn, slot),
            Stream::Tcp(s) => spawn(&graceful, &mut connections, &shared, s, conn, slot),
        }
    }
    drop((unix, tcp));
    if tokio::time::timeout(crate::scheduler::DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still in flight after the drain period; ending them");
    }
    connections.shutdown().await;
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

fn unix_conn(stream: tokio::net::UnixStream) -> Option<(Stream, Conn)> {
    match stream.peer_cred() {
        Ok(cred) => {
            let peer = Peer {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            };
            Some((
                Stream::Unix(stream),
                Conn {
                    peer: Some(peer),
                    remote: None,
                    local: None,
                },
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials; closing");
            None
        }
    }
}

fn tcp_conn((stream, remote): (tokio::net::TcpStream, SocketAddr)) -> Option<(Stream, Conn)> {
    // Defense in depth, as the AWS Secrets Manager Agent does: answers never leave the host.
    let _ = stream.set_ttl(1);
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    Some((
        Stream::Tcp(stream),
        Conn {
            peer: None,
            remote: Some(remote),
            local,
        },
    ))
}

fn spawn<S>(
    graceful: &GracefulShutdown,
    connections: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    stream: S,
    conn: Conn,
    slot: Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = shared.clone();
    let idle = Arc::new(Idle::new());
    let watched = idle.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let idle = idle.clone();
        idle.busy();
        async move {
            let reply = match ping::answer(&req, &shared.metrics.requests) {
                Some(pong) => pong,
                None => routes::handle(&shared, conn, req).await,
            };
            idle.answered();
            Ok::<_, std::convert::Infallible>(reply)
        }
    });
    // One write(2) of head and body copied together, not writev(2) of two buffers: an answer
    // is a few hundred bytes, and the copy costs less than the vectored path (hyper's
    // buffer queue, the kernel's iovec import) — issue 18.
    // hyper's own header read timeout is off: [`Idle`] keeps the same deadline without a
    // timer per request.
    let connection = http1::Builder::new()
        .writev(false)
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    connections.spawn(async move {
        let _slot = slot;
        tokio::select! {
            ended = connection => if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            },
            () = watched.expired() => tracing::debug!("no request head within {HEAD_TIMEOUT:?}; closing the connection"),
        }
    });
}

/// How long a connection may take to send a request's head, counted from when it was
/// accepted or its last answer was made; then it is closed (slow or idle clients do not hold
/// their connection slot). What hyper's `header_read_timeout` did, without its cost: hyper
/// armed a timer for every request (a boxed sleep, a timer-wheel insert and removal under
/// the wheel's lock: ~800 instructions, 2 % of the agent's CPU on a cached read — issue 18);
/// [`Idle`] notes two atomics a request and its one sleep wakes once per period.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a connection's request is being answered, and since when it has been waiting for
/// the next one. Written by the connection's service, read by its deadline ([`Idle::expired`]).
struct Idle {
    /// When the connection was accepted: the origin of `since`.
    opened: tokio::time::Instant,
    /// A request is being answered (head read, answer not yet made): no deadline runs.
    busy: std::sync::atomic::AtomicBool,
    /// Nanoseconds after `opened` at which the last answer was made (0: none yet).
    since: std::sync::atomic::AtomicU64,
}

impl Idle {
    fn new() -> Self {
        Idle {
            opened: tokio::time::Instant::now(),
            busy: std::sync::atomic::AtomicBool::new(false),
            since: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A request head was read.
    fn busy(&self) {
        self.busy.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Its answer was made: the next head is due within [`HEAD_TIMEOUT`].
    fn answered(&self) {
        let since = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.since.store(since, std::sync::atomic::Ordering::Relaxed);
        self.busy.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the next head is due: `None` while a request is being answered.
    fn due(&self) -> Option<tokio::time::Instant> {
        use std::sync::atomic::Ordering;
        if self.busy.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.opened + Duration::from_nanos(self.since.load(Ordering::Relaxed)) + HEAD_TIMEOUT)
    }

    /// Resolves once no request head has arrived for [`HEAD_TIMEOUT`] since the connection
    /// was accepted or its last answer was made. Sleeps to the deadline known when it last
    /// woke; a request answered meanwhile moves the deadline, found on waking.
    async fn expired(&self) {
        let sleep = tokio::time::sleep(HEAD_TIMEOUT);
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().await;
            let now = tokio::time::Instant::now();
            let next = match self.due() {
                Some(due) if due <= now => return,
                Some(due) => due,
                None => now + HEAD_TIMEOUT,
            };
            sleep.as_mut().reset(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head deadline runs from the accept and from each answer, never while a request is
    /// being answered.
    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_head_for_the_timeout_expires() {
        let started = tokio::time::Instant::now();
        let idle = Idle::new();
        idle.expired().await;
        assert_eq!(started.elapsed(), HEAD_TIMEOUT, "from the accept");

        let idle = Arc::new(Idle::new());
        let watched = idle.clone();
        let started = tokio::time::Instant::now();
        let expiry = tokio::spawn(async move { watched.expired().await });
        tokio::time::sleep(Duration::from_secs(4)).await;
        idle.busy();
        tokio::time::sleep(Duration::from_secs(30)).await; // a long poll: no deadline
        assert!(!expiry.is_finished());
        idle.answered();
        tokio::time::sleep(Duration::from_secs(9)).await;
        idle.busy();
        idle.answered(); // another request at 43 s
        expiry.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(53), "10 s after the last answer");
    }
}
