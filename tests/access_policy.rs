//! The access policy on the Unix socket: the kernel names the caller (SO_PEERCRED), default
//! deny, refusals answered 403 and audited.

use std::process::Command;
use std::time::Duration;

use crate::support::{bin, Agent};

const CONFIG: &str = r#"
[agent]
socket = "@DIR@/agent.sock"
socket_group = "nogroup"            # so that `nobody` can connect at all, and be refused by policy
audit_log = "@DIR@/audit.jsonl"

[backends.dev]
type = "local"
path = "@DIR@/dev.store"
key_file = "@DIR@/dev.key"

[secrets.db]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[secrets.other]
backend = "dev"
kind = "local.generated"
rotate_every = "1h"

[[access]]
uid = "self"
secrets = ["db"]
"#;

#[test]
fn a_caller_no_rule_grants_gets_403_and_the_refusal_is_audited() {
    let agent = Agent::start_shared(CONFIG);
    let granted = agent.wait_served("db", Duration::from_secs(10));

    // The same client, run as `nobody` (uid 65534), whom no rule grants.
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(bin("sidekey-agent"))
        .args(["get", "db", "--socket"])
        .arg(&agent.socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused → exit 1: {stderr}");
    assert!(stderr.contains("uid 65534"), "{stderr}");
    assert!(out.stdout.is_empty());

    // The granted uid reads it; a secret outside its rule is refused.
    let out = agent.cli(&["get", "db", "--field", "value"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        granted["data"]["value"].as_str().unwrap()
    );
    let other = agent.http("/v1/secrets/other");
    assert_eq!(other.status, 403);
    assert!(other.json()["error"].as_str().unwrap().contains("other"));
    // Listing shows only what this caller may read.
    let list = agent.http("/v1/secrets").json();
    assert_eq!(list["secrets"].as_array().unwrap().len(), 1, "{list}");

    std::thread::sleep(Duration::from_millis(400));
    let audit = agent.audit();
    let refusal = audit
        .iter()
        .find(|e| e["event"] == "refusal" && e["peer"]["uid"] == 65534)
        .unwrap_or_else(|| panic!("no refusal of uid 65534 in the audit log: {audit:?}"));
    assert_eq!(refusal["route"], "/v1/secrets/{name}");
    assert!(refusal["reason"].as_str().unwrap().contains("no [[access]] rule"));
    assert!(audit.iter().any(|e| e["event"] == "refusal" && e["secret"] == "other"));
    assert!(audit
        .iter()
        .any(|e| e["event"] == "read" && e["secret"] == "db" && e["rule"] == 0));
    agent.assert_never_leaked(&[granted["data"]["value"].as_str().unwrap().to_owned()]);
}
