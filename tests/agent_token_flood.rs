//! Floods of wrong bearer tokens (issue 13, item 8). argon2id takes tens of milliseconds a
//! hash; before, every wrong token was verified, one at a time, never remembered, so 200
//! clients sending wrong tokens delayed a caller with a good token by seconds. Now a wrong
//! token is remembered, verifications run in a bounded pool that serves callers (local uids)
//! in turn, and past its bounds a request is answered 429 with `Retry-After: 1`.
//!
//! Each test drives the real agent over its TCP listener and socket with a flood from real
//! clients, and times a caller presenting a token the agent has never seen (so it is verified
//! with argon2id, not answered from memory).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::aws::free_port;
use crate::support::{http, Agent, LOCAL_DEV};

/// Floods share two cores: one test at a time, so that each measures its own flood.
static ONE_FLOOD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Concurrent flooding connections, as in the issue.
const FLOODERS: usize = 200;

/// How long a caller with a new, valid token may wait under a flood. Before, it waited for
/// every queued wrong token: 12 s (a) and 30 s (b) here, on two cores shared with the flood.
/// Now, for at most one verification per other busy caller plus its own — 0.1 to 1.2 s
/// measured on a loaded two-core machine, where the debug agent's answers to the flood take
/// most of the CPU — so the bound leaves room for a busy CI machine.
const PROMPT: Duration = Duration::from_secs(3);

/// A fresh random token (never a literal: nothing shaped like a key is committed).
fn fresh_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// An agent with a TCP listener and one argon2id token per name in `names` (hashed now,
/// as `sidekey-agent hash-token` does), each granted the secret `s`; its own uid reads `s`
/// on the socket without a token. Answers the agent, its port and the tokens by name.
fn agent_with_tokens(names: &[&str]) -> (Agent, u16, Vec<String>) {
    let port = free_port();
    let tokens: Vec<String> = names.iter().map(|_| fresh_token()).collect();
    let hashes: Vec<String> = names
        .iter()
        .zip(&tokens)
        .map(|(name, token)| {
            let hash = sidekey::crypto::hash_token(token.as_bytes()).unwrap();
            format!("{name} = \"{hash}\"")
        })
        .collect();
    let rules: String = names
        .iter()
        .map(|name| format!("[[access]]\ntoken = \"{name}\"\nsecrets = [\"s\"]\n\n"))
        .collect();
    let agent = Agent::start(&format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ntcp = \"127.0.0.1:{port}\"\n\
         tokens = {{ {} }}\n\n{LOCAL_DEV}[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"*\"]\n\n{rules}",
        hashes.join(", ")
    ));
    agent.wait_served("s", Duration::from_secs(10));
    (agent, port, tokens)
}

/// One answer on a keep-alive connection: status and head.
fn exchange(reader: &mut BufReader<TcpStream>, token: &str) -> std::io::Result<(u16, String)> {
    let request = format!("GET /v1/secrets/s HTTP/1.1\r\nHost: sidekey\r\nAuthorization: Bearer {token}\r\n\r\n");
    reader.get_mut().write_all(request.as_bytes())?;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body)?;
    Ok((status, head))
}

/// `GET /v1/secrets/s` over TCP with `token` on a new connection: status and how long it took.
fn timed_tcp(port: u16, token: &str) -> (u16, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let (status, _) = exchange(&mut BufReader::new(stream), token).unwrap();
    (status, started.elapsed())
}

/// `GET path` on the socket, optionally with a token: status and how long it took.
fn timed_socket(socket: &Path, path: &str, token: Option<&str>) -> (u16, Duration) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let started = Instant::now();
    let answer = http::raw(
        socket,
        format!("GET {path} HTTP/1.1\r\nHost: sidekey\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    (answer.status, started.elapsed())
}

/// The value of one sample of `/metrics` (0 when absent).
fn metric(agent: &Agent, sample: &str) -> f64 {
    let text = agent.http("/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// `FLOODERS` keep-alive connections from this process (this uid) sending `token` over and
/// over until `stop`; answers the count of each status.
fn flood_from_here(port: u16, token: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60); // bounded, whatever happens
        let threads: Vec<_> = (0..FLOODERS)
            .map(|_| {
                let (token, stop) = (token.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut statuses = Vec::new();
                    let mut conn = None;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let reader = conn.get_or_insert_with(|| {
                            let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                            BufReader::new(stream)
                        });
                        match exchange(reader, &token) {
                            Ok((status, _)) => statuses.push(status),
                            Err(_) => conn = None,
                        }
                    }
                    statuses
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    })
}

/// The flooding client of another local user: `FLOODERS` keep-alive connections, run as
/// `nobody` by a small Python program, each sending a new random token per request for
/// `seconds`; it prints the count of each status and the `Retry-After` values of its 429s.
const NOBODY_FLOOD: &str = r#"
import json, secrets, socket, sys, threading, time
port, conns, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
lock = threading.Lock()
counts, retry_after = {}, set()

def exchange(sock, f, token):
    sock.sendall(("GET /v1/secrets/s HTTP/1.1\r\nHost: sidekey\r\nAuthorization: Bearer %s\r\n\r\n" % token).encode())
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    f.read(int(headers.get("content-length", "0")))
    return status, headers

def flood():
    sock = None
    while time.monotonic() < deadline:
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                f = sock.makefile("rb")
            status, headers = exchange(sock, f, secrets.token_hex(16))
        except (OSError, ValueError, IndexError):
            sock, status, headers = None, "error", {}
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1
            if status == 429:
                retry_after.add(headers.get("retry-after"))

threads = [threading.Thread(target=flood) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"counts": counts, "retry_after": sorted(str(v) for v in retry_after)}))
"#;

