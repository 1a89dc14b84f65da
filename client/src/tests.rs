//! The client against a canned HTTP/1.1 server on a temporary Unix socket (the real agent is
//! driven by the end-to-end tests in `tests/`).

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sidekey::api::{RevokeAction, RevokeRequest};

use super::*;

/// Serves `answer(request line)` on a fresh socket until the test ends; answers its path.
fn serve(answer: fn(&str, &str) -> (u16, String)) -> (PathBuf, tokio::task::JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!("sidekey-client-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("agent.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let method = req.method().to_string();
                    let uri = req.uri().to_string();
                    let (status, body) = answer(&method, &uri);
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap(),
                    )
                });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                    .ok();
            });
        }
    });
    (socket, task)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn canned(method: &str, uri: &str) -> (u16, String) {
    match (method, uri) {
        ("GET", "/v1/secrets/db%2Fmain") => (
            200,
            r#"{"name":"db/main","version":3,"lease":null,"fetched_at":"2026-01-01T00:00:00Z","source":"local/local.generated","data":{"password":"pw-9f8e7d6c5b4a","port":5432}}"#.into(),
        ),
        ("GET", "/v1/secrets/db%2Fmain?wait=3&timeout=50ms") => (304, String::new()),
        ("GET", "/v1/secrets/nope") => (404, r#"{"error":"no secret named \"nope\""}"#.into()),
        ("GET", "/v1/health") => (503, r#"{"status":"degraded","failing":[{"name":"db","reason":"fetching","served":false}]}"#.into()),
        ("POST", "/v1/revoke") => (
            502,
            r#"{"secret":"db","action":"failed","revoked":false,"lease_id":null,"version":3,"detail":"the issuer is down"}"#.into(),
        ),
        ("GET", "/v1/fingerprints") => (403, "not json".into()),
        _ => (500, String::new()),
    }
}

#[tokio::test]
async fn answers_are_typed_and_names_are_escaped() {
    let (socket, server) = serve(canned);
    let client = Client::new(&socket);
    let secret = client.secret("db/main").await.unwrap();
    assert_eq!((secret.name.as_str(), secret.version), ("db/main", 3));
    assert_eq!(secret.data.field("password").unwrap().expose(), "pw-9f8e7d6c5b4a");
    assert_eq!(secret.data.field("port").unwrap().expose(), "5432");
    assert!(
        !format!("{secret:?}").contains("pw-9f8e7d6c5b4a"),
        "Debug shows no value"
    );
    assert!(secret.body().starts_with(b"{\"name\":\"db/main\""));

    assert!(client
        .secret_after("db/main", 3, Duration::from_millis(50))
        .await
        .unwrap()
        .is_none());

    let health = client.health().await.unwrap();
    assert_eq!((health.status.as_str(), health.failing.len()), ("degraded", 1));

    let answer = client.revoke(&RevokeRequest::Secret("db".into())).await.unwrap();
    assert_eq!(answer.action, RevokeAction::Failed);
    server.abort();
}

#[tokio::test]
async fn refusals_carry_the_agents_words_and_status() {
    let (socket, server) = serve(canned);
    let client = Client::new(&socket);
    let e = client.secret("nope").await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(e.to_string(), "no secret named \"nope\"");
    let e = client.fingerprints().await.unwrap_err();
    assert_eq!(e.to_string(), "the agent answered 403 Forbidden");
    server.abort();
}

#[tokio::test]
async fn a_missing_agent_is_named() {
    let e = Client::new("/nonexistent/agent.sock").secrets().await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }));
    assert!(
        e.to_string()
            .starts_with("cannot connect to the agent at /nonexistent/agent.sock: "),
        "{e}"
    );
}

#[test]
fn the_blocking_client_runs_its_own_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (socket, server) = runtime.block_on(async { serve(canned) });
    let client = blocking::Client::new(&socket).unwrap();
    assert_eq!(client.secret("db/main").unwrap().version, 3);
    runtime.block_on(async { server.abort() });
}
