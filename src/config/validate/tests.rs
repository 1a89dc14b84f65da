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

/// `run --once` binds nothing: the socket's directory, what is at its path and its group are
/// not its business; everything else is held against the machine as for `run`.
#[test]
fn an_agent_that_binds_nothing_is_not_held_to_its_socket() {
    let unbound = |text: &str| crate::config::parse_unbound(Path::new("t.toml"), text);
    let elsewhere = BASE.replace("socket = \"agent.sock\"", "socket = \"/nonexistent/dir/agent.sock\"");
    unbound(&elsewhere).unwrap();
    let here = std::env::current_dir().unwrap();
    unbound(&BASE.replace(
        "socket = \"agent.sock\"",
        &format!("socket = {:?}", here.display().to_string()),
    ))
    .unwrap();
    unbound(&BASE.replace("[agent]", "[agent]\nsocket_group = \"no-such-group-sidekey\"")).unwrap();
    let e = unbound(&elsewhere.replace(
        "socket = \"/nonexistent/dir/agent.sock\"",
        "socket = \"/nonexistent/dir/agent.sock\"\naudit_log = \"/nonexistent/log/a.jsonl\"",
    ))
    .unwrap_err();
    assert_eq!(e.key(), Some("agent.audit_log"), "the audit log is still written: {e}");
}

#[test]
fn the_tcp_listener_must_be_on_loopback() {
    let ok = parse(
        Path::new("t.toml"),
        &BASE.replace("[agent]", "[agent]\ntcp = \"127.0.0.1:2773\""),
    )
    .unwrap();
    assert_eq!(ok.agent.tcp.unwrap().port(), 2773);
    assert!(parse(
        Path::new("t.toml"),
        &BASE.replace("[agent]", "[agent]\ntcp = \"[::1]:2773\"")
    )
    .is_ok());
    for bad in ["0.0.0.0:2773", "10.1.2.3:80", "localhost", "2773"] {
        let e = err(&BASE.replace("[agent]", &format!("[agent]\ntcp = {bad:?}")));
        assert_eq!(e.key(), Some("agent.tcp"), "{bad}: {e}");
    }
}

#[test]
fn tokens_must_be_argon2id_hashes_and_rules_must_name_known_tokens() {
    let e = err(&BASE.replace("[agent]", "[agent]\ntokens = { deploy = \"plaintext-token\" }"));
    assert_eq!(e.key(), Some("agent.tokens.deploy"));
    assert!(e.to_string().contains("hash-token"), "{e}");
    let hash = crate::crypto::hash_token(b"a-token").unwrap();
    let with_token = BASE.replace("[agent]", &format!("[agent]\ntokens = {{ deploy = {hash:?} }}"));
    let ok = parse(
        Path::new("t.toml"),
        &with_token.replace("uid = \"self\"", "token = \"deploy\""),
    )
    .unwrap();
    assert_eq!(ok.access[0].token.as_deref(), Some("deploy"));
    assert!(parse(
        Path::new("t.toml"),
        &with_token.replace("uid = \"self\"", "token = \"aws\"")
    )
    .is_ok());
    let e = err(&with_token.replace("uid = \"self\"", "token = \"deplyo\""));
    assert_eq!(e.key(), Some("access[0].token"));
    assert!(e.to_string().contains("deploy"), "{e}");
}

#[test]
fn aws_kinds_take_their_keys() {
    let aws = format!(
        "{BASE}\n[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\n\n[secrets.stripe]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = \"prod/stripe\"\nrotate_every = \"30d\"\n\n[secrets.deploy]\nbackend = \"aws\"\nkind = \"aws.sts\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\n"
    );
    let config = parse(Path::new("t.toml"), &aws).unwrap();
    let stripe = &config.secrets[&crate::SecretName::new("stripe")];
    assert_eq!(
        stripe.source.rotate_every(),
        Some(std::time::Duration::from_secs(30 * 86400))
    );
    assert!(
        matches!(&stripe.source, SecretSource::AwsSecretsManager { version_stage, .. } if version_stage == "AWSCURRENT")
    );
    let deploy = &config.secrets[&crate::SecretName::new("deploy")];
    assert!(matches!(&deploy.source, SecretSource::AwsSts { duration, .. } if duration.as_secs() == 900));
    let e = err(&aws.replace("arn:aws:iam::123456789012:role/deploy", "deploy"));
    assert_eq!(e.key(), Some("secrets.deploy.role_arn"));
    let e = err(&aws.replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\naddress = \"http://x\"",
    ));
    assert_eq!(e.key(), Some("backends.aws.address"));
}

