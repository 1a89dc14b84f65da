//! `vault.kv2` on real OpenBao: a change is served with a higher version, long-polls wake
//! within 100 ms of it, an unchanged value keeps its version; AppRole auth reads it too.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::support::{agent::values_of, http, unique, vault_approle, Agent, Stack, GRANT_SELF, VAULT_ROOT};

fn config(backend: &str, kv: &str) -> String {
    format!(
        r#"{backend}
[secrets.api]
backend = "vault"
kind = "vault.kv2"
mount = "{kv}"
path = "app/api"
refresh = "300ms"

{GRANT_SELF}"#
    )
}

#[test]
fn a_kv_change_is_served_with_a_higher_version_and_wakes_long_polls_at_once() {
    let stack = Stack::get();
    let kv = stack.kv2_engine();
    let first = unique("api-key-v1");
    stack.vault_write(
        &format!("{kv}/data/app/api"),
        json!({ "data": { "key": first, "region": "eu" } }),
    );
    let agent = Agent::start(&config(VAULT_ROOT, &kv));

    let v1 = agent.wait_served("api", Duration::from_secs(15));
    assert_eq!(v1["data"]["key"], first.as_str());
    assert_eq!(v1["source"], "vault/vault.kv2");
    assert!(v1["lease"].is_null());
    let version = v1["version"].as_u64().unwrap();

    // Unchanged values keep their version across refreshes.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(agent.get("api")["version"], version);

    // A long-poll, then the change.
    let socket = agent.socket.clone();
    let poll = std::thread::spawn(move || {
        let r = http::get(&socket, &format!("/v1/secrets/api?wait={version}&timeout=30s")).unwrap();
        (r, SystemTime::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    let second = unique("api-key-v2");
    stack.vault_write(
        &format!("{kv}/data/app/api"),
        json!({ "data": { "key": second, "region": "eu" } }),
    );
    let (answer, answered_at) = poll.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v2 = answer.json();
    assert_eq!(v2["data"]["key"], second.as_str());
    assert_eq!(v2["version"], version + 1);

    // "Within 100 ms of the change": the agent's audit line for the new version is the change.
    std::thread::sleep(Duration::from_millis(400));
    let issued = agent
        .audit()
        .into_iter()
        .find(|e| e["event"] == "issue" && e["version"] == version + 1)
        .expect("issue event for the new version");
    let issued_at = humantime::parse_rfc3339(issued["ts"].as_str().unwrap()).unwrap();
    let lag = answered_at.duration_since(issued_at).unwrap_or_default();
    println!("long-poll answered {lag:?} after the new version was served");
    assert!(
        lag < Duration::from_millis(100),
        "long-poll woke {lag:?} after the change"
    );

    // A long-poll with nothing new answers 304 after its timeout.
    let started = Instant::now();
    let r = agent.http(&format!("/v1/secrets/api?wait={}&timeout=500ms", version + 1));
    assert_eq!(r.status, 304);
    assert!(started.elapsed() >= Duration::from_millis(450));

    agent.assert_never_leaked(&[first, second]);
}

#[test]
fn approle_login_reads_kv_with_the_roles_policy() {
    let stack = Stack::get();
    let kv = stack.kv2_engine();
    let value = unique("approle-read");
    stack.vault_write(&format!("{kv}/data/app/api"), json!({ "data": { "token": value } }));
    let (mount, role_id, secret_id) = stack.approle(&format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}"));
    let agent = Agent::start_with_files(
        &config(&vault_approle(&mount), &kv),
        &[("role-id", &role_id), ("secret-id", &secret_id)],
    );
    let served = agent.wait_served("api", Duration::from_secs(15));
    assert_eq!(served["data"]["token"], value.as_str());
    assert_eq!(agent.http("/v1/health").status, 200);
    let mut leaked = values_of(&served);
    leaked.extend([secret_id, role_id]);
    agent.assert_never_leaked(&leaked);
}
