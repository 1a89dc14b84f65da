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
    for file in ["role-id", "secret-id"] {
        std::fs::write(dir.path().join(file), "x\n").unwrap();
    }
    // check reads the CA file as PEM certificates: one made now.
    let ca = crate::support::tls::Ca::new("sidekey example CA");
    std::fs::write(dir.path().join("vault-ca.pem"), ca.pem()).unwrap();
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

/// `check` and `run` in a directory holding `config` as `bad.toml`, the token file `token`, a CA
/// and a client certificate and key made now (`ca.pem`, `client.pem`, `client.key`), a JWT file
/// `jwt` and a file that is no PEM (`notes.txt`); the Vault variables of the caller are removed
/// and `env` set.
fn refused_in_tls_dir(config: &str, env: &[(&str, &str)], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::support::tls::Ca::new("sidekey check CA");
    let client = ca.client("sidekey-agent");
    for (name, content) in [
        ("bad.toml", config),
        ("token", "t\n"),
        ("ca.pem", &ca.pem()),
        ("client.pem", &client.cert),
        ("client.key", &client.key),
        ("jwt", "a.b.c\n"),
        ("notes.txt", "not a certificate\n"),
    ] {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    for command in ["check", "run"] {
        let mut cmd = Command::new(bin("sidekey-agent"));
        cmd.args([command, "--config", "bad.toml"]).current_dir(dir.path());
        for var in [
            "VAULT_ADDR",
            "BAO_ADDR",
            "VAULT_CACERT",
            "BAO_CACERT",
            "VAULT_NAMESPACE",
            "BAO_NAMESPACE",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd.envs(env.iter().copied()).output().unwrap();
        let message = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{command} should exit 2: {message}");
        assert!(message.contains("bad.toml"), "names the file: {message}");
        for word in expect {
            assert!(
                message.contains(word),
                "{command}: message should name {word:?}: {message}"
            );
        }
    }
}

/// Every check of the Vault login methods and the backend's TLS and routing (issue 14): each
/// refusal names the key and, where there is one, the file.
#[test]
fn vault_login_methods_and_tls_settings_are_checked_naming_key_and_file() {
    let backend = |lines: &str| {
        GOOD.replace(
            "address = \"http://127.0.0.1:8200\"\nauth = { method = \"token\", token_file = \"token\" }",
            lines,
        )
    };
    let https = "address = \"https://127.0.0.1:8200\"";
    let token = "auth = { method = \"token\", token_file = \"token\" }";
    // (config, environment, what the message must name)
    type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            backend(&format!("{https}\nauth = {{ method = \"kerberos\" }}")),
            &[],
            &["backends.vault.auth.method", "kerberos", "known: token, approle, jwt, kubernetes, cert"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"jwt\", token_file = \"jwt\" }}")),
            &[],
            &["backends.vault.auth.role: missing"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"jwt\", role = \"app\", token_file = \"/nonexistent/jwt\" }}")),
            &[],
            &["backends.vault.auth.token_file", "/nonexistent/jwt"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"jwt\", role = \"app\" }}")),
            &[],
            &["backends.vault.auth.token_file: missing"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"kubernetes\", role = \"app\" }}")),
            &[],
            &["backends.vault.auth.token_file", "/var/run/secrets/kubernetes.io/serviceaccount/token", "(the default)"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"kubernetes\", token_file = \"jwt\" }}")),
            &[],
            &["backends.vault.auth.role: missing"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"kubernetes\", role = \"a/b\", token_file = \"jwt\" }}")),
            &[],
            &["backends.vault.auth.role", "not a role name"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"cert\", name = \"agent\" }}")),
            &[],
            &["backends.vault.auth.method", "backends.vault.client_cert"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"jwt\", role = \"app\", token_file = \"jwt\", mount = \"/\" }}")),
            &[],
            &["backends.vault.auth.mount", "empty"],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"token\", token_file = \"token\", secret_id_wrapped = true }}")),
            &[],
            &["backends.vault.auth.secret_id_wrapped", "not a key of auth method \"token\""],
        ),
        (
            backend(&format!("{https}\nauth = {{ method = \"approle\", role_id_file = \"token\", secret_id_file = \"token\", secret_id_wrapped = \"yes\" }}")),
            &[],
            &["secret_id_wrapped"],
        ),
        (
            backend(&format!("{https}\nca_cert = \"/nonexistent/ca.pem\"\n{token}")),
            &[],
            &["backends.vault.ca_cert", "/nonexistent/ca.pem"],
        ),
        (
            backend(&format!("{https}\nca_cert = \"notes.txt\"\n{token}")),
            &[],
            &["backends.vault.ca_cert", "notes.txt holds no PEM certificate"],
        ),
        (
            backend(&format!("{https}\nclient_cert = \"client.pem\"\n{token}")),
            &[],
            &["backends.vault.client_key: missing"],
        ),
        (
            backend(&format!("{https}\nclient_key = \"client.key\"\n{token}")),
            &[],
            &["backends.vault.client_cert: missing"],
        ),
        (
            backend(&format!("{https}\nclient_cert = \"client.pem\"\nclient_key = \"client.pem\"\n{token}")),
            &[],
            &["backends.vault.client_key", "client.pem holds no PEM private key"],
        ),
        (
            backend(&format!("{https}\nclient_cert = \"client.key\"\nclient_key = \"client.key\"\n{token}")),
            &[],
            &["backends.vault.client_cert", "client.key holds no PEM certificate"],
        ),
        (
            backend(&format!("address = \"http://127.0.0.1:8200\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"\n{token}")),
            &[],
            &["backends.vault.client_cert", "https://"],
        ),
        (
            backend(&format!("{https}\ntls_server_name = \"127.0.0.1\"\n{token}")),
            &[],
            &["backends.vault.tls_server_name", "not a DNS name"],
        ),
        (
            backend(&format!("address = \"http://127.0.0.1:8200\"\ntls_server_name = \"vault.internal\"\n{token}")),
            &[],
            &["backends.vault.tls_server_name", "https://"],
        ),
        (
            backend(&format!("{https}\nnamespace = \"\"\n{token}")),
            &[],
            &["backends.vault.namespace", "empty"],
        ),
        (backend(token), &[], &["backends.vault.address: missing", "VAULT_ADDR or BAO_ADDR"]),
        (
            backend(token),
            &[("VAULT_ADDR", "vault:8200")],
            &["backends.vault.address", "(from VAULT_ADDR)"],
        ),
        (
            backend(token),
            &[("BAO_ADDR", "https://127.0.0.1:8200"), ("BAO_CACERT", "notes.txt")],
            &["backends.vault.ca_cert", "notes.txt holds no PEM certificate", "from BAO_CACERT"],
        ),
    ];
    for (config, env, expect) in cases {
        refused_in_tls_dir(config, env, expect);
    }
}