#[test]
fn file_deliveries_are_checked_before_the_agent_starts() {
    let file = |extra: &str| format!("{BASE}\n[[file]]\nsecret = \"session\"\npath = \"session.env\"\n{extra}");
    let config = parse(Path::new("t.toml"), &file("template = \"V={{ value }}\\n\"")).unwrap();
    assert_eq!(config.files[0].mode, 0o600, "private unless the config says otherwise");
    assert_eq!(
        parse(Path::new("t.toml"), &file("mode = \"0640\"")).unwrap().files[0].mode,
        0o640
    );

    for (extra, key, says) in [
        ("template = \"V={{value\"", "file[0].template", "not closed"),
        ("template = \"V={{ }}\"", "file[0].template", "empty field name"),
        ("mode = \"rw-------\"", "file[0].mode", "octal"),
        ("on_change = []", "file[0].on_change", "must name a program"),
        ("on_change = [\"\"]", "file[0].on_change", "must name a program"),
    ] {
        let e = err(&file(extra));
        assert_eq!(e.key(), Some(key), "{extra}: {e}");
        assert!(e.to_string().contains(says), "{extra}: {e}");
    }
    let e = err(&format!(
        "{BASE}\n[[file]]\nsecret = \"session\"\npath = \"/nonexistent/dir/s.env\"\n"
    ));
    assert_eq!(e.key(), Some("file[0].path"));
    assert!(e.to_string().contains("/nonexistent/dir"), "{e}");
    let twice = format!("{}\n[[file]]\nsecret = \"session\"\npath = \"session.env\"\n", file(""));
    let e = err(&twice);
    assert_eq!(e.key(), Some("file[1].path"));
    assert!(e.to_string().contains("file[0]"), "{e}");
}

#[test]
fn a_file_may_name_several_secrets_and_needs_no_secret_then() {
    let two = format!(
        "{BASE}\n[secrets.my-api]\nbackend = \"dev\"\nkind = \"local.static\"\n\n[[file]]\npath = \"app.env\"\n"
    );
    let file = |extra: &str| format!("{two}{extra}\n");
    let config = parse(
        Path::new("t.toml"),
        &file("template = \"S={{ session.value | shell }}\\nK={{ secrets[\\\"my-api\\\"].key }}\\n\""),
    )
    .unwrap();
    let names: Vec<&str> = config.files[0].secrets.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["session", "my-api"]);
    assert_eq!(config.files[0].secret, None);

    // With `secret`, bare names are its fields and it comes first.
    let config = parse(
        Path::new("t.toml"),
        &file("secret = \"my-api\"\ntemplate = \"K={{ key }} S={{ session.value }}\""),
    )
    .unwrap();
    let names: Vec<&str> = config.files[0].secrets.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["my-api", "session"]);

    for (extra, key, says) in [
        ("", "file[0].secret", "missing"),
        ("template = \"no placeholders\"", "file[0].template", "names no secret"),
        (
            "template = \"{{ session.valu }}\"",
            "file[0].template",
            "has no field \"valu\" (its fields: value)",
        ),
        (
            "template = \"{{ sesion.value }}\"",
            "file[0].template",
            "\"sesion\" is not a secret",
        ),
        (
            "template = \"{{ secrets[\\\"api\\\"].key }}\"",
            "file[0].template",
            "unknown secret \"api\"",
        ),
        (
            "template = \"{{ session.value | yml }}\"",
            "file[0].template",
            "unknown filter \"yml\"",
        ),
        (
            "template = \"a\\n{{ session.value | }}\"",
            "file[0].template",
            "line 2, column 18",
        ),
        (
            "secret = \"session\"\ntemplate = \"{{ valu }}\"",
            "file[0].template",
            "has no field \"valu\"",
        ),
    ] {
        let e = err(&file(extra));
        assert_eq!(e.key(), Some(key), "{extra}: {e}");
        assert!(e.to_string().contains(says), "{extra}: {e}");
    }
}

