//! Routes of the agent's HTTP API (PRODUCT.md, "HTTP API"). Every request first passes the
//! access policy; errors become `{"error": ...}` with a status in one place, [`ApiError`].

use std::time::{Duration, Instant, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use sidekey::api::{FailingSecret, Health, LeaseInfo, SecretList, SecretSummary};
use sidekey::audit::{format_time, EventKind, Peer};
use sidekey::{AuditEvent, SecretName};

use super::Shared;
use crate::policy::Permit;
use crate::store::{Served, Unavailable};

/// Longest `?timeout=` a long-poll may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
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

/// Answers one request from `peer`.
pub async fn handle(shared: &Shared, peer: Peer, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (route, result) = route(shared, peer, &req).await;
    let response = result.unwrap_or_else(|e| json(e.status, &sidekey::api::ErrorBody { error: e.message }));
    let status = response.status().as_u16().to_string();
    metrics::counter!("sidekey_requests_total", "route" => route, "status" => status).increment(1);
    metrics::histogram!("sidekey_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}

async fn route(
    shared: &Shared,
    peer: Peer,
    req: &Request<Incoming>,
) -> (&'static str, Result<Response<Full<Bytes>>, ApiError>) {
    let path = req.uri().path();
    let (label, secret) = match path {
        "/v1/secrets" => ("/v1/secrets", None),
        "/v1/health" => ("/v1/health", None),
        "/metrics" => ("/metrics", None),
        p if p.starts_with("/v1/secrets/") => ("/v1/secrets/{name}", Some(&p["/v1/secrets/".len()..])),
        _ => {
            return (
                "other",
                Err(ApiError::new(StatusCode::NOT_FOUND, format!("no route {path}"))),
            )
        }
    };
    if req.method() != Method::GET {
        return (
            label,
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{label} answers GET only"),
            )),
        );
    }
    let admitted = match shared.policy.admit(&peer) {
        Ok(a) => a,
        Err(denied) => return (label, Err(refuse(shared, peer, label, None, denied.0))),
    };
    let result = match secret {
        None if label == "/v1/secrets" => Ok(list(shared, &admitted)),
        None if label == "/v1/health" => Ok(health(shared)),
        None => Ok(text(StatusCode::OK, shared.metrics.render(&shared.store))),
        Some(name) => {
            let name = match percent_decode(name) {
                Some(n) if !n.is_empty() && !n.contains('/') => n,
                _ => {
                    return (
                        label,
                        Err(ApiError::new(StatusCode::BAD_REQUEST, "bad secret name in path")),
                    )
                }
            };
            match admitted.permit(&name) {
                Ok(permit) => read(shared, peer, permit, &name, req.uri().query()).await,
                Err(denied) => Err(refuse(shared, peer, label, Some(&name), denied.0)),
            }
        }
    };
    (label, result)
}

fn refuse(shared: &Shared, peer: Peer, route: &str, secret: Option<&str>, reason: String) -> ApiError {
    metrics::counter!("sidekey_refusals_total", "route" => route.to_owned()).increment(1);
    let mut event = AuditEvent::new(EventKind::Refusal { reason: reason.clone() }).request(peer, route);
    event.secret = secret.map(SecretName::new);
    shared.audit.record(event);
    tracing::info!(uid = peer.uid, gid = peer.gid, pid = peer.pid, route, reason = %reason, "refused");
    ApiError::new(StatusCode::FORBIDDEN, reason)
}

fn list(shared: &Shared, admitted: &crate::policy::Admitted<'_>) -> Response<Full<Bytes>> {
    let now = SystemTime::now();
    let secrets = shared
        .store
        .names()
        .filter(|n| admitted.permit(n.as_str()).is_ok())
        .map(|n| {
            let served = shared.store.read(n.as_str(), now).ok();
            SecretSummary {
                name: n.to_string(),
                version: served.as_ref().map_or(0, |s| s.version),
                expires_at: served
                    .as_ref()
                    .and_then(|s| s.lease.as_ref())
                    .map(|l| format_time(l.expires_at)),
            }
        })
        .collect();
    json(StatusCode::OK, &SecretList { secrets })
}

fn health(shared: &Shared) -> Response<Full<Bytes>> {
    let failing: Vec<FailingSecret> = shared
        .store
        .unhealthy(SystemTime::now())
        .into_iter()
        .map(|(name, reason)| FailingSecret {
            name: name.to_string(),
            reason,
        })
        .collect();
    let (status, word) = if failing.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    json(
        status,
        &Health {
            status: word.to_owned(),
            failing,
        },
    )
}

/// `GET /v1/secrets/{name}[?wait=V&timeout=D]`
async fn read(
    shared: &Shared,
    peer: Peer,
    permit: Permit,
    name: &str,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (wait, timeout) = parse_wait(query)?;
    let mut served = shared.store.read(name, SystemTime::now())?;
    if let Some(known) = wait {
        if served.version == known {
            let mut rx = shared
                .store
                .subscribe(name)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such secret"))?;
            let changed = tokio::time::timeout(
                timeout,
                rx.wait_for(|slot| slot.served.as_ref().is_some_and(|s| s.version != known)),
            )
            .await;
            match changed {
                Ok(Ok(_)) => served = shared.store.read(name, SystemTime::now())?,
                _ => {
                    return Ok(Response::builder()
                        .status(StatusCode::NOT_MODIFIED)
                        .body(Full::default())
                        .expect("static response"))
                }
            }
        }
    }
    let mut event = AuditEvent::new(EventKind::Read)
        .secret(&SecretName::new(name))
        .lease(served.lease.as_ref().and_then(|l| l.id.as_ref()))
        .version(served.version)
        .request(peer, "/v1/secrets/{name}");
    event.rule = Some(permit.rule);
    shared.audit.record(event);
    Ok(secret_response(shared, name, &served))
}

fn parse_wait(query: Option<&str>) -> Result<(Option<u64>, Duration), ApiError> {
    let mut wait = None;
    let mut timeout = DEFAULT_WAIT;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "wait" => {
                wait = Some(value.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("wait={value:?} is not a version number"),
                    )
                })?)
            }
            "timeout" => {
                let decoded = percent_decode(value).unwrap_or_default();
                timeout = humantime::parse_duration(&decoded)
                    .map_err(|_| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("timeout={value:?} is not a duration like 30s"),
                        )
                    })?
                    .min(MAX_WAIT);
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {other:?}"),
                ))
            }
        }
    }
    Ok((wait, timeout))
}

