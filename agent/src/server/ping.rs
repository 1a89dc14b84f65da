//! `GET /ping`: "is the agent's server up?", answered `200 healthy` to anyone, on both
//! listeners, before the caller is identified — a Kubernetes `httpGet` liveness probe and the
//! AWS Secrets Manager Agent's clients carry no token, and the AWS agent answers `/ping`
//! without one.
//!
//! Invariants, because it skips identification and the access policy:
//! - the answer is the same bytes whatever the request holds (headers, query, a token):
//!   it cannot tell a name, a value, a token or anything served apart, so it cannot be used
//!   to probe them. A token header is not even looked at, so `/ping` never costs an argon2id
//!   verification;
//! - it reads nothing of the store and writes no audit event; it is counted in
//!   `sidekey_requests_total{route="/ping"}` only;
//! - only `GET /ping` itself: `/ping/x` and other paths go through the normal routing.
//!
//! Readiness (every secret served) is `GET /v1/health` or `sidekey-agent health`, which do
//! identify the caller.

use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};

use super::respond::Reply;
use crate::metrics::Requests;

/// The path answered here.
pub const PATH: &str = "/ping";

/// The answer to `GET /ping` (the AWS Secrets Manager Agent's word).
const BODY: &str = "healthy";

/// The answer when `req` is for `/ping` (200, or 405 for another method), else `None` and the
/// request goes on to be identified and routed. Counted in `requests`.
pub fn answer<B>(req: &Request<B>, requests: &Requests) -> Option<Reply> {
    if req.uri().path() != PATH {
        return None;
    }
    let started = Instant::now();
    let (status, body) = if req.method() == Method::GET {
        (StatusCode::OK, BODY.to_owned())
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, format!("{PATH} answers GET only"))
    };
    let reply = Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static status and headers");
    requests.record(PATH, status, started.elapsed());
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(method: Method, uri: &str, headers: &[(&str, &str)]) -> Option<Reply> {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        answer(&req.body(()).unwrap(), &Requests::new(&[]))
    }

    #[test]
    fn only_the_ping_path_is_answered_here() {
        assert!(ping(Method::GET, "/v1/secrets/db", &[]).is_none());
        assert!(ping(Method::GET, "/ping/db", &[]).is_none());
        assert!(ping(Method::GET, "/pingx", &[]).is_none());
        assert_eq!(ping(Method::GET, "/ping", &[]).unwrap().status(), StatusCode::OK);
        assert_eq!(
            ping(Method::POST, "/ping", &[]).unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn the_answer_does_not_depend_on_the_request() {
        let body = |r: Reply| {
            use http_body_util::BodyExt as _;
            let collected = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(r.into_body().collect())
                .unwrap();
            collected.to_bytes()
        };
        let plain = body(ping(Method::GET, "/ping", &[]).unwrap());
        assert_eq!(plain, BODY.as_bytes());
        for (uri, headers) in [
            ("/ping?secretId=db", &[][..]),
            ("/ping", &[("authorization", "Bearer wrong")][..]),
            ("/ping", &[("x-aws-parameters-secrets-token", "tok en")][..]),
            ("/ping", &[("x-forwarded-for", "10.0.0.1")][..]),
        ] {
            let reply = ping(Method::GET, uri, headers).unwrap();
            assert_eq!(reply.status(), StatusCode::OK, "{uri} {headers:?}");
            assert_eq!(body(reply), plain, "{uri} {headers:?}");
        }
    }
}
