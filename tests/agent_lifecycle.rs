//! Probes and lifecycle (issue 14): `sidekey-agent health` for exec probes and scripts (exit
//! 0/1 with one line saying why), an unauthenticated `GET /ping` that says only that the
//! server is up, `run --once` for init containers and batch jobs (everything fetched and
//! written, then exit; nothing bound, a deadline), systemd's `READY=1`/`STOPPING=1` over
//! `NOTIFY_SOCKET`, and the loud first line of the embedded development config.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::aws::free_port;
use crate::support::{bin, eventually, http, Agent, GRANT_SELF, LOCAL_DEV};

const GENERATED: &str = "[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

/// `notes`, a value stored with `store set` (see [`stored`]): its fields are what was stored,
/// so a template naming a field it lacks passes `check` and fails when rendered.
const STORED: &str = "[secrets.notes]\nbackend = \"dev\"\nkind = \"local.static\"\n";

/// Stores a `{"value": …}` for `notes` in a prepared agent's local store.
fn stored(agent: &Agent) {
    agent.store_set("notes", &format!("{{\"value\":\"{:032x}\"}}", rand::random::<u128>()));
}

/// A backend `vault` at a loopback port nothing listens on: its secrets are never served.
fn unreachable_vault() -> String {
    format!(
        "[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:{}\"\nauth = {{ method = \"token\", token_file = \"@DIR@/vault-token\" }}\n\n\
         [secrets.payroll-db]\nbackend = \"vault\"\nkind = \"vault.kv2\"\nmount = \"secret\"\npath = \"payroll\"\n",
        free_port()
    )
}

/// `sidekey-agent ARGS` in `dir`, killed (and the test failed) after `limit`; its output and
/// how long it ran.
fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin("sidekey-agent"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!(
                "sidekey-agent {args:?} still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    (child.wait_with_output().unwrap(), took)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ------------------------------------------------------------------------------ health

#[test]
fn health_exits_0_when_healthy_and_is_fast() {
    let agent = Agent::start(&format!(
        "{LOCAL_DEV}{GENERATED}\n[[file]]\nsecret = \"session\"\npath = \"@DIR@/session.env\"\ntemplate = \"S={{{{value}}}}\\n\"\n\n{GRANT_SELF}"
    ));
    eventually(Duration::from_secs(20), "health ok", || {
        (agent.http("/v1/health").status == 200 && agent.path("session.env").exists()).then_some(())
    });
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let out = agent.cli(&["health"]);
        took.push(started.elapsed());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "ok\n");
    }
    took.sort();
    eprintln!(
        "sidekey-agent health, 20 runs (process start to exit, debug build): median {:?}, max {:?}",
        took[10], took[19]
    );
    assert!(took[10] < Duration::from_millis(500), "median {:?}", took[10]);
}

