//! What every route shares: the error answer [`ApiError`], JSON and text responses, the
//! request body (read up to [`MAX_BODY`]), refusals and the audit events of requests and reads.
//! Route files import this module and never each other.
//!
//! Invariant: every refusal goes through [`refuse`], so each is counted, audited and logged
//! the same way; every successful read of a value goes through [`audit_read`].

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use sidekey::audit::EventKind;
use sidekey::{AuditEvent, SecretName};

use super::Shared;
use crate::policy::{Caller, Permit};
use crate::store::{Served, Unavailable};

/// A response as the server sends it.
pub type Reply = Response<Full<Bytes>>;

/// A route's outcome: a response, or an error answer.
pub type Answer = Result<Reply, ApiError>;

/// Largest request body read (a fingerprint list: 65 bytes a fingerprint).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// An error answer: `{"error": message}` with `status`.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    /// Seconds after which asking again is worthwhile (`Retry-After`), for a 429.
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error answer with `status`.
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same answer with `Retry-After: seconds`.
    pub(super) fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The response carrying it.
    pub(super) fn into_response(self) -> Reply {
        let mut response = json(self.status, &sidekey::api::ErrorBody { error: self.message });
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Unavailable> for ApiError {
    fn from(e: Unavailable) -> Self {
        let status = match e {
            Unavailable::Unknown(_) => StatusCode::NOT_FOUND,
            Unavailable::NotYet { .. } | Unavailable::Expired { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The request body, up to [`MAX_BODY`] bytes; more answers 413.
pub(super) async fn body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("bodies are limited to {MAX_BODY} bytes"),
        )),
    }
}

/// A JSON response, never cached by the client.
pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec(body).expect("API types always serialize");
    json_bytes(status, Bytes::from(bytes))
}

/// A response of JSON already rendered (it may hold a value: never cached by the client).
/// Built in place with static header values: nothing is parsed or copied.
pub(super) fn json_bytes(status: StatusCode, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A plain-text response (the Prometheus exposition format).
pub(super) fn text(status: StatusCode, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

/// An empty response with `status` (304 of a long-poll).
pub(super) fn empty(status: StatusCode) -> Reply {
    Response::builder()
        .status(status)
        .body(Full::default())
        .expect("static response")
}

/// An audit event about a request by `caller` on `route`.
pub(super) fn requested(kind: EventKind, caller: &Caller, route: &str) -> AuditEvent {
    let mut event = AuditEvent::new(kind);
    event.peer = caller.peer;
    event.remote = caller.remote.map(|r| r.to_string());
    event.token = caller.token.as_deref().map(str::to_owned);
    event.route = Some(route.to_owned());
    event
}

/// Refuses `caller` on `route` (about `secret`, when one is named): counted, audited, logged,
/// and answered with `status` and `reason`.
pub(super) fn refuse(
    shared: &Shared,
    caller: &Caller,
    route: &str,
    secret: Option<&str>,
    status: StatusCode,
    reason: String,
) -> ApiError {
    metrics::counter!("sidekey_refusals_total", "route" => route.to_owned()).increment(1);
    // Tallied like reads: a flood of the same refusal is one audit line (with its count) and
    // one log line per window, not one each.
    let first = shared.audit.refusal(crate::audit_log::Refused {
        peer: caller.peer,
        remote: caller.remote,
        token: caller.token.as_deref().map(str::to_owned),
        route: route.to_owned(),
        secret: secret.map(SecretName::new),
        reason: reason.clone(),
    });
    if first {
        let (uid, remote) = (caller.peer.map(|p| p.uid), caller.remote.map(|r| r.to_string()));
        tracing::info!(?uid, ?remote, token = ?caller.token, route, status = status.as_u16(), reason = %reason, "refused");
    }
    ApiError::new(status, reason)
}

/// Records a successful read.
pub(super) fn audit_read(
    shared: &Shared,
    caller: &Caller,
    route: &'static str,
    name: &str,
    served: &Served,
    permit: &Permit,
) {
    shared.audit.read(crate::audit_log::ReadOf {
        secret: name,
        version: served.version,
        lease_id: served.lease.as_ref().and_then(|l| l.id.as_ref()),
        peer: caller.peer,
        remote: caller.remote,
        token: caller.token.as_deref(),
        route,
        rule: permit.rule,
    });
}

/// Sends a command to `name`'s scheduler task — the server's only way to change what is
/// served — and waits for its answer, at most `timeout` in all (the task may be busy with its
/// own backend call): 504 saying `doing` takes too long (its outcome is audited), 503 when
/// the agent is stopping.
pub(super) async fn ask<T>(
    shared: &Shared,
    name: &SecretName,
    timeout: std::time::Duration,
    doing: &str,
    command: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> crate::scheduler::Command,
) -> Result<T, ApiError> {
    let stopping = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    let task = shared
        .tasks
        .get(name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no secret {:?}", name.as_str())))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let asked = async {
        task.send(command(reply)).await.map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())
    };
    tokio::time::timeout(timeout, asked).await.map_err(|_| {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("{doing} takes longer than {timeout:?}; see the audit log"),
        )
    })?
}
