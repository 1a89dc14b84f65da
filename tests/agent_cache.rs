//! The encrypted cache (issue 6, item 1): after a restart the agent serves the cached
//! credential at once (the time is printed) — the same lease, no new one — also while OpenBao is unreachable; the
//! file is 0600 and holds no value in the clear; a tampered cache is reported and ignored, and
//! fresh credentials are fetched.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::agent_outage::Bao;
use crate::support::{aws::free_port, Agent, Stack};

#[test]
fn a_restart_serves_the_cached_lease_at_once_even_with_vault_down() {
    let port = free_port();
    let token = format!("root-{}", crate::support::unique("c"));
    let private = Stack {
        vault_addr: format!("http://127.0.0.1:{port}"),
        vault_token: token.clone(),
        ..Stack::get().clone()
    };
    let mount = "db-cached";
    let bao = Bao::start(port, &token);
    private.database_engine_at(mount, "1h", "2h");
    let config = format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ncache = \"@DIR@/cache.bin\"\ncache_key_file = \"@DIR@/cache.key\"\n\n\
         [backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:{port}\"\nauth = {{ method = \"token\", token_file = \"@DIR@/private-token\" }}\n\n\
         [secrets.db]\nbackend = \"vault\"\nkind = \"vault.database\"\nmount = \"{mount}\"\nrole = \"app\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\"]\n"
    );
    let mut agent = Agent::start_with_files(
        &config,
        &[
            ("private-token", &token),
            ("cache.key", "a passphrase for the test cache"),
        ],
    );
    let first = agent.wait_served("db", Duration::from_secs(20));
    let lease = first["lease"]["id"].as_str().unwrap().to_owned();
    let password = first["data"]["password"].as_str().unwrap().to_owned();
    assert!(agent.stop().success());

    let cache = std::fs::read(agent.path("cache.bin")).expect("written");
    assert_eq!(
        std::fs::metadata(agent.path("cache.bin")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !String::from_utf8_lossy(&cache).contains(&password),
        "sealed, not in the clear"
    );

    // Restart: the same lease, served within 1 s.
    let started = Instant::now();
    let mut agent = agent.launch();
    let again = agent.wait_served("db", Duration::from_secs(5));
    let took = started.elapsed();
    assert_eq!(again["lease"]["id"], lease.as_str(), "the same lease, no new one");
    assert_eq!(again["version"], first["version"]);
    // Timing is reported, not asserted (a loaded debug build is no measure of the target).
    println!("cache: served {took:?} after the restart");
    assert!(agent.stop().success());

    // Restart with OpenBao down: still served from the cache at once.
    bao.kill();
    let started = Instant::now();
    let mut agent = agent.launch();
    let down = agent.wait_served("db", Duration::from_secs(5));
    assert_eq!(down["lease"]["id"], lease.as_str());
    println!(
        "cache: served {:?} after a restart with OpenBao down",
        started.elapsed()
    );
    assert!(agent.stop().success());

    // A tampered cache is reported, ignored, and fresh credentials are fetched.
    let _bao = Bao::start(port, &token);
    private.database_engine_at(mount, "1h", "2h");
    let mut bytes = std::fs::read(agent.path("cache.bin")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(agent.path("cache.bin"), &bytes).unwrap();
    let agent = agent.launch();
    let fresh = agent.wait_served("db", Duration::from_secs(20));
    assert_ne!(
        fresh["lease"]["id"],
        lease.as_str(),
        "fresh credentials, not the tampered cache"
    );
    assert!(agent.stderr().contains("fails authentication"), "{}", agent.stderr());
}
