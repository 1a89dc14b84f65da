//! The server: HTTP/1.1 (hyper) on the Unix socket and, when configured, a loopback TCP
//! listener. A Unix connection's peer comes from the kernel (`SO_PEERCRED`) once, at accept;
//! a TCP connection has only its address, so every request on it must carry a token. Both
//! feed the same [`routes`]. On shutdown the listeners close, in-flight requests finish (up
//! to [`crate::scheduler::DRAIN`]), and the caller removes the socket file.

pub mod aws_compat;
pub mod fingerprints;
pub mod respond;
pub mod revoke;
pub mod routes;
pub mod secrets;
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

/// Accepts connections until `stop`, then drains in-flight requests for at most
/// [`crate::scheduler::DRAIN`]; connections still open after that are ended, so the agent's
/// stop never waits on a client.
pub async fn serve(listeners: Listeners, shared: Arc<Shared>, stop: CancellationToken) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let Listeners { unix, tcp } = listeners;
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = unix.accept() => a.map(|(s, _)| unix_conn(s)),
            a = async { tcp.as_ref().expect("guarded").accept().await }, if tcp.is_some() => a.map(tcp_conn),
        };
        match accepted {
            Ok(Some((Stream::Unix(s), conn))) => spawn(&graceful, &mut connections, &shared, s, conn),
            Ok(Some((Stream::Tcp(s), conn))) => spawn(&graceful, &mut connections, &shared, s, conn),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
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
    Some((
        Stream::Tcp(stream),
        Conn {
            peer: None,
            remote: Some(remote),
        },
    ))
}

fn spawn<S>(graceful: &GracefulShutdown, connections: &mut JoinSet<()>, shared: &Arc<Shared>, stream: S, conn: Conn)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = shared.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(&shared, conn, req).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    connections.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
