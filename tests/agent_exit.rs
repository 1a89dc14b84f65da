//! A graceful stop and the process itself (issue 6, items 4 and 7 in part): with
//! `revoke_on_exit = true` the leases held are revoked at Vault, so a stopped agent's database
//! user no longer logs in (and without it, it still does until its TTL); the running agent
//! cannot dump core.

use std::time::Duration;

use crate::support::{Agent, Stack, VAULT_ROOT};

fn config(mount: &str, revoke_on_exit: bool) -> String {
    format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\nrevoke_on_exit = {revoke_on_exit}\n\n\
         {VAULT_ROOT}\n[secrets.db]\nbackend = \"vault\"\nkind = \"vault.database\"\nmount = \"{mount}\"\nrole = \"app\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\"]\n"
    )
}

#[test]
fn revoke_on_exit_revokes_the_leases_held_at_a_graceful_stop() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    for revoke in [true, false] {
        let mut agent = Agent::start(&config(&mount, revoke));
        let served = agent.wait_served("db", Duration::from_secs(20));
        let (user, password) = (
            served["data"]["username"].as_str().unwrap().to_owned(),
            served["data"]["password"].as_str().unwrap().to_owned(),
        );
        stack.pg_login(&user, &password).expect("served credentials log in");
        assert!(agent.stop().success());
        let login = stack.pg_login(&user, &password);
        if revoke {
            assert!(
                login.is_err(),
                "revoke_on_exit = true: the lease is revoked at the stop"
            );
            let audit = std::fs::read_to_string(agent.path("audit.jsonl")).unwrap();
            assert!(audit.contains("\"event\":\"revoke\""), "{audit}");
        } else {
            login.expect("revoke_on_exit = false: the credential lives until its TTL");
        }
    }
}

#[test]
fn the_agent_cannot_dump_core() {
    let agent = Agent::start(&format!(
        "{}\n[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{}",
        crate::support::LOCAL_DEV,
        crate::support::GRANT_SELF
    ));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", agent.pid())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    // Not dumpable: /proc/PID/status reports it through the process's own view only, so the
    // agent's code asks the kernel (prctl(PR_GET_DUMPABLE)) in its unit test; here, no core.
}

/// An agent serving one `local.generated` secret `s`, and the value it served.
fn generated_secret_agent() -> (Agent, String) {
    let agent = Agent::start(&format!(
        "{}\n[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{}",
        crate::support::LOCAL_DEV,
        crate::support::GRANT_SELF
    ));
    let value = agent.wait_served("s", Duration::from_secs(20))["data"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    (agent, value)
}

#[test]
#[should_panic(expected = "a secret value appeared")]
fn the_leak_search_every_test_ends_with_catches_a_value_in_the_audit_log() {
    // Every `Agent` searches its stderr, audit log and /metrics for the values it served when
    // it is dropped; this plants one to show the search can fail.
    let (agent, value) = generated_secret_agent();
    let mut audit = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(agent.path("audit.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut audit, format!("{{\"planted\":\"{value}\"}}\n").as_bytes()).unwrap();
}

#[test]
#[should_panic(expected = "a secret value appeared in the agent's rendered errors")]
fn the_leak_search_also_reads_the_errors_the_agent_rendered() {
    // An error answer that echoes what was asked: asking for a secret *named* like a served
    // value puts that value in the 404's message, which the search must find.
    let (agent, value) = generated_secret_agent();
    let r = agent.http(&format!("/v1/secrets/{value}"));
    assert!(r.status >= 400 && r.body.contains(&value), "{} {}", r.status, r.body);
}

#[test]
fn issue_13_a_long_poll_does_not_hold_up_the_stop() {
    // A client long-polling for five minutes: SIGTERM answers it at once (nothing changed) and
    // the agent exits well within systemd's stop timeout, its socket removed. Before, the agent
    // logged "stopped" after the drain but exited only when the long-poll ended.
    let (mut agent, _) = generated_secret_agent();
    let version = agent.get("s")["version"].as_u64().unwrap();
    let socket = agent.socket.clone();
    let poll = std::thread::spawn(move || {
        crate::support::http::get(&socket, &format!("/v1/secrets/s?wait={version}&timeout=300s"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = agent.stop();
    let took = started.elapsed();
    println!("SIGTERM to exit with a five-minute long-poll open: {took:?}");
    assert!(status.success(), "exit {status}");
    assert!(took < Duration::from_secs(5), "the stop took {took:?}");
    let answer = poll.join().unwrap().expect("the long-poll was answered");
    assert_eq!(answer.status, 304, "{}", answer.body);
    assert!(!agent.socket.exists(), "the socket is removed");
}

#[test]
fn issue_13_sighup_reopens_the_audit_log_and_the_agent_serves_on() {
    // logrotate's way: move the log aside, then SIGHUP. Before, SIGHUP killed the agent outright
    // (no drain, no revoke_on_exit, the socket left behind).
    use std::os::unix::fs::PermissionsExt;
    let (agent, _) = generated_secret_agent();
    let log = agent.path("audit.jsonl");
    let rotated = agent.path("audit.jsonl.1");
    crate::support::eventually(Duration::from_secs(5), "the first audit lines", || {
        std::fs::metadata(&log).ok().filter(|m| m.len() > 0)
    });
    std::fs::rename(&log, &rotated).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    crate::support::eventually(Duration::from_secs(5), "the reopened audit log", || {
        agent.stderr().contains("audit log reopened").then_some(())
    });
    assert_eq!(agent.get("s")["name"], "s", "still serving after SIGHUP");
    let lines = crate::support::eventually(Duration::from_secs(5), "a read in the new audit log", || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("\"read\"").then_some(text)
    });
    assert!(
        lines
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{lines}"
    );
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the new log is created 0600");
    assert!(
        std::fs::read_to_string(&rotated).unwrap().contains("\"issue\""),
        "what came before stays in the rotated file"
    );
}
