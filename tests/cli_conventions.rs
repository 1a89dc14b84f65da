//! What users of command-line tools look for, on both real binaries: `--version` naming the
//! commit, logs a pipeline can parse (`--log-format json`).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::agent::AGENT;
use crate::support::{bin, eventually, http, Agent, GRANT_SELF, LOCAL_DEV};

const GENERATED: &str = "[secrets.token]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

/// `NAME --version` and `-V`: "NAME 0.1.0 (abc1234 2026-12-06)", the commit one of this
/// repository's (tests run from a checkout; "unknown" only when git is missing).
fn assert_version_names_the_commit(name: &str) {
    let out = Command::new(bin(name)).arg("-V").output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let rest = line
        .trim_end()
        .strip_prefix(&format!("{name} {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let inside = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line}"));
    let git_here = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !git_here {
        assert_eq!(inside, "unknown", "{line}");
        return;
    }
    let (commit, date) = inside
        .split_once(' ')
        .unwrap_or_else(|| panic!("no commit date: {line}"));
    assert!(
        commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{line}"
    );
    assert_eq!(date.len(), "2026-12-06".len(), "{line}");
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .unwrap();
    assert!(known.success(), "{commit} is not a commit of this repository");

    let long = Command::new(bin(name)).arg("--version").output().unwrap();
    let long = String::from_utf8(long.stdout).unwrap();
    assert!(
        long.starts_with(line.trim_end()) && long.contains("\ntarget: "),
        "{long}"
    );
}

#[test]
fn version_names_the_commit_on_both_binaries() {
    assert_version_names_the_commit("sidekey-agent");
    assert_version_names_the_commit("sidekey-scan");
}

/// Every line is one JSON object with a timestamp, a level and a message.
fn assert_json_lines(stderr: &str) {
    assert!(!stderr.trim().is_empty(), "the agent logged nothing");
    for line in stderr.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
}

#[test]
fn log_format_json_writes_one_json_object_per_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        format!("{AGENT}\n{LOCAL_DEV}\n{GENERATED}\n{GRANT_SELF}").replace("@DIR@", &dir.path().display().to_string());
    std::fs::write(dir.path().join("agent.toml"), config).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = KillOnDrop(
        Command::new(bin("sidekey-agent"))
            .args(["run", "--config", "agent.toml", "--log-format", "json"])
            .current_dir(dir.path())
            .env("RUST_LOG", "info,sidekey_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let socket = dir.path().join("agent.sock");
    let answer = eventually(Duration::from_secs(20), "token served", || {
        if let Some(status) = child.0.try_wait().unwrap() {
            let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
            panic!("sidekey-agent exited with {status}:\n{logs}");
        }
        let r = http::get(&socket, "/v1/secrets/token").ok()?;
        (r.status == 200).then(|| r.json())
    });
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());

    let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert_json_lines(&logs);
    assert!(logs.contains("stopping"), "the stop is logged:\n{logs}");
    let value = answer["data"]["value"].as_str().unwrap();
    assert!(!logs.contains(value), "a secret value appeared in the logs");
}

#[test]
fn sidekey_log_format_in_the_environment_selects_json_too() {
    let agent = Agent::prepare(&format!("{LOCAL_DEV}\n{GENERATED}\n{GRANT_SELF}"))
        .launch_with_env(&[("SIDEKEY_LOG_FORMAT", "json")]);
    agent.wait_served("token", Duration::from_secs(20));
    assert_json_lines(&agent.stderr());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
