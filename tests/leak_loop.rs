//! The loop (issue 5): the agent serves `db` (a dynamic PostgreSQL user from OpenBao); its
//! password is committed to a git repository; the pre-commit hook (`sidekey-scan --staged
//! --verify --revoke`) refuses the commit, reports `owned_secret = "db"`, `revoked = true`;
//! the leaked credentials no longer log in; a client long-polling the agent receives a new
//! version whose credentials do. Prints the two times the issue asks for. Also:
//! `sidekey-agent revoke` for responders, and a caller without `revoke = true` refused.

use std::process::Command;
use std::time::{Duration, Instant};

use rand::distributions::{Alphanumeric, DistString};

use crate::support::{bin, eventually, fingerprinted_db_agent, http, Agent, Stack, VAULT_ROOT};

fn config(mount: &str, revoke: bool) -> String {
    fingerprinted_db_agent(mount, revoke, "")
}

fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.test")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.test")
        .output()
        .unwrap()
}

#[test]
fn a_committed_broker_password_is_refused_revoked_and_replaced_for_running_clients() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let agent = Agent::start_with_files(&config(&mount, true), &[("fp.key", &key)]);
    let served = agent.wait_served("db", Duration::from_secs(20));
    let (user, password) = (
        served["data"]["username"].as_str().unwrap().to_owned(),
        served["data"]["password"].as_str().unwrap().to_owned(),
    );
    let version = served["version"].as_u64().unwrap();
    stack.pg_login(&user, &password).expect("the served credentials log in");

    // A running service long-polls for the next version.
    let socket = agent.socket.clone();
    let watcher = std::thread::spawn(move || {
        let r = http::get(&socket, &format!("/v1/secrets/db?wait={version}&timeout=60s")).unwrap();
        (Instant::now(), r)
    });

    // A developer pastes the password into a config file and commits.
    let repo = tempfile::tempdir().unwrap();
    assert!(git(repo.path(), &["init", "-q"]).status.success());
    let report = repo.path().join("report.json");
    let incidents = repo.path().join("incidents.jsonl");
    let out = Command::new(bin("sidekey-scan"))
        .args(["install-hook", "--"])
        .args(["--verify", "--revoke", "--format", "json", "--no-progress"])
        .arg("--agent-socket")
        .arg(&agent.socket)
        .arg("--fingerprint-key-file")
        .arg(agent.path("fp.key"))
        .arg("--output")
        .arg(&report)
        .arg("--incident-log")
        .arg(&incidents)
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(
        repo.path().join("settings.ini"),
        format!("[database]\nhost = db.internal\nuser = {user}\nsecret_word = {password}\n"),
    )
    .unwrap();
    assert!(git(repo.path(), &["add", "settings.ini"]).status.success());
    let commit = git(repo.path(), &["commit", "-q", "-m", "add settings"]);
    let scan_exit = Instant::now();
    let hook_said = format!(
        "{}{}\nreport: {}\nincidents: {}",
        String::from_utf8_lossy(&commit.stdout),
        String::from_utf8_lossy(&commit.stderr),
        std::fs::read_to_string(&report).unwrap_or_default(),
        std::fs::read_to_string(&incidents).unwrap_or_default()
    );
    assert!(!commit.status.success(), "the hook refuses the commit: {hook_said}");

    // The old credentials stop working, and the watcher gets new ones.
    let refused_at = eventually(Duration::from_secs(10), "the leaked login refused", || {
        stack.pg_login(&user, &password).is_err().then(Instant::now)
    });
    let (served_at, answer) = watcher.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let fresh = answer.json();
    assert!(fresh["version"].as_u64().unwrap() > version);
    let (new_user, new_password) = (
        fresh["data"]["username"].as_str().unwrap().to_owned(),
        fresh["data"]["password"].as_str().unwrap().to_owned(),
    );
    stack
        .pg_login(&new_user, &new_password)
        .expect("the re-issued credentials log in");
    // Both can happen before the hook exits (it revokes before it reports): then 0.
    let to_refused = refused_at.saturating_duration_since(scan_exit);
    let to_served = served_at.saturating_duration_since(scan_exit);
    let early = scan_exit.saturating_duration_since(served_at);
    println!(
        "leak loop: scan exit -> old login refused {to_refused:?} (first check after exit); \
         -> new credential served {to_served:?} (it reached the long-polling client {early:?} before the scan exited)"
    );
    assert!(
        to_refused <= Duration::from_secs(1),
        "old login still worked {to_refused:?} after the scan"
    );
    assert!(
        to_served <= Duration::from_secs(2),
        "new credential served {to_served:?} after the scan"
    );

    // The report and the incident say what happened, without the value.
    let report_text = std::fs::read_to_string(&report).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    let owned = crate::support::owned_findings(&report, "db");
    assert_eq!(owned.len(), 1, "{report:#}");
    assert_eq!(
        (owned[0]["revoked"].as_bool(), owned[0]["verified"].as_str()),
        (Some(true), Some("true"))
    );
    let incident_text = std::fs::read_to_string(&incidents).unwrap();
    let incident: serde_json::Value = serde_json::from_str(incident_text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (incident["action"].as_str(), incident["revoked"].as_bool()),
        (Some("revoked_lease"), Some(true))
    );
    assert_eq!(incident["path"], "settings.ini");
    for text in [&report_text, &incident_text] {
        assert!(!text.contains(&password), "no value in reports or incidents");
    }
    let audit = std::fs::read_to_string(agent.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"event\":\"revoke\""), "{audit}");
    assert!(!audit.contains(&password) && !audit.contains(&new_password));

    // A responder revokes by value from stdin; the agent re-issues again, and a long-poll
    // waiter has the new version within 100 ms of the re-issue (here: before the answer).
    let socket = agent.socket.clone();
    let fresh_version = fresh["version"].as_u64().unwrap();
    let waiter = std::thread::spawn(move || {
        let r = http::get(&socket, &format!("/v1/secrets/db?wait={fresh_version}&timeout=60s")).unwrap();
        (Instant::now(), r.status)
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut child = Command::new(bin("sidekey-agent"))
        .args(["revoke", "--value-stdin", "--socket"])
        .arg(&agent.socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{new_password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let answered = Instant::now();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (woke, status) = waiter.join().unwrap();
    assert_eq!(status, 200);
    println!(
        "leak loop: the long-poll waiter woke {:?} before `sidekey-agent revoke` had its answer",
        answered.saturating_duration_since(woke)
    );
    assert!(woke <= answered + Duration::from_millis(100), "the waiter woke late");
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (said["secret"].as_str(), said["revoked"].as_bool()),
        (Some("db"), Some(true))
    );
    assert!(stack.pg_login(&new_user, &new_password).is_err(), "revoked by value");
    assert!(agent.get("db")["version"].as_u64().unwrap() > fresh["version"].as_u64().unwrap());
}

#[test]
fn revoking_needs_a_grant_and_unrevocable_secrets_say_so() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let agent = Agent::start_with_files(&config(&mount, false), &[("fp.key", &key)]);
    let served = agent.wait_served("db", Duration::from_secs(20));
    let r = http::post(&agent.socket, "/v1/revoke", "{\"secret\": \"db\"}").unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("revoke = true"), "{}", r.body);
    let user = served["data"]["username"].as_str().unwrap();
    let password = served["data"]["password"].as_str().unwrap();
    stack
        .pg_login(user, password)
        .expect("still valid: nothing was revoked");
    eventually(Duration::from_secs(5), "the refusal audited", || {
        let audit = std::fs::read_to_string(agent.path("audit.jsonl")).unwrap_or_default();
        audit.contains("revoke = true").then_some(())
    });
    let r = http::post(&agent.socket, "/v1/revoke", "{\"secret\": \"db\", \"value\": \"x\"}").unwrap();
    assert_eq!(r.status, 400, "{}", r.body);

    // A local static value cannot be revoked at a source sidekey controls: it says so.
    let config = format!(
        "{}\n[secrets.smtp]\nbackend = \"dev\"\nkind = \"local.static\"\n\n[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n[[access]]\nuid = \"self\"\nsecrets = [\"*\"]\nrevoke = true\n",
        crate::support::LOCAL_DEV
    );
    let local = Agent::prepare(&config);
    let status = Command::new(bin("sidekey-agent"))
        .args(["store", "set", "--config"])
        .arg(local.path("agent.toml"))
        .arg("smtp")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"{\"password\": \"static-secret-value\"}")?;
            c.wait()
        })
        .unwrap();
    assert!(status.success());
    let local = local.launch();
    local.wait_served("smtp", Duration::from_secs(20));
    let r = http::post(&local.socket, "/v1/revoke", "{\"secret\": \"smtp\"}").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(
        (answer["action"].as_str(), answer["revoked"].as_bool()),
        (Some("not_revocable"), Some(false))
    );
    assert!(
        answer["detail"].as_str().unwrap().contains("rotate it there"),
        "{answer}"
    );

    // A generated value is regenerated at once, long before its rotate_every.
    let before = local.wait_served("session", Duration::from_secs(20));
    let r = http::post(&local.socket, "/v1/revoke", "{\"secret\": \"session\"}").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"], "regenerated", "{}", r.body);
    let after = local.get("session");
    assert_ne!(after["data"]["value"], before["data"]["value"]);
    assert!(after["version"].as_u64() > before["version"].as_u64());
    let values = [&before, &after].map(|v| v["data"]["value"].as_str().unwrap().to_owned());
    local.assert_never_leaked(&values);
}

