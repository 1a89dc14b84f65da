//! Routes of the agent's HTTP API (PRODUCT.md, "HTTP API"): which route a request names,
//! who is asking, and the dispatch to the route's handler. Every request first passes the
//! access policy; errors become `{"error": ...}` with a status in one place,
//! [`ApiError`](super::respond::ApiError). The secret routes (`/v1/secrets`, `/v1/health`,
//! `/metrics`) are answered here; the others in their own files, which share only
//! [`super::respond`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use sidekey::api::{FailingSecret, Health, LeaseInfo, SecretList, SecretSummary};
use sidekey::audit::format_time;
use sidekey::SecretName;
use zeroize::Zeroizing;

use super::respond::{self, audit_read, json, json_bytes, refuse, text, Answer, ApiError, Reply};
use super::{aws_compat, fingerprints, revoke, token, Conn, Shared};
use crate::policy::{Caller, Permit};
use crate::store::Served;

/// Longest `?timeout=` a long-poll may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The routes, as labelled in metrics and audit.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'r> {
    /// `GET /v1/secrets`
    List,
    /// `GET /v1/health`
    Health,
    /// `GET /metrics`
    Metrics,
    /// `GET /v1/secrets/{name}`, the name still percent-encoded.
    Secret(&'r str),
    /// `GET /secretsmanager/get`
    AwsGet,
    /// `GET /v1/aws-credentials/{name}`, the name still percent-encoded.
    AwsCredentials(&'r str),
    /// `GET /v1/fingerprints`
    Fingerprints,
    /// `POST /v1/fingerprints/match`
    FingerprintsMatch,
    /// `POST /v1/revoke`
    Revoke,
}

impl<'r> Route<'r> {
    /// The route a request path names; `None` answers 404. Pure, so it is fuzzed
    /// (`fuzz/fuzz_targets/http_routes.rs`).
    pub fn parse(path: &'r str) -> Option<Route<'r>> {
        Some(match path {
            "/v1/secrets" => Route::List,
            "/v1/health" => Route::Health,
            "/metrics" => Route::Metrics,
            "/secretsmanager/get" => Route::AwsGet,
            "/v1/fingerprints" => Route::Fingerprints,
            "/v1/fingerprints/match" => Route::FingerprintsMatch,
            "/v1/revoke" => Route::Revoke,
            p => {
                if let Some(raw) = p.strip_prefix("/v1/secrets/") {
                    Route::Secret(raw)
                } else if let Some(raw) = p.strip_prefix("/v1/aws-credentials/") {
                    Route::AwsCredentials(raw)
                } else {
                    return None;
                }
            }
        })
    }

    /// The route's label in metrics and audit events.
    pub fn label(&self) -> &'static str {
        match self {
            Route::List => "/v1/secrets",
            Route::Health => "/v1/health",
            Route::Metrics => "/metrics",
            Route::Secret(_) => "/v1/secrets/{name}",
            Route::AwsGet => "/secretsmanager/get",
            Route::AwsCredentials(_) => "/v1/aws-credentials/{name}",
            Route::Fingerprints => "/v1/fingerprints",
            Route::FingerprintsMatch => "/v1/fingerprints/match",
            Route::Revoke => "/v1/revoke",
        }
    }

    /// The one method the route answers.
    pub fn method(&self) -> Method {
        match self {
            Route::FingerprintsMatch | Route::Revoke => Method::POST,
            _ => Method::GET,
        }
    }
}

/// Answers one request on connection `conn`.
pub async fn handle(shared: &Shared, conn: Conn, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // Only POST routes carry a body.
    let body = if parts.method == Method::POST {
        match respond::body(body).await {
            Ok(body) => body,
            Err(e) => return e.into_response(),
        }
    } else {
        Bytes::new()
    };
    let req = Request::from_parts(parts, body);
    let (route, result) = route(shared, conn, &req).await;
    let response = result.unwrap_or_else(ApiError::into_response);
    crate::metrics::request(route, response.status(), started.elapsed());
    response
}

async fn route(shared: &Shared, conn: Conn, req: &Request<Bytes>) -> (&'static str, Answer) {
    let path = req.uri().path();
    let Some(route) = Route::parse(path) else {
        return (
            "other",
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("no route {path}"))),
        );
    };
    let label = route.label();
    if req.method() != route.method() {
        return (
            label,
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{label} answers {} only", route.method()),
            )),
        );
    }
    let caller = match identify(shared, conn, req, &route).await {
        Ok(caller) => caller,
        Err((status, reason)) => {
            return (
                label,
                Err(refuse(shared, &Caller::from(conn), label, None, status, reason)),
            )
        }
    };
    let admitted = match shared.policy.admit(&caller) {
        Ok(a) => a,
        Err(denied) => {
            return (
                label,
                Err(refuse(shared, &caller, label, None, StatusCode::FORBIDDEN, denied.0)),
            )
        }
    };
    let result = match route {
        Route::List => Ok(list(shared, &admitted)),
        Route::Health => Ok(health(shared)),
        Route::Metrics => Ok(text(StatusCode::OK, shared.metrics.render(&shared.store))),
        Route::Secret(raw) | Route::AwsCredentials(raw) => {
            let Some(name) = secret_name(raw) else {
                return (
                    label,
                    Err(ApiError::new(StatusCode::BAD_REQUEST, "bad secret name in path")),
                );
            };
            match admitted.permit(&name) {
                Err(denied) => Err(refuse(
                    shared,
                    &caller,
                    label,
                    Some(&name),
                    StatusCode::FORBIDDEN,
                    denied.0,
                )),
                Ok(permit) if matches!(route, Route::Secret(_)) => {
                    read(shared, &caller, permit, &name, req.uri().query()).await
                }
                Ok(permit) => aws_compat::credentials(shared, &caller, permit, &name),
            }
        }
        Route::AwsGet => aws_compat::get_secret_value(shared, &caller, &admitted, req.uri().query()).await,
        Route::Fingerprints => fingerprints::all(shared, &caller, &admitted),
        Route::FingerprintsMatch => fingerprints::matches(shared, &caller, &admitted, req.body()),
        Route::Revoke => {
            let refuse = |secret: &str, reason: String| {
                refuse(shared, &caller, label, Some(secret), StatusCode::FORBIDDEN, reason)
            };
            revoke::revoke(shared, &admitted, req.body(), refuse).await
        }
    };
    (label, result)
}

