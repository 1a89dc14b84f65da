use super::super::{parse, Error, SecretSource, UidMatch};
use std::path::Path;

const BASE: &str = r#"
[agent]
socket = "agent.sock"

[backends.dev]
type = "local"
path = "dev.store"
key_file = "dev.key"

[secrets.session]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[[access]]
uid = "self"
secrets = ["*"]
"#;

fn err(text: &str) -> Error {
    parse(Path::new("t.toml"), text).expect_err("config should be refused")
}

#[test]
fn a_good_config_parses() {
    let config = parse(Path::new("t.toml"), BASE).unwrap();
    let spec = config.secrets.values().next().unwrap();
    assert!(matches!(spec.source, SecretSource::LocalGenerated { length: 32, .. }));
    assert_eq!(config.access[0].uid, Some(UidMatch::Agent));
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let e = err(&BASE.replace("rotate_every = \"1h\"", "rotate_every = \"1h\"\nrotate_evry = \"2h\""));
    assert_eq!(e.key(), Some("secrets.session.rotate_evry"), "{e}");
    assert!(e.to_string().starts_with("t.toml: "), "{e}");
    assert!(e.to_string().contains("line"), "{e}");
}

#[test]
fn bad_durations_name_the_key_and_value() {
    let e = err(&BASE.replace("\"1h\"", "\"1 fortnight\""));
    assert_eq!(e.key(), Some("secrets.session.rotate_every"));
    assert!(e.to_string().contains("1 fortnight"), "{e}");
}

#[test]
fn unknown_backends_list_the_defined_ones() {
    let e = err(&BASE.replace("backend = \"dev\"", "backend = \"prod\""));
    assert_eq!(e.key(), Some("secrets.session.backend"));
    assert!(
        e.to_string().contains("\"prod\"") && e.to_string().contains("dev"),
        "{e}"
    );
}

#[test]
fn keys_of_another_kind_are_refused() {
    let e = err(&BASE.replace("rotate_every = \"1h\"", "rotate_every = \"1h\"\ncommon_name = \"x\""));
    assert_eq!(e.key(), Some("secrets.session.common_name"));
}

#[test]
fn missing_auth_files_are_named() {
    let text = format!(
        "{BASE}\n[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:8200\"\nauth = {{ method = \"token\", token_file = \"/nonexistent/token\" }}\n"
    );
    let e = err(&text);
    assert_eq!(e.key(), Some("backends.vault.auth.token_file"));
    assert!(e.to_string().contains("/nonexistent/token"), "{e}");
}

#[test]
fn kind_and_backend_type_must_agree() {
    let text = BASE.replace(
        "kind = \"local.generated\"\nrotate_every = \"1h\"",
        "kind = \"vault.kv2\"\npath = \"a\"",
    );
    let e = err(&text);
    assert_eq!(e.key(), Some("secrets.session.backend"), "{e}");
}

#[test]
fn access_patterns_must_match_a_secret() {
    let e = err(&BASE.replace("secrets = [\"*\"]", "secrets = [\"db\"]"));
    assert_eq!(e.key(), Some("access[0].secrets"));
}

#[test]
fn missing_directories_for_the_socket_or_audit_log_are_named() {
    let e = err(&BASE.replace("socket = \"agent.sock\"", "socket = \"/nonexistent/dir/agent.sock\""));
    assert_eq!(e.key(), Some("agent.socket"));
    assert!(e.to_string().contains("/nonexistent/dir"), "{e}");
    let e = err(&BASE.replace(
        "socket = \"agent.sock\"",
        "socket = \"agent.sock\"\naudit_log = \"/nonexistent/log/a.jsonl\"",
    ));
    assert_eq!(e.key(), Some("agent.audit_log"));
}
