//! The embedded default: `sidekey-agent run` with no external service (README's first
//! command), the local store, and a graceful stop.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{bin, eventually, http, Agent, GRANT_SELF, LOCAL_DEV};

#[test]
fn the_readme_run_command_serves_dev_secrets_with_no_external_service() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        KillOnDrop(
            Command::new(bin("sidekey-agent"))
                .arg("run")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let socket = dir.path().join("sidekey-dev.sock");
    let mut agent = start();
    eventually(Duration::from_secs(20), "session-key served", || {
        (http::get(&socket, "/v1/secrets/session-key").ok()?.status == 200).then_some(())
    });

    let out = Command::new(bin("sidekey-agent"))
        .args(["get", "session-key", "--field", "value", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value = String::from_utf8(out.stdout).unwrap();
    assert_eq!(value.len(), 64, "32 random bytes as hex: {value:?}");
    assert!(value.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(http::get(&socket, "/v1/health").unwrap().body, r#"{"status":"ok"}"#);

    // The store is encrypted and private; the key file was created 0600.
    let store = std::fs::read(dir.path().join("sidekey-dev.store")).unwrap();
    assert!(!String::from_utf8_lossy(&store).contains(&value));
    use std::os::unix::fs::PermissionsExt;
    for file in ["sidekey-dev.key", "sidekey-dev.store", "sidekey-dev-audit.jsonl"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket");

    // SIGTERM: exit 0, socket removed; a restart serves the same (persisted) value.
    Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status()
        .unwrap();
    let status = agent.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket removed on stop");
    let _agent = start();
    eventually(Duration::from_secs(20), "dev socket again", || {
        socket.exists().then_some(())
    });
    let again = eventually(Duration::from_secs(10), "session-key served", || {
        let r = http::get(&socket, "/v1/secrets/session-key").ok()?;
        (r.status == 200).then(|| r.json()["data"]["value"].as_str().unwrap().to_owned())
    });
    assert_eq!(
        again, value,
        "a generated value survives a restart until its rotation time"
    );
}

/// A child process killed when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const STATIC: &str = r#"
[secrets.smtp]
backend = "dev"
kind = "local.static"
refresh = "200ms"
"#;

#[test]
fn store_set_values_are_served_and_versioned() {
    let agent = Agent::start(&format!("{LOCAL_DEV}{STATIC}{GRANT_SELF}"));
    // Until a value is set, health names the secret and says how to set it.
    let health = eventually(Duration::from_secs(10), "health naming smtp", || {
        let h = agent.http("/v1/health");
        h.body.contains("store set").then_some(h)
    });
    assert_eq!(health.status, 503);
    assert!(health.body.contains("smtp"), "{}", health.body);

    let out = store_set(&agent, "smtp-pass-一二三-0001\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = agent.wait_served("smtp", Duration::from_secs(10));
    assert_eq!(first["data"]["value"], "smtp-pass-一二三-0001");
    assert_eq!(first["version"], 1);
    assert!(first["lease"].is_null());

    let out = store_set(&agent, r#"{"user": "mailer", "password": "smtp-pass-0002"}"#);
    assert!(out.status.success());
    let second = eventually(Duration::from_secs(10), "version 2", || {
        let v = agent.get("smtp");
        (v["version"] == 2).then_some(v)
    });
    assert_eq!(second["data"]["password"], "smtp-pass-0002");
    assert_eq!(second["data"]["user"], "mailer");

    // Wrong uses are usage errors (exit 2) that name the fault.
    let out = agent.cli(&["store", "set", "--config", "agent.toml", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    agent.assert_never_leaked(&["smtp-pass-一二三-0001".into(), "smtp-pass-0002".into()]);
}

fn store_set(agent: &Agent, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(bin("sidekey-agent"))
        .args(["store", "set", "--config", "agent.toml", "smtp"])
        .current_dir(agent.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_graceful_stop_finishes_requests_in_flight_and_removes_the_socket() {
    let generated = STATIC.replace(
        "local.static\"\nrefresh = \"200ms\"",
        "local.generated\"\nrotate_every = \"1h\"",
    );
    let mut agent = Agent::start(&format!("{LOCAL_DEV}{generated}{GRANT_SELF}"));
    let served = agent.wait_served("smtp", Duration::from_secs(10));
    let version = served["version"].as_u64().unwrap();
    // A long-poll that will wait 2 s for a change that never comes.
    let socket = agent.socket.clone();
    let poll = std::thread::spawn(move || http::get(&socket, &format!("/v1/secrets/smtp?wait={version}&timeout=2s")));
    std::thread::sleep(Duration::from_millis(300));
    let status = agent.stop();
    assert!(status.success(), "exit {status}");
    let answer = poll.join().unwrap().expect("the in-flight request was answered");
    assert_eq!(answer.status, 304);
    assert!(!agent.socket.exists());
}
