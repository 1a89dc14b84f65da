//! The agent's own Vault token: renewed while it can be, and replaced by a fresh AppRole
//! login when it reaches its max TTL — without interrupting what the agent serves.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{unique, vault_approle, Agent, Stack, GRANT_SELF};

#[test]
fn the_agent_logs_in_again_when_its_token_can_no_longer_be_renewed() {
    let stack = Stack::get();
    let kv = stack.kv2_engine();
    stack.vault_write(
        &format!("{kv}/data/app/api"),
        json!({ "data": { "key": unique("value") } }),
    );
    let policy = format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}");
    let (mount, role_id, secret_id) = stack.approle(&policy);
    // Tokens that live 3 s and can be renewed up to 6 s in all.
    stack.vault_write(
        &format!("auth/{mount}/role/agent"),
        json!({ "token_policies": [stack.vault_read(&format!("auth/{mount}/role/agent"))["data"]["token_policies"][0]], "token_ttl": "3s", "token_max_ttl": "6s", "secret_id_num_uses": 0 }),
    );
    let config = format!(
        r#"{backend}
[secrets.api]
backend = "vault"
kind = "vault.kv2"
mount = "{kv}"
path = "app/api"
refresh = "250ms"

{GRANT_SELF}"#,
        backend = vault_approle(&mount)
    );
    let agent = Agent::start_with_files(&config, &[("role-id", &role_id), ("secret-id", &secret_id)]);
    agent.wait_served("api", Duration::from_secs(15));

    // For 14 s (more than two max TTLs), the secret stays healthy and refreshes keep working.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(14) {
        let health = agent.http("/v1/health");
        assert_eq!(health.status, 200, "at {:?}: {}", started.elapsed(), health.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    let logins = agent.stderr().matches("logged in to Vault").count();
    assert!(
        logins >= 3,
        "expected fresh logins as tokens hit their max TTL, saw {logins}:\n{}",
        agent.stderr()
    );
    let failures = agent.audit().into_iter().filter(|e| e["event"] == "failure").count();
    assert_eq!(failures, 0, "no refresh failed across token changes");
    agent.assert_never_leaked(&[secret_id, role_id]);
}
