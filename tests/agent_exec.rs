//! `sidekey-agent exec` (issue 15): an app that reads its credentials from environment
//! variables, run beside a real agent with only the socket between them. The command is a
//! small shell script that writes the variable it was given into a file (so the value is never
//! on a command line) and records its pid, the signals it gets and its stops; the tests revoke
//! the secret with `sidekey-agent revoke` as a responder would.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::support::{bin, eventually, Agent, LOCAL_DEV};

/// An agent with one `local.generated` secret `s` (revocable by its own uid: a revocation
/// regenerates it, a new version) and one, `hidden`, that no rule grants; the rule's `s*`
/// also covers names that are not configured (an unknown one: 404, not 403).
fn agent() -> Agent {
    Agent::start(&format!(
        "{LOCAL_DEV}\n[secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n\
         [secrets.hidden]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"s*\"]\nrevoke = true\n"
    ))
}

/// The app: writes `$APP_SECRET` to `$OUT/value.PID`, then its pid to `$OUT/pids`; records
/// SIGHUP in `$OUT/hups` and SIGTERM in `$OUT/terms` (then exits 0).
const APP: &str = r#"#!/bin/sh
printf '%s' "$APP_SECRET" > "$OUT/value.$$"
trap 'echo $$ >> "$OUT/hups"' HUP
trap 'echo $$ >> "$OUT/terms"; exit 0' TERM
echo $$ >> "$OUT/pids"
while :; do sleep 0.1; done
"#;

/// A running `sidekey-agent exec` and the directory its command writes into.
struct Exec {
    process: Option<Child>,
    out: tempfile::TempDir,
}

impl Exec {
    /// `sidekey-agent exec --socket SOCKET ARGS -- COMMAND`, with `OUT` set for the command;
    /// `@APP@` in COMMAND is the app script (written into `OUT`).
    fn start(socket: &Path, args: &[&str], command: &[&str]) -> Exec {
        let out = tempfile::tempdir().unwrap();
        let app = out.path().join("app.sh");
        fs::write(&app, APP).unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
        let stderr = fs::File::create(out.path().join("exec.stderr")).unwrap();
        let process = Command::new(bin("sidekey-agent"))
            .arg("exec")
            .arg("--socket")
            .arg(socket)
            .args(args)
            .arg("--")
            .args(
                command
                    .iter()
                    .map(|a| if *a == "@APP@" { app.as_os_str() } else { a.as_ref() }),
            )
            .env("OUT", out.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Exec {
            process: Some(process),
            out,
        }
    }

    /// `exec` running the app with `APP_SECRET` from `spec`, and `args` more.
    fn app(socket: &Path, spec: &str, args: &[&str]) -> Exec {
        let env = format!("APP_SECRET={spec}");
        let mut all = vec!["--env", env.as_str()];
        all.extend_from_slice(args);
        Exec::start(socket, &all, &["@APP@"])
    }

    fn path(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    fn pid(&self) -> u32 {
        self.process.as_ref().unwrap().id()
    }

    /// The pids the app recorded, in start order.
    fn pids(&self) -> Vec<u32> {
        lines(&self.path("pids"))
    }

    /// Waits for the `n`th start of the app; answers its pid.
    fn started(&self, n: usize, timeout: Duration) -> u32 {
        eventually(timeout, &format!("start number {n} of the app"), || {
            self.pids().get(n - 1).copied()
        })
    }

    /// What the app with `pid` found in `APP_SECRET`.
    fn value(&self, pid: u32) -> String {
        fs::read_to_string(self.path(&format!("value.{pid}"))).unwrap()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("exec.stderr")).unwrap_or_default()
    }

    /// Waits for `exec` to exit.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let process = self.process.as_mut().unwrap();
        let status = eventually(timeout, "exec to exit", || process.try_wait().unwrap());
        self.process = None;
        status
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        // Nothing outlives the test: exec, and every group the app ran in.
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
        for pid in self.pids() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        if std::thread::panicking() {
            eprintln!("--- exec stderr ---\n{}", self.stderr());
        }
    }
}

fn lines(path: &Path) -> Vec<u32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The NUL-separated text of `/proc/PID/FILE` (cmdline, environ).
fn proc_text(pid: u32, file: &str) -> String {
    String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default()).into_owned()
}

