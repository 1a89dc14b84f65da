//! The second machine (issue 5): an agent publishes its fingerprint registry to OpenBao KV
//! (`[registry]`); a scanner elsewhere — no agent socket — matches a leaked database password
//! through that registry, revokes the exact lease at OpenBao, and the agent notices at its
//! next renewal and re-issues. The registry holds fingerprints and lease ids, never a value.

use std::process::Command;
use std::time::{Duration, Instant};

use rand::distributions::{Alphanumeric, DistString};

use crate::support::{bin, eventually, fingerprinted_db_agent, unique, Agent, Stack};

#[test]
fn a_scanner_without_the_agent_revokes_through_the_published_registry() {
    let stack = Stack::get();
    // Renewals every ~4 s (2/3 of 6 s): the bound on how soon the agent notices.
    let mount = stack.database_engine("6s", "1h");
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let name = unique("agent");
    let registry = format!("[registry]\nbackend = \"vault\"\npath = \"sidekey/registry\"\nname = \"{name}\"\n");
    let config = fingerprinted_db_agent(&mount, false, &registry);
    let agent = Agent::start_with_files(&config, &[("fp.key", &key)]);
    let served = agent.wait_served("db", Duration::from_secs(20));
    let (user, password) = (
        served["data"]["username"].as_str().unwrap().to_owned(),
        served["data"]["password"].as_str().unwrap().to_owned(),
    );
    let lease_id = served["lease"]["id"].as_str().unwrap().to_owned();
    let version = served["version"].as_u64().unwrap();

    // Published: fingerprints and lease ids, no value.
    let published = eventually(Duration::from_secs(10), "the registry published", || {
        let r = stack
            .vault_call("GET", &format!("secret/data/sidekey/registry/{name}"), None)
            .ok()?;
        let text = r.to_string();
        text.contains(&lease_id).then_some(text)
    });
    assert!(!published.contains(&password), "no value in the registry");

    // CI on another machine: the scanner has the key and a Vault token, no agent socket.
    let ci = tempfile::tempdir().unwrap();
    std::fs::write(
        ci.path().join("notes.md"),
        format!("db login for staging: {user} / {password}\n"),
    )
    .unwrap();
    let token_file = ci.path().join("vault-token");
    std::fs::write(&token_file, std::env::var("SIDEKEY_TEST_VAULT_TOKEN").unwrap()).unwrap();
    let out = Command::new(bin("sidekey-scan"))
        .args(["notes.md", "--verify", "--revoke", "--format", "json", "--no-progress"])
        .arg("--vault-addr")
        .arg(std::env::var("SIDEKEY_TEST_VAULT_ADDR").unwrap())
        .arg("--vault-token-file")
        .arg(&token_file)
        .arg("--fingerprint-key-file")
        .arg(agent.path("fp.key"))
        .arg("--incident-log")
        .arg(ci.path().join("incidents.jsonl"))
        .current_dir(ci.path())
        .env_remove("VAULT_TOKEN")
        .output()
        .unwrap();
    let revoked_at = Instant::now();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owned = crate::support::owned_findings(&report, "db");
    assert_eq!(owned.len(), 1, "{report:#}");
    assert_eq!(owned[0]["revoked"], true, "{report:#}");
    let incidents = std::fs::read_to_string(ci.path().join("incidents.jsonl")).unwrap();
    assert!(
        incidents.contains("revoked_lease") && incidents.contains(&lease_id),
        "{incidents}"
    );
    assert!(!incidents.contains(&password));
    assert!(stack.pg_login(&user, &password).is_err(), "the leaked login is refused");

    // The agent notices at its next renewal (≤ 2/3 of the 6 s TTL) and re-issues.
    let fresh = eventually(Duration::from_secs(15), "the agent re-issues", || {
        let r = agent.get("db");
        (r["version"].as_u64().unwrap() > version).then_some(r)
    });
    let noticed = revoked_at.elapsed();
    println!(
        "registry loop: lease revoked at OpenBao by the scanner; the agent served a new version {noticed:?} later"
    );
    let (new_user, new_password) = (
        fresh["data"]["username"].as_str().unwrap(),
        fresh["data"]["password"].as_str().unwrap(),
    );
    stack
        .pg_login(new_user, new_password)
        .expect("the re-issued credentials log in");
    assert!(noticed <= Duration::from_secs(8), "noticed after {noticed:?}");
}
