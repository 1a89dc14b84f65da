//! `sidekey-agent check`: every bad config exits 2 with a message naming file, key and reason;
//! `run` refuses the same configs the same way.

use std::process::Command;

use crate::support::bin;

const GOOD: &str = r#"
[agent]
socket = "agent.sock"
audit_log = "audit.jsonl"

[backends.dev]
type = "local"
path = "dev.store"
key_file = "dev.key"

[backends.vault]
type = "vault"
address = "http://127.0.0.1:8200"
auth = { method = "token", token_file = "token" }

[secrets.session]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[secrets.api]
backend = "vault"
kind = "vault.kv2"
path = "app/api"
refresh = "30s"

[[access]]
uid = 1000
secrets = ["session", "api"]
"#;

/// Runs `sidekey-agent ARGS` in a directory holding `config` as `bad.toml` and a token file.
fn agent(args: &[&str], config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    std::fs::write(dir.path().join("token"), "t\n").unwrap();
    let out = Command::new(bin("sidekey-agent"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

fn check(config: &str) -> (Option<i32>, String) {
    agent(&["check", "--config", "bad.toml"], config)
}

#[track_caller]
fn refused(config: &str, expect: &[&str]) {
    for args in [
        &["check", "--config", "bad.toml"][..],
        &["run", "--config", "bad.toml"][..],
    ] {
        let (code, message) = agent(args, config);
        assert_eq!(code, Some(2), "{args:?} should exit 2: {message}");
        assert!(message.contains("bad.toml"), "names the file: {message}");
        for word in expect {
            assert!(
                message.contains(word),
                "{args:?}: message should name {word:?}: {message}"
            );
        }
    }
}

#[test]
fn a_good_config_checks_ok() {
    let (code, message) = check(GOOD);
    assert_eq!(code, Some(0), "{message}");
    assert!(message.contains("ok"), "{message}");
}

#[test]
fn an_unknown_key_is_named_with_its_path_and_line() {
    refused(
        &GOOD.replace("refresh = \"30s\"", "refresh = \"30s\"\nrefresh_evry = \"1m\""),
        &["secrets.api.refresh_evry", "line 26"],
    );
    refused(&GOOD.replace("[agent]", "[agent]\nsokcet = \"x\""), &["agent.sokcet"]);
}

#[test]
fn a_bad_duration_is_named_with_its_value() {
    refused(
        &GOOD.replace("\"30s\"", "\"30 parsecs\""),
        &["secrets.api.refresh", "30 parsecs"],
    );
}

#[test]
fn a_missing_file_is_named() {
    refused(
        &GOOD.replace("token_file = \"token\"", "token_file = \"/nonexistent/vault-token\""),
        &["backends.vault.auth.token_file", "/nonexistent/vault-token"],
    );
    let (code, message) = agent(&["check", "--config", "missing.toml"], GOOD);
    assert_eq!(code, Some(2));
    assert!(message.contains("missing.toml"), "{message}");
}

#[test]
fn an_unknown_backend_is_named_with_the_defined_ones() {
    refused(
        &GOOD.replace("backend = \"vault\"", "backend = \"valut\""),
        &["secrets.api.backend", "valut", "dev, vault"],
    );
    refused(
        &GOOD.replace("type = \"vault\"", "type = \"consul\""),
        &["backends.vault.type", "consul"],
    );
}

#[test]
fn malformed_toml_and_wrong_types_are_refused() {
    refused(&GOOD.replace("uid = 1000", "uid = [1000]"), &["access"]);
    refused("[agent\nsocket = 1", &["line 1"]);
}

#[test]
fn the_example_config_checks_ok_once_its_files_exist() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/agent.example.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for file in ["role-id", "secret-id", "vault-ca.pem"] {
        std::fs::write(dir.path().join(file), "x\n").unwrap();
    }
    let config = example
        .replace("/etc/sidekey", &d)
        .replace("/run/sidekey", &d)
        .replace("/var/lib/sidekey", &d)
        .replace("/var/log/sidekey", &d);
    let (code, message) = check(&config);
    assert_eq!(code, Some(0), "{message}");
    assert!(message.contains("8 secrets"), "{message}");
}

#[test]
fn the_example_config_as_committed_passes_a_portable_check_and_names_what_this_host_lacks() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/agent.example.toml")).unwrap();
    let (code, message) = agent(&["check", "--portable", "--config", "bad.toml"], &example);
    assert_eq!(code, Some(0), "{message}");
    assert!(message.contains("8 secrets"), "{message}");
    // Without --portable the same file is held against this machine, which has none of its paths.
    let (code, message) = check(&example);
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("does not exist") || message.contains("cannot read"),
        "{message}"
    );
    // --portable still refuses what is wrong in the text.
    let broken = example.replace("kind = \"vault.database\"", "kind = \"vault.databse\"");
    let (code, message) = agent(&["check", "--portable", "--config", "bad.toml"], &broken);
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("unknown kind \"vault.databse\""), "{message}");
}
