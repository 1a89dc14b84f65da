//! The scanner reaches the Vault its environment names (issue 16): `VAULT_ADDR` (or
//! `BAO_ADDR`) when `--vault-addr` is not given, and `VAULT_NAMESPACE` sent on every call, as
//! the `vault`/`bao` CLIs do. A leaked token of a namespace is found (its namespace id after a
//! dot is part of it), verified live, revoked, and then verified dead.

use serde_json::Value;

use crate::support::{one_finding, scan_json, unique, Stack};

/// `POST /v1/{path}` in namespace `ns` with the root token.
fn write_in(stack: &Stack, ns: &str, path: &str, body: Value) -> Value {
    let url = format!("{}/v1/{path}", stack.vault_addr);
    let response = ureq::post(&url)
        .set("X-Vault-Token", &stack.vault_token)
        .set("X-Vault-Namespace", ns)
        .send_json(body)
        .unwrap_or_else(|e| panic!("{path} in {ns}: {e}"));
    serde_json::from_str(&response.into_string().unwrap()).unwrap_or(Value::Null)
}

fn verified(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let args: Vec<&str> = [".", "--verify", "--format", "json", "--no-progress"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    scan_json(dir, &args, env)
}

#[test]
fn vault_addr_and_namespace_come_from_the_environment() {
    let stack = Stack::get();
    let ns = unique("team");
    stack.vault_write(&format!("sys/namespaces/{ns}"), serde_json::json!({}));
    let created = write_in(
        stack,
        &ns,
        "auth/token/create",
        serde_json::json!({"policies": ["default"], "ttl": "1h"}),
    );
    let leaked = created["auth"]["client_token"].as_str().unwrap().to_owned();

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("vault.env"), format!("VAULT_TOKEN={leaked}\n")).unwrap();
    let env = [
        ("VAULT_ADDR", stack.vault_addr.as_str()),
        ("VAULT_NAMESPACE", ns.as_str()),
    ];

    // No Vault named anywhere: nothing is sent, the token stays unverified.
    let (code, report, stderr) = verified(repo.path(), &[], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(one_finding(&report, "vault.env")["verified"], "unknown", "{report:#}");
    assert_eq!(
        one_finding(&report, "vault.env")["ruleId"],
        "vault-legacy-service-token"
    );

    // VAULT_ADDR and VAULT_NAMESPACE: looked up live, then revoked with itself.
    let (_, report, stderr) = verified(repo.path(), &[], &env);
    assert_eq!(
        one_finding(&report, "vault.env")["verified"],
        "true",
        "{report:#}\n{stderr}"
    );
    let bao_env = [("BAO_ADDR", stack.vault_addr.as_str()), ("BAO_NAMESPACE", ns.as_str())];
    let (_, report, stderr) = verified(repo.path(), &[], &bao_env);
    assert_eq!(
        one_finding(&report, "vault.env")["verified"],
        "true",
        "BAO_*: {report:#}\n{stderr}"
    );
    let (_, report, stderr) = verified(repo.path(), &["--revoke"], &env);
    assert_eq!(
        one_finding(&report, "vault.env")["revoked"],
        true,
        "{report:#}\n{stderr}"
    );
    assert!(!stderr.contains(&leaked), "no token on stderr: {stderr}");

    let (_, report, stderr) = verified(repo.path(), &[], &env);
    assert_eq!(
        one_finding(&report, "vault.env")["verified"],
        "false",
        "revoked: {report:#}\n{stderr}"
    );
}