/// Who is asking: the connection's identity plus a verified token. Refuses (status, reason)
/// requests with `X-Forwarded-For`, a token that matches none, no token on the TCP listener,
/// and AWS-compatible requests without `X-Aws-Parameters-Secrets-Token`.
async fn identify(
    shared: &Shared,
    conn: Conn,
    req: &Request<Bytes>,
    route: &Route<'_>,
) -> Result<Caller, (StatusCode, String)> {
    let headers = req.headers();
    if headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded") {
        return Err((
            StatusCode::FORBIDDEN,
            "requests with X-Forwarded-For or Forwarded are refused".into(),
        ));
    }
    let aws_route = matches!(route, Route::AwsGet);
    if aws_route && !headers.contains_key("x-aws-parameters-secrets-token") {
        return Err((
            StatusCode::UNAUTHORIZED,
            "the X-Aws-Parameters-Secrets-Token header is required".into(),
        ));
    }
    let mut caller = Caller::from(conn);
    match token::presented(headers, aws_route) {
        Some(presented) => match shared.tokens.verify(presented).await {
            Some(name) => caller.token = Some(name),
            None => {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the token matches none of this agent's tokens".into(),
                ))
            }
        },
        None if conn.remote.is_some() => {
            return Err((
                StatusCode::UNAUTHORIZED,
                "a token is required on the TCP listener (Authorization: Bearer TOKEN)".into(),
            ))
        }
        None => {}
    }
    Ok(caller)
}

fn list(shared: &Shared, admitted: &crate::policy::Admitted<'_>) -> Reply {
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

fn health(shared: &Shared) -> Reply {
    let failing: Vec<FailingSecret> = shared
        .store
        .unhealthy(SystemTime::now())
        .into_iter()
        .map(|f| FailingSecret {
            name: f.name.to_string(),
            reason: f.reason,
            served: f.served,
        })
        .collect();
    // 503 only when something is not served; a failing refresh behind a still-valid value,
    // or a [[file]] that could not be written, is reported as degraded with 200.
    let files = shared.files.failing();
    let (status, word) = match () {
        _ if failing.is_empty() && files.is_empty() => (StatusCode::OK, "ok"),
        _ if failing.iter().all(|f| f.served) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
    };
    json(
        status,
        &Health {
            status: word.to_owned(),
            failing,
            files,
        },
    )
}

/// `GET /v1/secrets/{name}[?wait=V&timeout=D]`
async fn read(shared: &Shared, caller: &Caller, permit: Permit, name: &str, query: Option<&str>) -> Answer {
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
                _ => return Ok(respond::empty(StatusCode::NOT_MODIFIED)),
            }
        }
    }
    audit_read(shared, caller, "/v1/secrets/{name}", name, &served, &permit);
    Ok(secret_response(shared, name, &served))
}

