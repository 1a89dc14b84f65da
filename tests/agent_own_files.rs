//! The agent's own files under a hostile path (issue 13, item 13): the audit log, the sealed
//! cache and the local store are never opened through a symlink, never a FIFO or a device. A
//! FIFO as the audit log used to hang start-up with no log line, and `/dev/zero` as the cache
//! was read until memory ran out; now `run` refuses at once, naming the file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::bin;

/// Runs `sidekey-agent run` on `config` (`@DIR@` is the run's directory, prepared by `prepare`)
/// and answers its exit code and stderr; the agent must exit within 10 s.
fn run(config: &str, prepare: impl FnOnce(&Path)) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("agent.toml"), config.replace("@DIR@", &d.display().to_string())).unwrap();
    std::fs::write(d.join("cache.key"), "a passphrase for the test cache\n").unwrap();
    prepare(d);
    let mut child = Command::new(bin("sidekey-agent"))
        .args(["run", "--config", "agent.toml"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the agent neither served nor exited within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

fn config(agent_extra: &str) -> String {
    format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\n{agent_extra}\n{}\
         [secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{}",
        crate::support::LOCAL_DEV,
        crate::support::GRANT_SELF
    )
}

#[test]
fn a_fifo_as_the_audit_log_is_refused_at_once() {
    let (code, stderr) = run(&config(""), |d| {
        nix::unistd::mkfifo(&d.join("audit.jsonl"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    });
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("audit.jsonl") && stderr.contains("not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_symlinked_audit_log_is_refused_and_its_target_untouched() {
    let (code, stderr) = run(&config(""), |d| {
        std::fs::write(d.join("elsewhere"), "precious\n").unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("audit.jsonl")).unwrap();
    });
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("audit.jsonl") && stderr.contains("symbolic link"),
        "{stderr}"
    );
}

#[test]
fn dev_zero_as_the_cache_is_refused_without_reading_it() {
    let cache = "cache = \"@DIR@/cache.bin\"\ncache_key_file = \"@DIR@/cache.key\"\n";
    let (code, stderr) = run(&config(cache), |d| {
        std::os::unix::fs::symlink("/dev/zero", d.join("cache.bin")).unwrap();
    });
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("agent.cache") && stderr.contains("symbolic link"),
        "{stderr}"
    );
}