fn served_value(agent: &Agent, version: u64) -> String {
    let served = eventually(Duration::from_secs(10), &format!("version {version} of s"), || {
        let r = agent.http("/v1/secrets/s");
        (r.status == 200 && r.json()["version"].as_u64() == Some(version)).then(|| r.json())
    });
    served["data"]["value"].as_str().unwrap().to_owned()
}

#[test]
fn the_app_gets_the_value_in_its_environment_and_is_restarted_with_the_new_one() {
    let agent = agent();
    let first = served_value(&agent, 1);
    let exec = Exec::app(&agent.socket, "s", &[]);
    let pid = exec.started(1, Duration::from_secs(10));
    assert_eq!(exec.value(pid), first, "VAR=SECRET: a one-field secret's value");
    // The value is in the app's environment and nowhere else: not in exec's, nor on either
    // command line.
    assert!(proc_text(pid, "environ").contains(&format!("APP_SECRET={first}")));
    for (who, p) in [("exec", exec.pid()), ("the app", pid)] {
        assert!(
            !proc_text(p, "cmdline").contains(&first),
            "the value is on {who}'s command line"
        );
    }
    assert!(!proc_text(exec.pid(), "environ").contains(&first));

    let revoked = Instant::now();
    let out = agent.cli(&["revoke", "--secret", "s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = served_value(&agent, 2);
    assert_ne!(second, first);
    let new_pid = exec.started(2, Duration::from_secs(5));
    let lag = revoked.elapsed();
    assert_eq!(exec.value(new_pid), second, "restarted with the new value");
    assert_ne!(new_pid, pid);
    assert_eq!(
        lines(&exec.path("terms")),
        [pid],
        "the old app was stopped with SIGTERM"
    );
    eventually(Duration::from_secs(2), "the old app's pid to be gone", || {
        (!alive(pid)).then_some(())
    });
    println!("restarted with the new value {lag:?} after the revocation");
    assert!(lag < Duration::from_secs(2), "restarted within 2 s: {lag:?}");

    let stderr = exec.stderr();
    assert!(
        stderr.contains("secret s changed (version 1 → 2): restarting"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&first) && !stderr.contains(&second),
        "a value in exec's stderr"
    );
    agent.assert_never_leaked(&[first, second]);
}

#[test]
fn on_change_signal_keeps_the_same_app_and_sends_it_the_signal() {
    let agent = agent();
    let first = served_value(&agent, 1);
    let exec = Exec::app(&agent.socket, "s.value", &["--on-change", "signal=HUP"]);
    let pid = exec.started(1, Duration::from_secs(10));
    assert_eq!(exec.value(pid), first, "VAR=SECRET.FIELD");

    assert!(agent.cli(&["revoke", "--secret", "s"]).status.success());
    served_value(&agent, 2);
    eventually(Duration::from_secs(5), "the app to record SIGHUP", || {
        (lines(&exec.path("hups")) == [pid]).then_some(())
    });
    assert_eq!(exec.pids(), [pid], "the same app, not restarted");
    assert!(alive(pid));
    assert_eq!(exec.value(pid), first, "its environment keeps what it started with");
    assert!(exec.stderr().contains("sending SIGHUP"), "{}", exec.stderr());
}

#[test]
fn exit_statuses_pass_through_and_a_kill_by_signal_is_128_plus_n() {
    let agent = agent();
    agent.wait_served("s", Duration::from_secs(20));
    for (command, code) in [
        ("exit 7", 7),
        ("exit 0", 0),
        ("kill -KILL $$", 137),
        ("kill -USR1 $$", 138),
    ] {
        let mut exec = Exec::start(&agent.socket, &["--env", "X=s"], &["/bin/sh", "-c", command]);
        let status = exec.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(code), "{command}: {}", exec.stderr());
    }
}

#[test]
fn sigterm_to_exec_reaches_the_app_and_exec_exits_with_its_status() {
    let agent = agent();
    agent.wait_served("s", Duration::from_secs(20));

    // The app traps SIGTERM and exits 0.
    let mut exec = Exec::app(&agent.socket, "s", &[]);
    let pid = exec.started(1, Duration::from_secs(10));
    kill(Pid::from_raw(exec.pid() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(exec.wait(Duration::from_secs(5)).code(), Some(0));
    assert_eq!(lines(&exec.path("terms")), [pid]);
    assert!(!alive(pid));

    // One that does not trap it dies of it: 128 + 15.
    let mut exec = Exec::start(
        &agent.socket,
        &["--env", "X=s"],
        &["/bin/sh", "-c", "echo $$ > \"$OUT/pids\"; exec sleep 30"],
    );
    let pid = exec.started(1, Duration::from_secs(10));
    kill(Pid::from_raw(exec.pid() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(exec.wait(Duration::from_secs(5)).code(), Some(143));
    assert!(!alive(pid));
}

#[test]
fn a_missing_secret_field_grant_or_agent_is_named_and_nothing_is_started() {
    let agent = agent();
    agent.wait_served("s", Duration::from_secs(20));
    let no_agent = agent.path("no-agent.sock");
    let cases: [(&Path, &str, &[&str]); 4] = [
        (&agent.socket, "X=stale", &["secret stale", "no secret named \"stale\""]),
        (
            &agent.socket,
            "X=s.passwrd",
            &["X: secret s has no field \"passwrd\"", "(it has: value)"],
        ),
        (
            &agent.socket,
            "X=hidden",
            &[
                "secret hidden",
                "no [[access]] rule grants this caller secret \"hidden\"",
            ],
        ),
        (
            &no_agent,
            "X=s",
            &["cannot connect to the agent at", no_agent.to_str().unwrap()],
        ),
    ];
    for (socket, env, words) in cases {
        let mut exec = Exec::start(socket, &["--env", env], &["/bin/sh", "-c", "touch \"$OUT/started\""]);
        let status = exec.wait(Duration::from_secs(10));
        let stderr = exec.stderr();
        assert_eq!(status.code(), Some(1), "{env}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{env}: {word:?} not in {stderr:?}");
        }
        assert!(stderr.contains("nothing was started"), "{stderr}");
        assert!(!exec.path("started").exists(), "{env}: the command ran");
    }
    // A bad variable name is a usage error (2), found before the agent is asked.
    for args in [&["--env", "1X=s"][..], &["--env", "X=s", "--env", "X=s"]] {
        let mut exec = Exec::start(&agent.socket, args, &["/bin/sh", "-c", "touch \"$OUT/started\""]);
        assert_eq!(
            exec.wait(Duration::from_secs(10)).code(),
            Some(2),
            "{args:?}: {}",
            exec.stderr()
        );
        assert!(!exec.path("started").exists());
    }
}

#[test]
fn the_app_keeps_running_through_an_agent_outage_and_exec_resumes_watching() {
    let mut agent = agent();
    let first = served_value(&agent, 1);
    let exec = Exec::app(&agent.socket, "s", &[]);
    let pid = exec.started(1, Duration::from_secs(10));

    assert!(agent.stop().success());
    let said = eventually(Duration::from_secs(10), "exec to say it is retrying", || {
        let stderr = exec.stderr();
        stderr.contains("retrying").then_some(stderr)
    });
    assert!(said.contains("keeps running with the values it has"), "{said}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(pid), "the app keeps running while the agent is away");
    assert_eq!(exec.pids(), [pid]);
    assert_eq!(
        exec.stderr().matches("retrying").count(),
        1,
        "said once per outage:\n{}",
        exec.stderr()
    );

    let agent = agent.launch();
    eventually(Duration::from_secs(20), "exec to say the agent is back", || {
        exec.stderr().contains("answers again").then_some(())
    });
    assert_eq!(
        exec.pids(),
        [pid],
        "the same value after the restart: no restart of the app"
    );
    // Watching again: a revocation restarts the app with the new value.
    let version = agent.get("s")["version"].as_u64().unwrap();
    assert!(agent.cli(&["revoke", "--secret", "s"]).status.success());
    let second = served_value(&agent, version + 1);
    let new_pid = exec.started(2, Duration::from_secs(5));
    assert_eq!(exec.value(new_pid), second);
    assert_ne!(second, first);
}