/// Starts `NOBODY_FLOOD` as `nobody` against `port` for `seconds`.
fn flood_as_nobody(port: u16, seconds: u32) -> std::process::Child {
    Command::new("runuser")
        .args(["-u", "nobody", "--", "python3", "-c", NOBODY_FLOOD])
        .args([port.to_string(), FLOODERS.to_string(), seconds.to_string()])
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runuser and python3")
}

/// (a) 200 connections repeat one wrong token: it is verified once and then answered from
/// memory, so a caller with a new token waits for its own verification only.
#[test]
fn a_repeated_wrong_token_is_remembered_and_does_not_delay_a_valid_caller() {
    let _one = ONE_FLOOD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (agent, port, tokens) = agent_with_tokens(&["deploy"]);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = flood_from_here(port, fresh_token(), stop.clone());
    std::thread::sleep(Duration::from_secs(1));

    let (status, took) = timed_tcp(port, &tokens[0]);
    stop.store(true, Ordering::Relaxed);
    let statuses = flood.join().unwrap();
    println!(
        "repeated wrong token, {FLOODERS} connections, {} requests: a new valid token answered {status} in {took:?}",
        statuses.len()
    );
    assert_eq!(status, 200);
    assert!(took < PROMPT, "a valid caller waited {took:?} under the flood");
    assert!(statuses.iter().all(|s| *s == 401), "only 401s for a wrong token");

    // Verified with argon2 once (or a few times, around the first), answered from memory
    // every other time.
    let ran = metric(&agent, "sidekey_token_checks_total{result=\"refused\"}");
    let remembered = metric(&agent, "sidekey_token_checks_total{result=\"refused_remembered\"}");
    println!("argon2 runs for the wrong token: {ran}; answered from memory: {remembered}");
    assert!((1.0..=2.0).contains(&ran), "the wrong token was verified {ran} times");
    assert!(
        remembered >= statuses.len() as f64 - ran,
        "{remembered} of {}",
        statuses.len()
    );
    agent.assert_never_leaked(&tokens);
}

/// (b) Another local user floods distinct random wrong tokens, so nothing can be remembered:
/// its requests queue in its own lane, and a caller of another uid with a new token is served
/// in turn — over TCP and on the socket — while socket callers without a token never queue.
/// (c) The flood sees 429 with `Retry-After: 1`, counted and audited, and the agent serves on.
#[test]
fn a_flood_of_distinct_wrong_tokens_from_another_user_waits_its_turn() {
    let _one = ONE_FLOOD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (agent, port, tokens) = agent_with_tokens(&["tcp", "socket"]);
    let flood = flood_as_nobody(port, 6);
    std::thread::sleep(Duration::from_millis(1500));

    // All at once, under the flood: the valid callers over TCP and on the socket, and socket
    // readers without a token (20 reads, 100 ms apart).
    let (tcp, socket) = {
        let (token, socket, path) = (tokens[0].clone(), tokens[1].clone(), agent.socket.clone());
        (
            std::thread::spawn(move || timed_tcp(port, &token)),
            std::thread::spawn(move || timed_socket(&path, "/v1/secrets/s", Some(&socket))),
        )
    };
    let readers: Vec<(u16, Duration)> = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            timed_socket(&agent.socket, "/v1/secrets/s", None)
        })
        .collect();
    let slowest_reader = readers.iter().map(|(_, took)| *took).max().unwrap();
    let (tcp_status, tcp_took) = tcp.join().unwrap();
    let (socket_status, socket_took) = socket.join().unwrap();

    let out = flood.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!(
        "distinct wrong tokens from uid 65534, {FLOODERS} connections: {summary}; a new valid token \
         answered {tcp_status} in {tcp_took:?} over TCP, {socket_status} in {socket_took:?} on the socket; \
         20 socket reads without a token, the slowest {slowest_reader:?}"
    );
    assert_eq!((tcp_status, socket_status), (200, 200));
    assert!(
        tcp_took < PROMPT,
        "a valid TCP caller waited {tcp_took:?} under the flood"
    );
    assert!(
        socket_took < PROMPT,
        "a valid socket caller waited {socket_took:?} under the flood"
    );
    assert!(readers.iter().all(|(status, _)| *status == 200), "{readers:?}");
    // They never queue for a verification; they share the CPU with the flood, no more.
    assert!(
        slowest_reader < PROMPT,
        "a socket reader without a token waited {slowest_reader:?}"
    );

    // (c) The limit is visible to the flood, in the metrics and in the audit log.
    let busy = summary["counts"]["429"].as_u64().unwrap_or(0);
    assert!(busy > 0, "the flood was never told to slow down: {summary}");
    assert_eq!(summary["retry_after"], serde_json::json!(["1"]), "{summary}");
    assert!(metric(&agent, "sidekey_token_checks_total{result=\"busy\"}") >= busy as f64);
    assert!(
        metric(
            &agent,
            "sidekey_requests_total{route=\"/v1/secrets/{name}\",status=\"429\"}"
        ) >= busy as f64
    );
    std::thread::sleep(Duration::from_millis(400));
    let audited: u64 = agent
        .audit()
        .iter()
        .filter(|e| {
            e["event"] == "refusal"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("too many token verifications"))
        })
        .map(|e| e["count"].as_u64().unwrap_or(1))
        .sum();
    assert!(audited >= busy, "{audited} 429s audited, {busy} seen");
    // The agent serves on, and the tokens still work (now from memory).
    assert_eq!(agent.http("/v1/health").status, 200);
    assert_eq!(timed_tcp(port, &tokens[0]).0, 200);
    agent.assert_never_leaked(&tokens);
}