#[test]
fn a_revoked_certificate_goes_on_the_crl_and_a_new_one_is_served() {
    let stack = Stack::get();
    let mount = stack.pki_engine();
    let config = format!(
        r#"{VAULT_ROOT}
[secrets.cert]
backend = "vault"
kind = "vault.pki"
mount = "{mount}"
role = "web"
common_name = "app.internal"
ttl = "1h"

[[access]]
uid = "self"
secrets = ["cert"]
revoke = true
"#
    );
    let agent = Agent::start(&config);
    let first = agent.wait_served("cert", Duration::from_secs(20));
    let serial = first["data"]["serial_number"].as_str().unwrap().to_owned();
    let r = http::post(&agent.socket, "/v1/revoke", "{\"secret\": \"cert\"}").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(
        (answer["action"].as_str(), answer["revoked"].as_bool()),
        (Some("revoked_certificate"), Some(true))
    );
    let cert = stack.vault_read(&format!("{mount}/cert/{serial}"));
    assert!(cert["data"]["revocation_time"].as_i64().unwrap_or(0) > 0, "{cert}");
    let second = agent.get("cert");
    assert_ne!(second["data"]["serial_number"].as_str(), Some(serial.as_str()));
    assert!(second["version"].as_u64() > first["version"].as_u64());
}