#[test]
fn owner_and_group_are_ids_or_names_this_host_knows() {
    let file = |extra: &str| format!("{BASE}\n[[file]]\nsecret = \"session\"\npath = \"s.env\"\n{extra}\n");
    let config = parse(Path::new("t.toml"), &file("owner = 65534\ngroup = \"0\"")).unwrap();
    let f = &config.files[0];
    assert_eq!(
        (f.owner.as_ref().unwrap().id, f.group.as_ref().unwrap().id),
        (Some(65534), Some(0))
    );
    let config = parse(Path::new("t.toml"), &file("owner = \"root\"\ngroup = \"root\"")).unwrap();
    assert_eq!(config.files[0].owner.as_ref().unwrap().id, Some(0));
    assert_eq!(config.files[0].owner.as_ref().unwrap().to_string(), "root (0)");

    let e = err(&file("owner = \"no-such-user-sidekey\""));
    assert_eq!(e.key(), Some("file[0].owner"), "{e}");
    assert!(e.to_string().contains("no user named \"no-such-user-sidekey\""), "{e}");
    let e = err(&file("group = \"no-such-group-sidekey\""));
    assert_eq!(e.key(), Some("file[0].group"), "{e}");
    assert!(e.to_string().contains("no group named"), "{e}");
    let e = err(&file("owner = \"\""));
    assert_eq!(e.key(), Some("file[0].owner"), "{e}");

    // A config for another host keeps names it cannot look up here.
    let portable =
        super::super::parse_portable(Path::new("t.toml"), &file("owner = \"no-such-user-sidekey\"")).unwrap();
    let owner = portable.files[0].owner.as_ref().unwrap();
    assert_eq!((owner.name.as_str(), owner.id), ("no-such-user-sidekey", None));
}

/// A vault backend with `settings` (TOML lines) parsed against `env` instead of the process
/// environment.
fn vault_with_env(settings: &str, env: &[(&str, &str)]) -> Result<super::super::VaultBackend, Error> {
    let token = std::env::temp_dir().join(format!("sidekey-env-test-{}", std::process::id()));
    std::fs::write(&token, "t\n").unwrap();
    let auth = format!(
        "auth = {{ method = \"token\", token_file = {:?} }}",
        token.display().to_string()
    );
    let auth = if settings.contains("auth = ") {
        ""
    } else {
        auth.as_str()
    };
    let text = format!("{BASE}\n[backends.vault]\ntype = \"vault\"\n{auth}\n{settings}\n");
    let lookup = |var: &str| env.iter().find(|(k, _)| *k == var).map(|(_, v)| v.to_string());
    let raw = super::parse_raw(Path::new("t.toml"), &text)?;
    let config = super::validate(Path::new("t.toml"), raw, true, true, &lookup)?;
    match config.backends.get("vault") {
        Some(super::super::BackendConfig::Vault(v)) => Ok(v.clone()),
        _ => unreachable!(),
    }
}