#[derive(Serialize)]
struct SecretBody<'a> {
    name: &'a str,
    version: u64,
    data: &'a RawValue,
    lease: Option<LeaseInfo>,
    fetched_at: String,
    source: &'a str,
}

fn secret_response(shared: &Shared, name: &str, served: &Served) -> Response<Full<Bytes>> {
    let now = SystemTime::now();
    // The value leaves here: spliced as raw JSON, never parsed or logged.
    let data: &RawValue = serde_json::from_str(served.data.expose_json()).expect("SecretData holds a JSON object");
    let body = SecretBody {
        name,
        version: served.version,
        data,
        lease: served.lease.as_ref().map(|l| LeaseInfo {
            id: l.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
            ttl_s: l.remaining(now).as_secs(),
            expires_at: format_time(l.expires_at),
            renewable: l.renewable,
        }),
        fetched_at: format_time(served.fetched_at),
        source: shared.sources.get(name).map(String::as_str).unwrap_or_default(),
    };
    json(StatusCode::OK, &body)
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).expect("API types always serialize");
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static headers are valid")
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_queries_parse_or_answer_400() {
        assert_eq!(
            parse_wait(Some("wait=3&timeout=2s")).unwrap(),
            (Some(3), Duration::from_secs(2))
        );
        assert_eq!(parse_wait(None).unwrap(), (None, DEFAULT_WAIT));
        assert_eq!(parse_wait(Some("timeout=2h")).unwrap().1, MAX_WAIT);
        assert_eq!(parse_wait(Some("wait=x")).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            parse_wait(Some("timeout=soon")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_wait(Some("color=red")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn percent_escapes_decode_or_fail() {
        assert_eq!(percent_decode("a%2Db").as_deref(), Some("a-b"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