#[test]
fn revoking_an_sts_secret_denies_the_roles_older_sessions_and_reassumes() {
    use crate::support::aws::boto;
    let stack = Stack::get();
    let role = crate::support::unique("leaky-role");
    let arn = boto(&format!(
        "iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name=REGION)\n\
         doc = json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Principal': {{'AWS': '*'}}, 'Action': 'sts:AssumeRole'}}]}})\n\
         print(iam.create_role(RoleName='{role}', AssumeRolePolicyDocument=doc)['Role']['Arn'])"
    ));
    let config = format!(
        r#"[backends.aws]
type = "aws"
region = "us-east-1"
endpoint_url = {:?}

[secrets.deploy]
backend = "aws"
kind = "aws.sts"
role_arn = "{arn}"
duration = "1h"

[[access]]
uid = "self"
secrets = ["deploy"]
revoke = true
"#,
        stack.aws_endpoint
    );
    let agent = Agent::start(&config);
    let first = agent.wait_served("deploy", Duration::from_secs(20));
    let r = http::post(&agent.socket, "/v1/revoke", "{\"secret\": \"deploy\"}").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(
        (answer["action"].as_str(), answer["revoked"].as_bool()),
        (Some("revoked_sessions"), Some(true)),
        "{answer}"
    );
    let policy = boto(&format!(
        "iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name=REGION)\n\
         print(json.dumps(iam.get_role_policy(RoleName='{role}', PolicyName='AWSRevokeOlderSessions')['PolicyDocument']))"
    ));
    assert!(
        policy.contains("aws:TokenIssueTime") && policy.contains("Deny"),
        "{policy}"
    );
    let second = agent.get("deploy");
    assert_ne!(
        second["data"]["access_key_id"], first["data"]["access_key_id"],
        "re-assumed"
    );
}
