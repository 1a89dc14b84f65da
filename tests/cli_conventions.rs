//! What users of command-line tools look for, on both real binaries: `--version` naming the
//! commit, shell completions and manual pages generated from the same definition as `--help`
//! (`sidekey-agent completions SHELL` / `man`, `sidekey-scan --completions SHELL` / `--man`),
//! logs a pipeline can parse (`--log-format json`), and a Vault habit (`-config=FILE`) answered
//! with the form sidekey takes.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::agent::AGENT;
use crate::support::{bin, eventually, http, Agent, GRANT_SELF, LOCAL_DEV};

const GENERATED: &str = "[secrets.token]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

/// `NAME --version` and `-V`: "NAME 0.1.0 (abc1234 2026-12-06)", the commit one of this
/// repository's (tests run from a checkout; "unknown" only when git is missing).
fn assert_version_names_the_commit(name: &str) {
    let out = Command::new(bin(name)).arg("-V").output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let rest = line
        .trim_end()
        .strip_prefix(&format!("{name} {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let inside = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line}"));
    let git_here = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !git_here {
        assert_eq!(inside, "unknown", "{line}");
        return;
    }
    let (commit, date) = inside
        .split_once(' ')
        .unwrap_or_else(|| panic!("no commit date: {line}"));
    assert!(
        commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{line}"
    );
    assert_eq!(date.len(), "2026-12-06".len(), "{line}");
    let known = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .unwrap();
    assert!(known.success(), "{commit} is not a commit of this repository");

    let long = Command::new(bin(name)).arg("--version").output().unwrap();
    let long = String::from_utf8(long.stdout).unwrap();
    assert!(
        long.starts_with(line.trim_end()) && long.contains("\ntarget: "),
        "{long}"
    );
}

#[test]
fn version_names_the_commit_on_both_binaries() {
    assert_version_names_the_commit("sidekey-agent");
    assert_version_names_the_commit("sidekey-scan");
}

