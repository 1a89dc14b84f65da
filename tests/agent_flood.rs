//! Local abuse of the agent's listeners (issue 13, item 7): idle TCP connections by the
//! hundred cannot take the file descriptors the Unix socket's callers need. Each listener holds
//! at most its share of the open-file limit; connections past it are closed at once, and the
//! refusal is logged at most once per 10 s.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{aws::free_port, http, Agent, GRANT_SELF, LOCAL_DEV};

#[test]
fn idle_tcp_connections_cannot_starve_the_unix_socket() {
    let port = free_port();
    let agent = Agent::start(&format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ntcp = \"127.0.0.1:{port}\"\n\n\
         {LOCAL_DEV}[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{GRANT_SELF}"
    ));
    agent.wait_served("s", Duration::from_secs(10));
    // The agent may now hold 200 fds: 34 TCP connections, 68 on the socket.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &agent.pid().to_string(), "--nofile=200:200"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());

    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() > 200, "opened {}", idle.len());
    std::thread::sleep(Duration::from_millis(500));

    for _ in 0..3 {
        let started = Instant::now();
        let health = http::get(&agent.socket, "/v1/health").expect("the socket answers");
        assert_eq!(health.status, 200, "{}", health.body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the socket took {:?} under the TCP flood",
            started.elapsed()
        );
    }
    let said = agent.stderr().matches("connection limit reached").count();
    assert!((1..=2).contains(&said), "{said} limit lines:\n{}", agent.stderr());
    drop(idle);
}

#[test]
fn a_flood_of_refused_requests_is_tallied_not_written_line_by_line() {
    use std::io::{Read, Write};
    // One keep-alive TCP connection with no token, 4000 requests as fast as it can: each is
    // refused (401). Before, each wrote an audit line and a log line (225 MB in 5 s at full
    // speed); now identical refusals are one audit line per 250 ms with their count.
    let port = free_port();
    let agent = Agent::start(&format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ntcp = \"127.0.0.1:{port}\"\n\n\
         {LOCAL_DEV}[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{GRANT_SELF}"
    ));
    agent.wait_served("s", Duration::from_secs(10));
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = b"GET /v1/secrets/s HTTP/1.1\r\nHost: sidekey\r\n\r\n";
    let (batches, per_batch) = (20, 200);
    let mut answers = Vec::new();
    for _ in 0..batches {
        conn.write_all(&request.repeat(per_batch)).unwrap();
        let want = answers.len() + per_batch;
        let mut buf = vec![0u8; 64 * 1024];
        while answers.len() < want {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the agent closed the connection");
            let text = String::from_utf8_lossy(&buf[..n]);
            answers.extend(text.matches("HTTP/1.1 401").map(|_| ()));
        }
    }
    assert_eq!(answers.len(), batches * per_batch);
    std::thread::sleep(Duration::from_millis(600));
    let refusals: Vec<_> = agent.audit().into_iter().filter(|e| e["event"] == "refusal").collect();
    let counted: u64 = refusals.iter().map(|e| e["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(counted, (batches * per_batch) as u64, "every refusal is counted");
    assert!(
        refusals.len() < 100,
        "{} refusal lines for {counted} refusals",
        refusals.len()
    );
    let logged = agent.stderr().matches("refused").count();
    assert!(logged < 100, "{logged} log lines for {counted} refusals");
}
