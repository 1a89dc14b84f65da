//! `vault.database` against the throw-away scram PostgreSQL: served credentials log in; a
//! client that re-reads the socket and logs in every 0.5 s through renewals and max-TTL
//! re-issues never fails; a revoked lease's credentials stop working.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{eventually, Agent, Stack, VAULT_ROOT};

fn config(mount: &str) -> String {
    format!(
        r#"{VAULT_ROOT}
[secrets.db]
backend = "vault"
kind = "vault.database"
mount = "{mount}"
role = "app"

[[access]]
uid = "self"
secrets = ["db"]
"#
    )
}

#[test]
fn a_client_logging_in_every_half_second_for_40s_never_fails() {
    let stack = Stack::get();
    let mount = stack.database_engine("5s", "15s");
    let agent = Agent::start(&config(&mount));
    agent.wait_served("db", Duration::from_secs(20));

    let started = Instant::now();
    let mut versions = Vec::new();
    let mut users = Vec::new();
    let mut passwords = Vec::new();
    let mut logins = 0;
    while started.elapsed() < Duration::from_secs(40) {
        let tick = Instant::now();
        let answer = agent.get("db");
        let user = answer["data"]["username"].as_str().unwrap().to_owned();
        let password = answer["data"]["password"].as_str().unwrap().to_owned();
        let ttl = answer["lease"]["ttl_s"].as_u64().unwrap();
        assert!(
            ttl >= 1,
            "served a credential with {ttl}s left at {:?}",
            started.elapsed()
        );
        if let Err(e) = stack.pg_login(&user, &password) {
            panic!(
                "login with served credentials failed at {:?} (version {}, ttl {ttl}s): {e}",
                started.elapsed(),
                answer["version"]
            );
        }
        logins += 1;
        let version = answer["version"].as_u64().unwrap();
        if versions.last() != Some(&version) {
            versions.push(version);
            users.push(user);
            passwords.push(password);
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(tick.elapsed()));
    }
    println!("{logins} logins over 40s, versions served: {versions:?}");
    assert!(
        versions.windows(2).all(|w| w[1] > w[0]),
        "versions only increase: {versions:?}"
    );
    assert!(
        versions.len() >= 3,
        "a 15 s max TTL over 40 s means at least two re-issues: {versions:?}"
    );
    let audit = agent.audit();
    assert!(
        audit.iter().any(|e| e["event"] == "renew"),
        "leases were renewed in place"
    );
    assert!(
        audit.iter().any(|e| e["event"] == "reissue"),
        "credentials were re-issued before the max TTL"
    );

    let mut secrets = users;
    secrets.extend(passwords);
    agent.assert_never_leaked(&secrets);
}

#[test]
fn a_revoked_leases_credentials_fail_and_the_agent_reissues() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    let agent = Agent::start(&config(&mount));
    let served = agent.wait_served("db", Duration::from_secs(20));
    let user = served["data"]["username"].as_str().unwrap().to_owned();
    let password = served["data"]["password"].as_str().unwrap().to_owned();
    stack.pg_login(&user, &password).expect("served credentials log in");
    assert!(served["lease"]["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{mount}/creds/app/")));
    assert!(served["lease"]["renewable"].as_bool().unwrap());

    stack.vault_write("sys/leases/revoke", json!({ "lease_id": served["lease"]["id"] }));
    let err = stack
        .pg_login(&user, &password)
        .expect_err("a revoked lease's credentials must fail");
    println!("login after revocation: {err}");

    // The agent learns of it at its next renewal; on a fresh start it serves a working user.
    let mut restarted = agent;
    restarted.stop();
    let agent = Agent::start(&config(&mount));
    let fresh = agent.wait_served("db", Duration::from_secs(20));
    assert_ne!(fresh["data"]["username"], served["data"]["username"]);
    stack
        .pg_login(
            fresh["data"]["username"].as_str().unwrap(),
            fresh["data"]["password"].as_str().unwrap(),
        )
        .expect("new credentials log in");
}

#[test]
fn a_replaced_lease_is_revoked_after_its_grace_period() {
    // TTL 12 s, max 14 s: the renewal at ~8 s is capped, so the agent re-issues with ~6 s of
    // the old lease left and revokes it 2 s (a sixth of its TTL) later, before it would expire.
    let stack = Stack::get();
    let mount = stack.database_engine("12s", "14s");
    let agent = Agent::start(&config(&mount));
    let old = agent.wait_served("db", Duration::from_secs(20));
    let (user, password) = (
        old["data"]["username"].as_str().unwrap(),
        old["data"]["password"].as_str().unwrap(),
    );
    let new = eventually(Duration::from_secs(15), "a re-issued credential", || {
        let v = agent.get("db");
        (v["version"] != old["version"]).then_some(v)
    });
    let revoked = eventually(Duration::from_secs(10), "the old lease revoked", || {
        agent
            .audit()
            .into_iter()
            .find(|e| e["event"] == "revoke" && e["lease_id"] == old["lease"]["id"])
    });
    println!("revocation audited: {revoked}");
    stack
        .pg_login(user, password)
        .expect_err("the replaced credential no longer logs in");
    stack
        .pg_login(
            new["data"]["username"].as_str().unwrap(),
            new["data"]["password"].as_str().unwrap(),
        )
        .expect("the new credential logs in");
    let metrics = agent.http("/metrics").body;
    assert!(
        metrics.contains("sidekey_revocations_total{secret=\"db\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidekey_secret_expiry_seconds{secret=\"db\"}"),
        "{metrics}"
    );
    agent.assert_never_leaked(&[user.to_owned(), password.to_owned()]);
}

#[test]
fn any_leased_read_path_is_served_and_renewed_as_vault_lease() {
    // `vault.lease` takes any path whose read answers a lease: here the database engine's
    // creds path, read generically.
    let stack = Stack::get();
    let mount = stack.database_engine("6s", "1h");
    let agent = Agent::start(&format!(
        "{VAULT_ROOT}\n[secrets.rabbit]\nbackend = \"vault\"\nkind = \"vault.lease\"\npath = \"{mount}/creds/app\"\n\n[[access]]\nuid = \"self\"\nsecrets = [\"rabbit\"]\n"
    ));
    let served = agent.wait_served("rabbit", Duration::from_secs(20));
    assert_eq!(served["source"], "vault/vault.lease");
    assert!(served["lease"]["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{mount}/creds/app/")));
    let (user, password) = (
        served["data"]["username"].as_str().unwrap(),
        served["data"]["password"].as_str().unwrap(),
    );
    stack.pg_login(user, password).expect("served credentials log in");
    // Renewed in place at ~2/3 of the 6 s TTL: same version, later expiry.
    let renewed = eventually(Duration::from_secs(10), "a renewal", || {
        agent
            .audit()
            .into_iter()
            .find(|e| e["event"] == "renew" && e["secret"] == "rabbit")
    });
    println!("{renewed}");
    let again = agent.get("rabbit");
    assert_eq!(again["version"], served["version"]);
    assert!(again["lease"]["expires_at"].as_str().unwrap() > served["lease"]["expires_at"].as_str().unwrap());
    agent.assert_never_leaked(&[user.to_owned(), password.to_owned()]);
}