#[test]
fn health_exits_1_naming_every_failing_secret_and_file() {
    // payroll-db is never served (its Vault does not answer: 503); notes is served but its
    // file's template names a field the data lacks (a degraded 200 by itself).
    let agent = Agent::prepare(&format!(
        "{LOCAL_DEV}{STORED}{}\n[[file]]\nsecret = \"notes\"\npath = \"@DIR@/bad.env\"\ntemplate = \"S={{{{pasword}}}}\\n\"\n\n{GRANT_SELF}",
        unreachable_vault()
    ));
    std::fs::write(agent.path("vault-token"), "not-a-real-token\n").unwrap();
    stored(&agent);
    let agent = agent.launch();
    agent.wait_served("notes", Duration::from_secs(20));
    let bad = agent.path("bad.env").display().to_string();
    eventually(Duration::from_secs(20), "the file failure reported", || {
        agent.http("/v1/health").body.contains("pasword").then_some(())
    });
    let out = agent.cli(&["health"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("sidekey-agent: degraded: "), "{stderr}");
    assert!(stderr.contains("secret payroll-db is not available yet"), "{stderr}");
    assert!(stderr.contains(&format!("file {bad} (secret notes)")), "{stderr}");
    assert!(stderr.contains("pasword"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn health_exits_1_when_no_agent_answers_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let health = |socket: &Path, extra: &[&str]| {
        let mut args = vec!["health", "--socket", socket.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (out, took) = run_within(dir.path(), &args, &[], Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        (text(&out.stderr), took)
    };
    // No socket at all.
    let missing = dir.path().join("missing.sock");
    let (stderr, _) = health(&missing, &[]);
    assert_eq!(
        stderr.trim_end(),
        format!("sidekey-agent: no agent at {}: no such socket", missing.display())
    );
    // A stale socket: the file is there, nothing accepts.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let (stderr, _) = health(&stale, &[]);
    assert!(
        stderr.starts_with(&format!(
            "sidekey-agent: no agent at {}: connection refused",
            stale.display()
        )),
        "{stderr}"
    );
    // A socket that accepts but never answers (a wedged agent): the short timeout ends it.
    let wedged = dir.path().join("wedged.sock");
    let _listener = UnixListener::bind(&wedged).unwrap();
    let (stderr, took) = health(&wedged, &["--timeout", "300ms"]);
    assert!(stderr.contains("did not answer within 300ms"), "{stderr}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The default timeout is short too (500ms).
    let (stderr, took) = health(&wedged, &[]);
    assert!(stderr.contains("did not answer within 500ms"), "{stderr}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

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

// ------------------------------------------------------------------------------ run --once

#[test]
fn run_once_writes_every_file_runs_on_change_and_leaves_no_socket() {
    let agent = Agent::prepare(&format!(
        "{LOCAL_DEV}{GENERATED}\n[secrets.api]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\nlength = 16\n\n\
         [[file]]\nsecret = \"session\"\npath = \"@DIR@/out/session.env\"\ntemplate = \"SESSION={{{{value}}}}\\n\"\n\
         on_change = [\"sh\", \"-c\", \"echo \\\"$SIDEKEY_SECRET $SIDEKEY_VERSION\\\" >> @DIR@/ran.log\"]\n\n\
         [[file]]\nsecret = \"api\"\npath = \"@DIR@/out/api.json\"\n\n{GRANT_SELF}"
    ));
    std::fs::create_dir(agent.path("out")).unwrap();
    let once = |args: &[&str]| {
        let mut all = vec!["run", "--once", "--config", "agent.toml"];
        all.extend_from_slice(args);
        run_within(agent.dir.path(), &all, &[], Duration::from_secs(60))
    };
    let (out, took) = once(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    eprintln!("run --once, two local secrets and two files: {took:?}");

    let env = std::fs::read_to_string(agent.path("out/session.env")).unwrap();
    let session = env.strip_prefix("SESSION=").and_then(|v| v.strip_suffix('\n')).unwrap();
    assert_eq!(session.len(), 64, "{env}");
    let api: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(agent.path("out/api.json")).unwrap()).unwrap();
    assert_eq!(api["value"].as_str().unwrap().len(), 32, "16 bytes as hex");
    assert_eq!(std::fs::read_to_string(agent.path("ran.log")).unwrap(), "session 1\n");
    assert!(
        stderr.contains("every secret fetched and every file written"),
        "{stderr}"
    );
    assert!(!stderr.contains(session), "the value is never logged");

    // Nothing bound, nothing left: no socket, no staging name, no temporary file.
    let left: Vec<String> = std::fs::read_dir(agent.dir.path())
        .unwrap()
        .chain(std::fs::read_dir(agent.path("out")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sock") || n.contains("binding") || n.contains("sidekey-tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A daemon serving at the configured socket path is not disturbed: --once never touches it.
    let daemon = UnixListener::bind(&agent.socket).unwrap();
    let (out, _) = once(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(agent.socket.exists(), "--once removed another process's socket");
    std::os::unix::net::UnixStream::connect(&agent.socket).expect("the daemon's socket still accepts");
    drop(daemon);
    // The second run found the files as they were: no second on_change.
    assert_eq!(std::fs::read_to_string(agent.path("ran.log")).unwrap(), "session 1\n");

    // The socket's directory need not exist (an init container rarely has the sidecar's), as
    // `run` requires; whatever else the config names still must.
    let config = std::fs::read_to_string(agent.path("agent.toml")).unwrap();
    let socket = agent.socket.display().to_string();
    std::fs::write(
        agent.path("elsewhere.toml"),
        config.replace(&socket, "/nonexistent/sidekey/agent.sock"),
    )
    .unwrap();
    let (out, _) = run_within(
        agent.dir.path(),
        &["run", "--once", "--config", "elsewhere.toml"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, _) = run_within(
        agent.dir.path(),
        &["run", "--config", "elsewhere.toml"],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "run binds it, so it must: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("agent.socket: directory /nonexistent/sidekey does not exist"));
}

#[test]
fn run_once_fails_naming_the_secret_that_never_arrives_within_its_timeout() {
    let agent = Agent::prepare(&format!("{}\n{GRANT_SELF}", unreachable_vault()));
    std::fs::write(agent.path("vault-token"), "not-a-real-token\n").unwrap();
    let (out, took) = run_within(
        agent.dir.path(),
        &["run", "--once", "--timeout", "3s", "--config", "agent.toml"],
        &[],
        Duration::from_secs(30),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("sidekey-agent: run --once not done within 3s: "),
        "{last}"
    );
    assert!(last.contains("secret payroll-db is not available yet"), "{last}");
    assert!(
        took >= Duration::from_secs(3),
        "gave up after {took:?}, before its timeout"
    );
    assert!(took < Duration::from_secs(10), "took {took:?} for a 3s timeout");
    eprintln!("run --once --timeout 3s with a secret that never arrives: exit 1 after {took:?}");
    assert!(!agent.socket.exists());
}

#[test]
fn run_once_fails_at_once_naming_a_file_whose_template_or_on_change_fails() {
    for (file, expect) in [
        (
            "template = \"S={{pasword}}\\n\"",
            "template names unknown field \"pasword\"",
        ),
        ("on_change = [\"false\"]", "on_change \"false\" failed"),
    ] {
        let agent = Agent::prepare(&format!(
            "{LOCAL_DEV}{GENERATED}{STORED}\n[[file]]\nsecret = \"notes\"\npath = \"@DIR@/s.env\"\n{file}\n\n{GRANT_SELF}"
        ));
        stored(&agent);
        let (out, took) = run_within(
            agent.dir.path(),
            &["run", "--once", "--config", "agent.toml"],
            &[],
            Duration::from_secs(30),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        let last = stderr.lines().last().unwrap();
        let path = agent.path("s.env").display().to_string();
        assert!(
            last.starts_with(&format!("sidekey-agent: run --once failed: file {path}: ")),
            "{last}"
        );
        assert!(last.contains(expect), "{file}: {last}");
        assert!(
            took < Duration::from_secs(20),
            "{file}: waited {took:?}, not its 60s timeout"
        );
    }
}

// ------------------------------------------------------------------------------ systemd

/// A datagram socket at an abstract name, as systemd and containers pass it.
fn notify_socket() -> (UnixDatagram, String) {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!(
        "sidekey-e2e-notify-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&address).unwrap();
    (socket, format!("@{name}"))
}

/// The next datagram within `wait`, if any.
fn next_message(socket: &UnixDatagram, wait: Duration) -> Option<String> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(text(&buf[..n])),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn systemd_hears_ready_only_once_every_secret_is_served_and_stopping_at_sigterm() {
    let (socket, name) = notify_socket();
    // smtp has no value until `store set`: the socket is up, but the agent is not ready.
    let mut agent = Agent::prepare(&format!(
        "{LOCAL_DEV}{GENERATED}\n[secrets.smtp]\nbackend = \"dev\"\nkind = \"local.static\"\nrefresh = \"200ms\"\n\n{GRANT_SELF}"
    ))
    .launch_with_env(&[("NOTIFY_SOCKET", &name)]);
    agent.wait_served("session", Duration::from_secs(20));
    assert_eq!(agent.http("/v1/health").status, 503);
    assert_eq!(
        next_message(&socket, Duration::from_secs(2)),
        None,
        "READY=1 before smtp is served"
    );

    let mut set = Command::new(bin("sidekey-agent"))
        .args(["store", "set", "--config", "agent.toml", "smtp"])
        .current_dir(agent.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(b"smtp-password-0001").unwrap();
    assert!(set.wait().unwrap().success());

    let ready = next_message(&socket, Duration::from_secs(20)).expect("READY=1 once smtp is served");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=serving 2 secrets"), "{ready:?}");
    // Ready means served: both answer at once, and health is ok.
    assert_eq!(agent.http("/v1/secrets/smtp").status, 200);
    assert_eq!(agent.http("/v1/health").body, r#"{"status":"ok"}"#);
    assert!(agent.stderr().contains("ready: every secret served"));

    assert!(agent.stop().success());
    let stopping = next_message(&socket, Duration::from_secs(5)).expect("STOPPING=1 at SIGTERM");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert_eq!(next_message(&socket, Duration::from_millis(300)), None, "nothing after");
    agent.assert_never_leaked(&["smtp-password-0001".into()]);
}

#[test]
fn a_bad_notify_socket_is_logged_and_ignored() {
    let agent = Agent::prepare(&format!("{LOCAL_DEV}{GENERATED}\n{GRANT_SELF}"))
        .launch_with_env(&[("NOTIFY_SOCKET", "relative/notify.sock")]);
    agent.wait_served("session", Duration::from_secs(20));
    let stderr = agent.stderr();
    assert!(
        stderr.contains("NOTIFY_SOCKET ignored: not an absolute path or an @abstract socket name"),
        "{stderr}"
    );
}

// ------------------------------------------------------------------------------ dev config

#[test]
fn run_without_config_says_first_that_it_runs_the_development_config() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(bin("sidekey-agent"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let socket = dir.path().join("sidekey-dev.sock");
    eventually(Duration::from_secs(20), "the dev socket", || {
        (http::get(&socket, "/v1/health").ok()?.status == 200).then_some(())
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    let first = stderr.lines().next().unwrap();
    assert!(first.contains("WARN"), "{first}");
    assert!(
        first.contains(
            "running the embedded development config (config/dev.toml): not for production; pass --config FILE"
        ),
        "{first}"
    );

    // With --config there is no such line.
    let agent = Agent::start(&format!("{LOCAL_DEV}{GENERATED}\n{GRANT_SELF}"));
    agent.wait_served("session", Duration::from_secs(20));
    assert!(!agent.stderr().contains("development config"), "{}", agent.stderr());
}
