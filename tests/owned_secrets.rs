//! Fingerprints (issue 5, first part): the agent records an HMAC of every served credential;
//! `sidekey-scan --verify --agent-socket --fingerprint-key-file` reports a leaked database
//! password the agent issued as `owned_secret = "db"` even on a line no rule recognises, and
//! a random string the broker never issued is not reported as owned. `POST
//! /v1/fingerprints/match` answers with the lease; a caller granted nothing is refused and
//! audited; no value reaches the audit log.

use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};

use crate::support::{eventually, fingerprinted_db_agent, http, Agent, Stack};

fn config(mount: &str) -> String {
    fingerprinted_db_agent(mount, false, "")
}

fn scan(dir: &std::path::Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    crate::support::scan_json(dir, args, &[])
}

#[test]
fn a_leaked_broker_password_is_reported_as_owned_even_where_no_rule_looks() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let agent = Agent::start_with_files(&config(&mount), &[("fp.key", &key)]);
    let served = agent.wait_served("db", Duration::from_secs(20));
    let password = served["data"]["password"].as_str().unwrap().to_owned();
    let lease_id = served["lease"]["id"].as_str().unwrap().to_owned();
    let never_issued = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);

    // A leak no rule recognises: an unlabelled line in a notes file.
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("notes.txt"),
        format!("deploy notes\nfor the db: {password}\nand {never_issued}\n"),
    )
    .unwrap();
    let socket = agent.socket.to_str().unwrap().to_owned();
    let key_file = agent.path("fp.key");
    let verify = [
        "notes.txt",
        "--format",
        "json",
        "--verify",
        "--agent-socket",
        &socket,
        "--fingerprint-key-file",
        key_file.to_str().unwrap(),
    ];
    let (code, report, stderr) = scan(repo.path(), &verify);
    assert_eq!(code, 1, "{stderr}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(
        findings.len(),
        1,
        "only the broker's password, not the random string: {report:#}"
    );
    let f = &findings[0];
    assert_eq!(f["owned_secret"], "db");
    assert_eq!(f["verified"], "true");
    assert_eq!(
        (f["path"].as_str(), f["line"].as_u64(), f["column"].as_u64()),
        (Some("notes.txt"), Some(2), Some(13))
    );
    assert_eq!(f["ruleId"], "sidekey-owned-secret");
    assert!(!report.to_string().contains(&password), "redacted");

    // Without --verify nothing is known about it: no rule matches that line.
    let (code, report, _) = scan(repo.path(), &["notes.txt", "--format", "json"]);
    assert_eq!((code, report["findings"].as_array().unwrap().len()), (0, 0));

    // A wrong key finds nothing: fingerprints are keyed.
    std::fs::write(repo.path().join("wrong.key"), "not-the-key\n").unwrap();
    let mut wrong = verify;
    wrong[7] = "wrong.key";
    let (code, _, _) = scan(repo.path(), &wrong);
    assert_eq!(code, 0);

    // The match endpoint names the secret and its lease.
    let print = sidekey::fingerprint::FingerprintKey::from_bytes(key.as_bytes()).fingerprint(password.as_bytes());
    let other = sidekey::fingerprint::FingerprintKey::from_bytes(key.as_bytes()).fingerprint(never_issued.as_bytes());
    let body = serde_json::json!({"fingerprints": [print, other]}).to_string();
    let r = http::post(&agent.socket, "/v1/fingerprints/match", &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let matches = r.json()["matches"].as_array().unwrap().clone();
    assert_eq!(matches.len(), 1, "{}", r.body);
    assert_eq!(matches[0]["secret"], "db");
    assert_eq!(matches[0]["lease_id"], lease_id.as_str());
    assert_eq!(matches[0]["field"], "password");
    let r = http::post(&agent.socket, "/v1/fingerprints/match", "{\"fingerprints\": [\"zz\"]}").unwrap();
    assert_eq!(r.status, 400);

    // Every request is audited, and no value is in the audit log.
    let audit = eventually(Duration::from_secs(5), "the match audited", || {
        let audit = std::fs::read_to_string(agent.path("audit.jsonl")).unwrap_or_default();
        audit.contains("\"event\":\"match\"").then_some(audit)
    });
    assert!(!audit.contains(&password) && !audit.contains(&key), "{audit}");
}

#[test]
fn a_caller_granted_nothing_gets_no_fingerprints() {
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let config = format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\nfingerprint_key_file = \"@DIR@/fp.key\"\n\n{}\n[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n[[access]]\nuid = 4242\nsecrets = [\"session\"]\n",
        crate::support::LOCAL_DEV
    );
    let agent = Agent::start_with_files(&config, &[("fp.key", &key)]);
    let r = http::post(&agent.socket, "/v1/fingerprints/match", "{\"fingerprints\": []}").unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let r = agent.http("/v1/fingerprints");
    assert_eq!(r.status, 403, "{}", r.body);
    eventually(Duration::from_secs(5), "the refusals audited", || {
        let audit = std::fs::read_to_string(agent.path("audit.jsonl")).unwrap_or_default();
        (audit.matches("\"event\":\"refusal\"").count() >= 2).then_some(())
    });
}
