//! The socket server: HTTP/1.1 (hyper) on a Unix listener. Each connection's peer is taken
//! from the kernel (`SO_PEERCRED`) once, at accept, and every request on it is routed with
//! that identity ([`routes`]). On shutdown the listener closes, in-flight requests finish
//! (up to [`crate::scheduler::DRAIN`]), and the socket file is removed by the caller.

pub mod routes;

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use sidekey::audit::Peer;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::store::Store;

/// What request handlers share.
pub struct Shared {
    /// Served values.
    pub store: Arc<Store>,
    /// The access policy.
    pub policy: Policy,
    /// The audit log.
    pub audit: AuditLog,
    /// The metrics recorder.
    pub metrics: Metrics,
    /// `backend/kind` of each secret, for the `source` field.
    pub sources: std::collections::BTreeMap<String, String>,
}

/// Accepts connections until `stop`, then drains in-flight requests.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>, stop: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = match stream.peer_cred() {
            Ok(cred) => Peer {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the peer's credentials; closing");
                continue;
            }
        };
        let shared = shared.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, std::convert::Infallible>(routes::handle(&shared, peer, req).await) }
        });
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(crate::scheduler::DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still in flight after the drain period");
    }
}