#[test]
fn address_ca_cert_and_namespace_fall_back_to_the_environment_and_say_so() {
    let ca = std::env::temp_dir().join(format!("sidekey-env-ca-{}.pem", std::process::id()));
    let cert = rcgen::generate_simple_self_signed(vec!["vault.test".to_owned()]).unwrap();
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let ca = ca.display().to_string();

    let v = vault_with_env("", &[("VAULT_ADDR", "https://a:8200"), ("BAO_ADDR", "https://b:8200")]).unwrap();
    assert_eq!(v.addresses, ["https://a:8200"], "VAULT_ADDR before BAO_ADDR");
    assert_eq!((v.from_env[0].key, v.from_env[0].var), ("address", "VAULT_ADDR"));
    let v = vault_with_env(
        "",
        &[
            ("VAULT_ADDR", ""),
            ("BAO_ADDR", "https://b:8200"),
            ("BAO_CACERT", &ca),
            ("BAO_NAMESPACE", "team"),
        ],
    )
    .unwrap();
    assert_eq!(v.addresses, ["https://b:8200"], "an empty variable counts as unset");
    assert_eq!(v.ca_cert.unwrap().display().to_string(), ca);
    assert_eq!(v.namespace.as_deref(), Some("team"));
    let vars: Vec<_> = v.from_env.iter().map(|f| (f.key, f.var)).collect();
    assert_eq!(
        vars,
        [
            ("address", "BAO_ADDR"),
            ("ca_cert", "BAO_CACERT"),
            ("namespace", "BAO_NAMESPACE")
        ]
    );
    // What the config sets wins, and nothing is reported as from the environment.
    let v = vault_with_env(
        &format!("address = \"https://c:8200\"\nca_cert = {ca:?}\nnamespace = \"own\""),
        &[
            ("VAULT_ADDR", "https://a:8200"),
            ("VAULT_CACERT", "/nonexistent"),
            ("VAULT_NAMESPACE", "x"),
        ],
    )
    .unwrap();
    assert_eq!(
        (v.addresses[0].as_str(), v.namespace.as_deref()),
        ("https://c:8200", Some("own"))
    );
    assert!(v.from_env.is_empty());

    let e = vault_with_env("", &[]).unwrap_err();
    assert_eq!(e.key(), Some("backends.vault.address"), "{e}");
    assert!(e.to_string().contains("VAULT_ADDR or BAO_ADDR"), "{e}");
    let e = vault_with_env("", &[("VAULT_ADDR", "vault:8200")]).unwrap_err();
    assert!(e.to_string().contains("(from VAULT_ADDR)"), "{e}");
    let e = vault_with_env(
        "",
        &[
            ("VAULT_ADDR", "https://a:8200"),
            ("VAULT_CACERT", "/nonexistent/ca.pem"),
        ],
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("backends.vault.ca_cert"), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/ca.pem") && e.to_string().contains("from VAULT_CACERT"),
        "{e}"
    );
}

