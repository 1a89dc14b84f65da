//! A hostile or careless host: what the agent finds at its paths, in its requests and in its
//! config never makes it destroy a file, let a malformed token through, or spin. Each case
//! is refused with a message naming the key or answered with a plain status.

use std::process::Command;
use std::time::Duration;

use crate::support::{bin, http, Agent, GRANT_SELF, LOCAL_DEV};

const SESSION: &str = "[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

/// Runs `sidekey-agent ARGS --config agent.toml` in the prepared agent's directory, waiting at
/// most 20 s; the exit code and stderr.
fn agent_cli(agent: &Agent, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin("sidekey-agent"))
        .args(args)
        .args(["--config", "agent.toml"])
        .current_dir(agent.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("sidekey-agent {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_regular_file_at_the_socket_path_is_refused_and_left_alone() {
    let agent = Agent::prepare(&format!("{LOCAL_DEV}\n{SESSION}\n{GRANT_SELF}"));
    let content = "precious data, not a socket\n";
    std::fs::write(&agent.socket, content).unwrap();
    for args in [&["check"][..], &["run"][..]] {
        let (code, stderr) = agent_cli(&agent, args);
        assert_eq!(code, Some(2), "{args:?} should exit 2: {stderr}");
        assert!(stderr.contains("agent.socket"), "{args:?} names the key: {stderr}");
        assert!(
            stderr.contains(&agent.socket.display().to_string()),
            "{args:?} names the path: {stderr}"
        );
        assert!(stderr.contains("not a socket"), "{args:?} says why: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&agent.socket).unwrap(),
            content,
            "{args:?} left the file as it was"
        );
    }
}

#[test]
fn a_duration_below_its_minimum_is_refused_by_check() {
    let agent = Agent::prepare(&format!(
        "{LOCAL_DEV}\n{}\n{GRANT_SELF}",
        SESSION.replace("\"1h\"", "\"1ns\"")
    ));
    let (code, stderr) = agent_cli(&agent, &["check"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("secrets.session.rotate_every: 1ns is below the minimum of 1s"),
        "names the key, the value and the minimum: {stderr}"
    );
}

#[test]
fn a_token_header_that_is_not_visible_ascii_is_refused_on_the_socket() {
    let agent = Agent::start(&format!("{LOCAL_DEV}\n{SESSION}\n{GRANT_SELF}"));
    agent.wait_served("session", Duration::from_secs(10));
    // Without a token the socket serves on the caller's uid; a token header that is present
    // but not a token must not fall back to that.
    let request = |path: &str, header: &[u8]| {
        let mut bytes = format!("GET {path} HTTP/1.1\r\nHost: sidekey\r\nConnection: close\r\n").into_bytes();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(b"\r\n");
        http::raw(&agent.socket, &bytes).unwrap()
    };
    assert_eq!(request("/v1/secrets/session", b"").status, 200);
    let cases: &[(&str, &[u8])] = &[
        (
            "/secretsmanager/get?secretId=session",
            b"X-Aws-Parameters-Secrets-Token: tok\xffen\r\n",
        ),
        (
            "/secretsmanager/get?secretId=session",
            b"X-Aws-Parameters-Secrets-Token: \xc3\xa9\r\n",
        ),
        ("/v1/secrets/session", b"Authorization: Bearer tok\xffen\r\n"),
        ("/v1/secrets/session", b"Authorization: \x80\r\n"),
    ];
    for (path, header) in cases {
        let answer = request(path, header);
        assert_eq!(
            answer.status,
            401,
            "{path} {:?}: {}",
            String::from_utf8_lossy(header),
            answer.body
        );
        assert!(answer.body.contains("not a token"), "{}", answer.body);
    }
}