/// Runs a binary of this workspace; its stdout (it must succeed).
fn stdout_of(name: &str, args: &[&str]) -> String {
    let out = Command::new(bin(name)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn completions_cover_every_subcommand_in_every_shell() {
    for shell in SHELLS {
        let agent = stdout_of("sidekey-agent", &["completions", shell]);
        for sub in [
            "run",
            "check",
            "health",
            "get",
            "revoke",
            "exec",
            "aws-credential-process",
            "store",
            "hash-token",
            "completions",
            "man",
        ] {
            assert!(agent.contains(sub), "sidekey-agent completions {shell}: no {sub}");
        }
        for flag in ["log-format", "once", "timeout", "on-change", "grace"] {
            assert!(agent.contains(flag), "sidekey-agent completions {shell}: no --{flag}");
        }
        let scan = stdout_of("sidekey-scan", &["--completions", shell]);
        for word in ["install-hook", "staged", "artifact", "verify"] {
            assert!(scan.contains(word), "sidekey-scan --completions {shell}: no {word}");
        }
    }
    let bash = stdout_of("sidekey-agent", &["completions", "bash"]);
    assert!(bash.contains("complete -F") && bash.contains("sidekey-agent"), "{bash}");
}

/// A roff page that `man -l` renders (when man is installed) with its NAME and SYNOPSIS.
fn assert_man_page(roff: &str, name: &str) {
    assert!(roff.starts_with(".ie") || roff.starts_with(".TH"), "not roff: {roff}");
    assert!(roff.contains(&format!(".TH {name} 1")), "{roff}");
    assert!(roff.contains(".SH NAME") && roff.contains(".SH SYNOPSIS"), "{roff}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), roff).unwrap();
    let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(file.path())
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    else {
        return; // no man here: the checks above stand
    };
    assert!(out.status.success(), "man -l: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
}

#[test]
fn man_pages_are_roff_that_man_renders() {
    assert_man_page(&stdout_of("sidekey-agent", &["man"]), "sidekey-agent");
    assert_man_page(&stdout_of("sidekey-scan", &["--man"]), "sidekey-scan");

    let dir = tempfile::tempdir().unwrap();
    stdout_of("sidekey-agent", &["man", "--dir", &dir.path().display().to_string()]);
    for page in [
        "sidekey-agent",
        "sidekey-agent-run",
        "sidekey-agent-get",
        "sidekey-agent-health",
        "sidekey-agent-exec",
        "sidekey-agent-aws-credential-process",
        "sidekey-agent-store-set",
    ] {
        let roff =
            std::fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert_man_page(&roff, page);
    }
}

/// The generators are flags of sidekey-scan, whose operands are paths: a directory named
/// `completions` is scanned as before.
#[test]
fn sidekey_scan_completions_without_dashes_scans_a_directory_of_that_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("completions")).unwrap();
    let key = format!("AKIA{}", "QYLPMN5HFIQR7XCW");
    std::fs::write(
        dir.path().join("completions/aws.env"),
        format!("aws_access_key_id = \"{key}\"\n"),
    )
    .unwrap();
    let out = Command::new(bin("sidekey-scan"))
        .args(["completions", "--format", "json", "--no-progress"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["path"], "completions/aws.env", "{report}");
}

#[test]
fn a_vault_style_single_dash_option_is_a_usage_error_naming_the_two_dash_form() {
    let dir = tempfile::tempdir().unwrap();
    for (args, fix) in [
        (&["check", "-config=agent.toml"][..], "--config agent.toml"),
        (&["run", "-config", "agent.toml"][..], "--config"),
        (
            &["get", "db", "-socket=/run/sidekey/agent.sock"][..],
            "--socket /run/sidekey/agent.sock",
        ),
    ] {
        let out = Command::new(bin("sidekey-agent"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("'{fix}'")), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("onfig=agent.toml").exists());
}

/// The example in `store set --help` works with the config it names: that config defines the
/// secret, as a `local.static` one.
#[test]
fn the_store_set_example_names_a_secret_its_config_defines() {
    let help = stdout_of("sidekey-agent", &["store", "set", "--help"]);
    let words: Vec<&str> = help.split_whitespace().collect();
    let at = words
        .windows(3)
        .position(|w| w == ["sidekey-agent", "store", "set"])
        .unwrap_or_else(|| panic!("no example in:\n{help}"));
    let (config, name) = match &words[at + 3..] {
        ["-c" | "--config", config, name, ..] => (*config, *name),
        rest => panic!("the example is not `store set --config FILE NAME`: {rest:?}"),
    };
    let toml = std::fs::read_to_string(config).unwrap_or_else(|e| panic!("{config}: {e}"));
    let table = toml
        .split(&format!("[secrets.{name}]"))
        .nth(1)
        .unwrap_or_else(|| panic!("{config} defines no secrets.{name}"));
    let table = table.split("\n[").next().unwrap();
    assert!(
        table.contains(r#"kind = "local.static""#),
        "{config}: secrets.{name}: {table}"
    );
}

/// Every line is one JSON object with a timestamp, a level and a message.
fn assert_json_lines(stderr: &str) {
    assert!(!stderr.trim().is_empty(), "the agent logged nothing");
    for line in stderr.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
}

#[test]
fn log_format_json_writes_one_json_object_per_stderr_line() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        format!("{AGENT}\n{LOCAL_DEV}\n{GENERATED}\n{GRANT_SELF}").replace("@DIR@", &dir.path().display().to_string());
    std::fs::write(dir.path().join("agent.toml"), config).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = KillOnDrop(
        Command::new(bin("sidekey-agent"))
            .args(["run", "--config", "agent.toml", "--log-format", "json"])
            .current_dir(dir.path())
            .env("RUST_LOG", "info,sidekey_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let socket = dir.path().join("agent.sock");
    let answer = eventually(Duration::from_secs(20), "token served", || {
        if let Some(status) = child.0.try_wait().unwrap() {
            let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
            panic!("sidekey-agent exited with {status}:\n{logs}");
        }
        let r = http::get(&socket, "/v1/secrets/token").ok()?;
        (r.status == 200).then(|| r.json())
    });
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());

    let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert_json_lines(&logs);
    assert!(logs.contains("stopping"), "the stop is logged:\n{logs}");
    let value = answer["data"]["value"].as_str().unwrap();
    assert!(!logs.contains(value), "a secret value appeared in the logs");
}

#[test]
fn sidekey_log_format_in_the_environment_selects_json_too() {
    let agent = Agent::prepare(&format!("{LOCAL_DEV}\n{GENERATED}\n{GRANT_SELF}"))
        .launch_with_env(&[("SIDEKEY_LOG_FORMAT", "json")]);
    agent.wait_served("token", Duration::from_secs(20));
    assert_json_lines(&agent.stderr());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
