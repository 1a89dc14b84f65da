//! Routes of the agent's HTTP API (docs/http-api.md): which route a request names,
//! who is asking, and the dispatch to the route's handler in its own file ([`super::secrets`],
//! [`super::aws_compat`], [`super::fingerprints`], [`super::revoke`]); those share only
//! [`super::respond`]. Every request first passes the access policy; errors become
//! `{"error": ...}` with a status in one place, [`ApiError`].

use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};

use super::respond::{self, refuse, text, Answer, ApiError, Reply};
pub use super::secrets::{parse_wait, MAX_WAIT};
use super::{aws_compat, fingerprints, revoke, secrets, token, Conn, Shared};
use crate::policy::Caller;

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

/// Every route label, as [`crate::metrics::Requests`] keeps them: the routes, `/ping`
/// ([`super::ping`]), and `other` for a path that names none.
pub const LABELS: &[&str] = &[
    "/v1/secrets",
    "/v1/health",
    "/metrics",
    "/v1/secrets/{name}",
    "/secretsmanager/get",
    "/v1/aws-credentials/{name}",
    "/v1/fingerprints",
    "/v1/fingerprints/match",
    "/v1/revoke",
    super::ping::PATH,
    OTHER,
];

/// The label of a request whose path names no route.
const OTHER: &str = "other";

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
    shared
        .metrics
        .requests
        .record(route, response.status(), started.elapsed());
    response
}

async fn route(shared: &Shared, conn: Conn, req: &Request<Bytes>) -> (&'static str, Answer) {
    let path = req.uri().path();
    let Some(route) = Route::parse(path) else {
        return (
            OTHER,
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
            let refused = refuse(shared, &Caller::from(conn), label, None, status, reason);
            // Busy verifying tokens: worth asking again shortly.
            let refused = if status == StatusCode::TOO_MANY_REQUESTS {
                refused.retry_after(1)
            } else {
                refused
            };
            return (label, Err(refused));
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
        Route::List => Ok(secrets::list(shared, &admitted)),
        Route::Health => Ok(secrets::health(shared)),
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
                    secrets::read(shared, &caller, permit, &name, req.uri().query()).await
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
/// requests with `X-Forwarded-For`, a token header that is malformed or matches none (on
/// either listener: a present token is always checked), no token on the TCP listener,
/// and AWS-compatible requests without `X-Aws-Parameters-Secrets-Token`; a token that could
/// not be verified because too many verifications are waiting is 429 ([`token`]).
async fn identify(
    shared: &Shared,
    conn: Conn,
    req: &Request<Bytes>,
    route: &Route<'_>,
) -> Result<Caller, (StatusCode, String)> {
    let seen = token::Seen::scan(req.headers());
    if seen.forwarded {
        return Err((
            StatusCode::FORBIDDEN,
            "requests with X-Forwarded-For or Forwarded are refused".into(),
        ));
    }
    let aws_route = matches!(route, Route::AwsGet);
    if aws_route && seen.aws.is_none() {
        return Err((
            StatusCode::UNAUTHORIZED,
            "the X-Aws-Parameters-Secrets-Token header is required".into(),
        ));
    }
    let mut caller = Caller::from(conn);
    let presented = seen.token(aws_route).map_err(|token::Malformed| {
        (
            StatusCode::UNAUTHORIZED,
            "the token header is not a token (empty, or not visible ASCII)".to_owned(),
        )
    })?;
    match presented {
        Some(presented) => match shared.tokens.verify(presented, || token::Key::of(&conn)).await {
            token::Verdict::Accepted(name) => caller.token = Some(name),
            token::Verdict::Refused => {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the token matches none of this agent's tokens".into(),
                ))
            }
            token::Verdict::Busy(full) => return Err((StatusCode::TOO_MANY_REQUESTS, full.to_string())),
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
    fn paths_name_their_route() {
        assert_eq!(Route::parse("/v1/secrets"), Some(Route::List));
        assert_eq!(Route::parse("/v1/secrets/db"), Some(Route::Secret("db")));
        assert_eq!(
            Route::parse("/v1/aws-credentials/a%2Fb"),
            Some(Route::AwsCredentials("a%2Fb"))
        );
        assert_eq!(Route::parse("/v1/revoke").map(|r| r.method()), Some(Method::POST));
        assert_eq!(Route::parse("/v1/secret"), None);
        for path in [
            "/v1/secrets",
            "/v1/health",
            "/metrics",
            "/v1/secrets/db",
            "/secretsmanager/get",
            "/v1/aws-credentials/x",
            "/v1/fingerprints",
            "/v1/fingerprints/match",
            "/v1/revoke",
        ] {
            let label = Route::parse(path).unwrap().label();
            assert!(LABELS.contains(&label), "{label} is not in LABELS");
        }
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
        assert_eq!(
            percent_decode("a+b").as_deref(),
            Some("a+b"),
            "a path is not a form: + stays"
        );
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