#[test]
fn client_certificates_come_in_pairs_over_https_and_the_cert_method_needs_one() {
    let https = "address = \"https://127.0.0.1:8200\"";
    let e = vault_with_env(&format!("{https}\nclient_cert = \"/etc/ssl/x.pem\""), &[]).unwrap_err();
    assert_eq!(e.key(), Some("backends.vault.client_key"), "{e}");
    let e = vault_with_env(&format!("{https}\nclient_key = \"/etc/ssl/x.key\""), &[]).unwrap_err();
    assert_eq!(e.key(), Some("backends.vault.client_cert"), "{e}");
    let e = vault_with_env(
        "address = \"https://127.0.0.1:8200\"\ntls_server_name = \"10.0.0.1\"",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("backends.vault.tls_server_name"), "{e}");
    let e = vault_with_env(
        "address = \"http://127.0.0.1:8200\"\ntls_server_name = \"vault.internal\"",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
    let v = vault_with_env(&format!("{https}\ntls_server_name = \"vault.internal\""), &[]).unwrap();
    assert_eq!(v.tls_server_name.as_deref(), Some("vault.internal"));
}

#[test]
fn the_socket_group_must_exist() {
    let group = |g: &str| BASE.replace("[agent]", &format!("[agent]\nsocket_group = {g:?}"));
    let e = err(&group("no-such-group-sidekey"));
    assert_eq!(e.key(), Some("agent.socket_group"), "{e}");
    assert!(e.to_string().contains("no-such-group-sidekey"), "{e}");
    assert!(
        parse(Path::new("t.toml"), &group("0")).is_ok(),
        "a gid is taken as it is"
    );
    assert!(parse(Path::new("t.toml"), &group("root")).is_ok());
}

/// One secret of every kind in `KINDS`, each read back as the kind it was written as.
#[test]
fn every_entry_recognises_what_it_builds() {
    let token = std::env::temp_dir().join(format!("sidekey-kinds-test-{}", std::process::id()));
    std::fs::write(&token, "t\n").unwrap();
    let mut text = format!(
        "{BASE}\n[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:8200\"\nauth = {{ method = \"token\", token_file = {:?} }}\n\n[backends.aws]\ntype = \"aws\"\n",
        token.display().to_string()
    );
    let keys = [
        ("vault.kv2", "vault", "path = \"a\""),
        ("vault.database", "vault", "role = \"r\""),
        ("vault.pki", "vault", "role = \"r\"\ncommon_name = \"a.example\""),
        ("vault.lease", "vault", "path = \"rabbitmq/creds/app\""),
        ("aws.secretsmanager", "aws", "secret_id = \"s\""),
        ("aws.sts", "aws", "role_arn = \"arn:aws:iam::123456789012:role/r\""),
        ("local.generated", "dev", "rotate_every = \"1h\""),
        ("local.static", "dev", ""),
    ];
    assert_eq!(keys.len(), crate::config::kinds::KINDS.len(), "a fixture per kind");
    for (i, (kind, backend, extra)) in keys.iter().enumerate() {
        text += &format!("\n[secrets.s{i}]\nbackend = \"{backend}\"\nkind = \"{kind}\"\n{extra}\n");
    }
    let config = parse(Path::new("t.toml"), &text).unwrap();
    std::fs::remove_file(&token).ok();
    for (i, (kind, _, _)) in keys.iter().enumerate() {
        let spec = &config.secrets[&crate::SecretName::new(format!("s{i}"))];
        assert_eq!(spec.source.kind_name(), *kind);
    }
    for (name, b) in &config.backends {
        assert_eq!(b.type_name(), if name == "dev" { "local" } else { name.as_str() });
    }
}

#[test]
fn known_lists_name_every_kind_type_and_method() {
    let e = err(&BASE.replace("kind = \"local.generated\"", "kind = \"local.random\""));
    assert_eq!(e.key(), Some("secrets.session.kind"));
    assert!(
        e.to_string().ends_with("unknown kind \"local.random\" (known: vault.kv2, vault.database, vault.pki, vault.lease, aws.secretsmanager, aws.sts, local.generated, local.static)"),
        "{e}"
    );
    let e = err(&BASE.replace("type = \"local\"", "type = \"consul\""));
    assert!(
        e.to_string()
            .ends_with("backends.dev.type: unknown backend type \"consul\" (known: vault, local, aws)"),
        "{e}"
    );
    let vault = |auth: &str| {
        format!(
            "{BASE}\n[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:8200\"\nauth = {{ {auth} }}\n"
        )
    };
    let e = err(&vault("method = \"kerberos\""));
    assert!(
        e.to_string()
            .ends_with("backends.vault.auth.method: unknown auth method \"kerberos\" (known: token, approle, jwt, kubernetes, cert)"),
        "{e}"
    );
    let e = err(&vault("method = \"token\", token_file = \"t\", role_id_file = \"r\""));
    assert_eq!(e.key(), Some("backends.vault.auth.role_id_file"), "{e}");
    assert!(
        e.to_string()
            .contains("not a key of auth method \"token\" (it takes: method, token_file)"),
        "{e}"
    );
    let e = err(&BASE.replace("rotate_every = \"1h\"", "rotate_every = \"1h\"\npath = \"x\""));
    assert!(
        e.to_string().ends_with("secrets.session.path: not a key of kind \"local.generated\" (it takes: backend, kind, rotate_every, length)"),
        "{e}"
    );
}

#[test]
fn an_unreadable_file_names_its_cause_once() {
    let e = crate::config::load(Path::new("/nonexistent/agent.toml")).unwrap_err();
    assert_eq!(e.to_string(), "/nonexistent/agent.toml: cannot read config");
    let cause = std::error::Error::source(&e).expect("the I/O error is the source");
    assert!(cause.to_string().contains("No such file"), "{cause}");
}

#[test]
fn durations_below_their_minimum_name_the_key_and_the_minimum() {
    let e = err(&BASE.replace("\"1h\"", "\"1ns\""));
    assert_eq!(e.key(), Some("secrets.session.rotate_every"), "{e}");
    assert!(e.to_string().contains("1ns is below the minimum of 1s"), "{e}");
    let with = |refresh: &str| {
        format!("{BASE}\n[secrets.pinned]\nbackend = \"dev\"\nkind = \"local.static\"\nrefresh = \"{refresh}\"\n")
    };
    let e = err(&with("10ms"));
    assert_eq!(e.key(), Some("secrets.pinned.refresh"), "{e}");
    assert!(e.to_string().contains("below the minimum of 100ms"), "{e}");
    let vault = format!(
        "{BASE}\n[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:8200\"\nauth = {{ method = \"token\", token_file = \"Cargo.toml\" }}\n\n[secrets.cert]\nbackend = \"vault\"\nkind = \"vault.pki\"\nrole = \"r\"\ncommon_name = \"x\"\nttl = \"500ms\"\n"
    );
    assert_eq!(err(&vault).key(), Some("secrets.cert.ttl"));
    let aws = format!(
        "{BASE}\n[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\n\n[secrets.stripe]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = \"s\"\nrotate_every = \"999ms\"\n\n[secrets.deploy]\nbackend = \"aws\"\nkind = \"aws.sts\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\nduration = \"1ms\"\n"
    );
    assert_eq!(err(&aws).key(), Some("secrets.deploy.duration"));
    assert_eq!(
        err(&aws.replace("duration = \"1ms\"", "")).key(),
        Some("secrets.stripe.rotate_every")
    );
    // The minimums themselves are accepted, and so are the tests' shortest values.
    parse(Path::new("t.toml"), &BASE.replace("\"1h\"", "\"1s\"")).unwrap();
    parse(Path::new("t.toml"), &with("100ms")).unwrap();
}

#[test]
fn anything_but_a_socket_at_the_socket_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let at = |path: &Path| {
        BASE.replace(
            "socket = \"agent.sock\"",
            &format!("socket = {:?}", path.display().to_string()),
        )
    };
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for (path, kind) in [
        (&file, "a regular file"),
        (&dir.path().to_path_buf(), "a directory"),
        (&link, "a symlink"),
    ] {
        let e = err(&at(path));
        assert_eq!(e.key(), Some("agent.socket"), "{e}");
        assert!(e.to_string().contains(&format!("is {kind}, not a socket")), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    // Nothing there, or a (stale) socket, is fine: the agent binds or replaces it.
    parse(Path::new("t.toml"), &at(&dir.path().join("absent"))).unwrap();
    let socket = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    parse(Path::new("t.toml"), &at(&socket)).unwrap();
}

/// One vault backend per auth method, each read back as the method it was written as, with
/// its defaults.
#[test]
fn every_auth_method_recognises_what_it_builds() {
    use super::super::{kinds::AUTH_METHODS, VaultAuth};
    let file = std::env::temp_dir().join(format!("sidekey-auth-test-{}", std::process::id()));
    std::fs::write(&file, "t\n").unwrap();
    let f = file.display().to_string();
    let ca = std::env::temp_dir().join(format!("sidekey-auth-ca-{}.pem", std::process::id()));
    let client = rcgen::generate_simple_self_signed(vec!["agent".to_owned()]).unwrap();
    std::fs::write(&ca, client.cert.pem()).unwrap();
    let key = std::env::temp_dir().join(format!("sidekey-auth-key-{}.pem", std::process::id()));
    std::fs::write(&key, client.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "address = \"https://127.0.0.1:8200\"\nclient_cert = {:?}\nclient_key = {:?}",
        ca.display().to_string(),
        key.display().to_string()
    );
    let auths = [
        format!("auth = {{ method = \"token\", token_file = {f:?} }}"),
        format!(
            "auth = {{ method = \"approle\", role_id_file = {f:?}, secret_id_file = {f:?}, secret_id_wrapped = true }}"
        ),
        format!("auth = {{ method = \"jwt\", role = \"ci\", token_file = {f:?} }}"),
        format!("auth = {{ method = \"kubernetes\", role = \"app\", token_file = {f:?}, mount = \"/k8s/\" }}"),
        "auth = { method = \"cert\" }".to_owned(),
    ];
    assert_eq!(auths.len(), AUTH_METHODS.len(), "one case per method");
    for (auth, method) in auths.iter().zip(AUTH_METHODS) {
        let v = vault_with_env(&format!("{tls}\n{auth}"), &[]).unwrap_or_else(|e| panic!("{auth}: {e}"));
        assert_eq!(v.auth.method_name(), method.name);
        match v.auth {
            VaultAuth::AppRole {
                mount,
                secret_id_wrapped,
                ..
            } => assert_eq!((mount.as_str(), secret_id_wrapped), ("approle", true)),
            VaultAuth::Jwt { mount, role, .. } => assert_eq!((mount.as_str(), role.as_str()), ("jwt", "ci")),
            VaultAuth::Kubernetes { mount, .. } => assert_eq!(mount, "k8s", "slashes trimmed"),
            VaultAuth::Cert { mount, name } => assert_eq!((mount.as_str(), name), ("cert", None)),
            VaultAuth::Token { .. } => {}
        }
    }
}

const PROXY: &str = r#"
[secrets.db]
backend = "dev"
kind = "local.static"

[[proxy]]
listen = ".s.PGSQL.5432"
protocol = "postgres"
secret = "db"
upstream = "db.internal:5432"
"#;

#[test]
fn a_proxy_parses_with_prefer_as_the_default_tls() {
    let config = parse(Path::new("t.toml"), &format!("{BASE}{PROXY}")).unwrap();
    let p = &config.proxies[0];
    assert_eq!(p.protocol, super::super::ProxyProtocol::Postgres);
    assert_eq!(p.secret.as_str(), "db");
    assert_eq!(p.upstream.to_string(), "db.internal:5432");
    assert_eq!(p.tls, super::super::UpstreamTls::Prefer);
    let v6 = parse(
        Path::new("t.toml"),
        &format!(
            "{BASE}{}",
            PROXY.replace("db.internal:5432", "[::1]:6432")
                + "upstream_tls = \"verify-full\"\ntls_server_name = \"db.internal\"\n"
        ),
    )
    .unwrap();
    assert_eq!(v6.proxies[0].upstream.host, "::1");
    assert_eq!(v6.proxies[0].upstream.to_string(), "[::1]:6432");
    assert_eq!(
        v6.proxies[0].tls,
        super::super::UpstreamTls::VerifyFull {
            ca_cert: None,
            server_name: "db.internal".into()
        }
    );
}

#[test]
fn proxy_mistakes_name_the_key_and_value() {
    let cases: &[(String, &str, &str)] = &[
        (PROXY.replace("postgres\"", "mysql\""), "proxy[0].protocol", "\"mysql\""),
        (
            PROXY.replace("secret = \"db\"", "secret = \"nope\""),
            "proxy[0].secret",
            "\"nope\"",
        ),
        (
            PROXY.replace("secret = \"db\"", "secret = \"session\""),
            "proxy[0].secret",
            "no username and password",
        ),
        (
            PROXY.replace("db.internal:5432", "db.internal"),
            "proxy[0].upstream",
            "\"db.internal\"",
        ),
        (
            PROXY.replace("db.internal:5432", "db:99999"),
            "proxy[0].upstream",
            "\"db:99999\"",
        ),
        (
            PROXY.replace("db.internal:5432", "::1:5432"),
            "proxy[0].upstream",
            "host:port",
        ),
        (
            format!("{PROXY}upstream_tls = \"sometimes\"\n"),
            "proxy[0].upstream_tls",
            "\"sometimes\"",
        ),
        (
            format!("{PROXY}ca_cert = \"ca.pem\"\n"),
            "proxy[0].ca_cert",
            "verify-full",
        ),
        (
            format!("{PROXY}upstream_tls = \"verify-full\"\nca_cert = \"/nonexistent/ca.pem\"\n"),
            "proxy[0].ca_cert",
            "/nonexistent/ca.pem",
        ),
        (
            PROXY.replace("listen = \".s.PGSQL.5432\"\n", ""),
            "proxy[0].listen",
            "missing",
        ),
        (
            PROXY.replace(".s.PGSQL.5432", "/nonexistent-dir/.s.PGSQL.5432"),
            "proxy[0].listen",
            "/nonexistent-dir",
        ),
        (
            PROXY.replace(".s.PGSQL.5432", "agent.sock"),
            "proxy[0].listen",
            "agent.socket",
        ),
        (
            format!(
                "{PROXY}{}",
                PROXY
                    .split("[[proxy]]")
                    .nth(1)
                    .map(|p| format!("[[proxy]]{p}"))
                    .unwrap()
            ),
            "proxy[1].listen",
            "proxy[0]",
        ),
        (format!("{PROXY}upstrem = \"x\"\n"), "proxy[0].upstrem", "unknown key"),
    ];
    for (proxy, key, says) in cases {
        let e = err(&format!("{BASE}{proxy}"));
        assert_eq!(e.key(), Some(*key), "{e}");
        assert!(e.to_string().contains(says), "{key}: {e}");
    }
}