/// The query of `GET /v1/secrets/{name}`: the version to wait past (`wait=V`) and for how
/// long (`timeout=D`, default 30 s, at most [`MAX_WAIT`]). Anything else answers 400.
pub fn parse_wait(query: Option<&str>) -> Result<(Option<u64>, Duration), ApiError> {
    let mut wait = None;
    let mut timeout = DEFAULT_WAIT;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "wait" => {
                wait = Some(value.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("wait={value:?} is not a version number"),
                    )
                })?)
            }
            "timeout" => {
                timeout = humantime::parse_duration(&value)
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

fn secret_response(shared: &Shared, name: &str, served: &Served) -> Reply {
    let now = SystemTime::now();
    // The body only changes with the version and, through `ttl_s`, each second: build it once
    // per second and hand out the same bytes.
    let second = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let body = {
        let mut rendered = served.body.0.lock().expect("never poisoned");
        match &*rendered {
            Some((at, body)) if *at == second => body.clone(),
            _ => {
                let body = Arc::new(secret_body(shared, name, served, now));
                *rendered = Some((second, body.clone()));
                body
            }
        }
    };
    json_bytes(StatusCode::OK, Bytes::from_owner(RenderedBytes(body)))
}

fn secret_body(shared: &Shared, name: &str, served: &Served, now: SystemTime) -> Zeroizing<Vec<u8>> {
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
        source: &shared
            .specs
            .get(&SecretName::new(name))
            .map(|s| format!("{}/{}", s.backend, s.source.kind_name()))
            .unwrap_or_default(),
    };
    // Sized up front, so that no grown-out-of copy of the value is left unzeroized.
    let mut out = Zeroizing::new(Vec::with_capacity(served.data.expose_json().len() + 512));
    serde_json::to_writer(&mut *out, &body).expect("API types always serialize");
    out
}

/// A rendered body shared with the response that sends it.
struct RenderedBytes(Arc<Zeroizing<Vec<u8>>>);

impl AsRef<[u8]> for RenderedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The secret name in a route's path segment: percent-decoded, not empty, no `/`; `None`
/// answers 400.
pub fn secret_name(raw: &str) -> Option<String> {
    percent_decode(raw).filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    // The crate passes a malformed escape through as written; here it answers 400. Every `%`
    // must start two hex digits, nothing else (issue 6: a sign, as in "%+6", is not a digit).
    let bytes = s.as_bytes();
    let well_formed = s.match_indices('%').all(|(i, _)| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
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
    fn paths_name_their_route() {
        assert_eq!(Route::parse("/v1/secrets"), Some(Route::List));
        assert_eq!(Route::parse("/v1/secrets/db"), Some(Route::Secret("db")));
        assert_eq!(
            Route::parse("/v1/aws-credentials/a%2Fb"),
            Some(Route::AwsCredentials("a%2Fb"))
        );
        assert_eq!(Route::parse("/v1/revoke").map(|r| r.method()), Some(Method::POST));
        assert_eq!(Route::parse("/v1/secret"), None);
        assert_eq!(Route::parse(""), None);
        assert_eq!(secret_name("a%2Fb"), None);
        assert_eq!(secret_name(""), None);
    }

    #[test]
    fn percent_escapes_decode_or_fail() {
        assert_eq!(percent_decode("a%2Db").as_deref(), Some("a-b"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a%"), None);
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"), "a path is not a form: + stays");
    }

    /// Found by `fuzz/fuzz_targets/http_routes.rs` (issue 6): `%+6` decoded to byte 6.
    #[test]
    fn issue_6_percent_escapes_with_a_sign_are_malformed() {
        assert_eq!(percent_decode("role%+6"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("%+f"), None);
        assert_eq!(secret_name("role%+6x"), None);
        assert_eq!(percent_decode("%2b6").as_deref(), Some("+6"));
    }
}
