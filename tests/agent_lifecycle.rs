//! Probes and lifecycle (issue 14): an unauthenticated `GET /ping` that says only that the
//! server is up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::aws::free_port;
use crate::support::{eventually, Agent, GRANT_SELF, LOCAL_DEV};

const GENERATED: &str = "[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

// ------------------------------------------------------------------------------ /ping

/// `METHOD path` on the TCP listener at `port` with extra header lines; status and the whole
/// answer (head and body).
fn tcp(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[test]
fn ping_answers_anyone_on_tcp_says_nothing_else_and_is_not_audited() {
    let port = free_port();
    let agent = Agent::start(&format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ntcp = \"127.0.0.1:{port}\"\n\n\
         {LOCAL_DEV}{}\n{GRANT_SELF}",
        GENERATED.replace("session", "payroll-db")
    ));
    let value = agent.wait_served("payroll-db", Duration::from_secs(20))["data"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // No token, a wrong token, a malformed one, a query naming the secret: the same 200.
    for (path, headers) in [
        ("/ping", ""),
        ("/ping", "Authorization: Bearer wrong-token\r\n"),
        ("/ping", "X-Aws-Parameters-Secrets-Token: has space\r\n"),
        ("/ping?secretId=payroll-db", ""),
    ] {
        let (status, answer) = tcp(port, "GET", path, headers);
        assert_eq!(status, 200, "{path} {headers:?}: {answer}");
        assert_eq!(body(&answer), "healthy", "{path} {headers:?}");
        assert!(!answer.contains("payroll") && !answer.contains(&value), "{answer}");
    }
    // Only /ping itself: a path below it is routed like any other (no such route), and every
    // other route on TCP needs a token.
    let (status, answer) = tcp(port, "GET", "/ping/payroll-db", "");
    assert_eq!(status, 404, "{answer}");
    assert_eq!(tcp(port, "GET", "/v1/health", "").0, 401);
    assert_eq!(tcp(port, "POST", "/ping", "").0, 405);
    // The Unix socket answers it too.
    let on_socket = agent.http("/ping");
    assert_eq!((on_socket.status, on_socket.body.as_str()), (200, "healthy"));

    // Counted as /ping in the metrics, never audited; the refused /v1/health is (so the audit
    // log does see TCP requests).
    let metrics = agent.http("/metrics").body;
    assert!(
        metrics.contains("sidekey_requests_total{route=\"/ping\",status=\"200\"} 5"),
        "{metrics}"
    );
    let audit = eventually(Duration::from_secs(5), "the refusal audited", || {
        let audit = agent.audit();
        audit
            .iter()
            .any(|e| e["event"] == "refusal" && e["route"] == "/v1/health")
            .then_some(audit)
    });
    // Of the eight TCP requests, only the refused /v1/health left an audit line.
    let from_tcp: Vec<_> = audit.iter().filter(|e| e["remote"].is_string()).collect();
    assert_eq!(from_tcp.len(), 1, "{audit:?}");
    assert!(audit.iter().all(|e| e["route"] != "/ping"), "{audit:?}");
}
