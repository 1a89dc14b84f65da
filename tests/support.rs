//! The e2e harness, so tests read like what a user does: `Stack::get()` for the running
//! services, `Agent::start(toml)` for a real agent in its own directory, `agent.get("db")`
//! over its socket, `eventually(..)` instead of sleeps.

#![allow(dead_code)]

pub mod agent;
pub mod aws;
pub mod git;
pub mod http;
pub mod stack;
pub mod tls;

pub use agent::{bin, fingerprinted_db_agent, vault_approle, Agent, GRANT_SELF, LOCAL_DEV, VAULT_ROOT};
pub use stack::{unique, PgServer, Stack};

use std::time::{Duration, Instant};

/// Polls `f` every 50 ms until it answers `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `program ARGS` in `dir` as a child of python3, which measures the child's peak RSS
/// (`getrusage(RUSAGE_CHILDREN).ru_maxrss`). Answers its output and the peak in bytes.
pub fn with_peak_rss(program: &std::path::Path, args: &[&str], dir: &std::path::Path) -> (std::process::Output, u64) {
    let script = "import resource, subprocess, sys\n\
                  code = subprocess.run(sys.argv[1:]).returncode\n\
                  sys.stderr.write('maxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  sys.exit(code)\n";
    let mut out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, kib) = stderr
        .rsplit_once("maxrss_kib=")
        .and_then(|(rest, v)| Some((rest, v.trim().parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("no maxrss line in:\n{stderr}"));
    out.stderr = rest.as_bytes().to_vec();
    (out, kib * 1024)
}

/// The paths of a `sidekey-scan` JSON report's findings, in report order.
pub fn finding_paths(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

/// The findings of a `sidekey-scan` JSON report that matched the broker's secret `name`.
pub fn owned_findings<'r>(report: &'r serde_json::Value, name: &str) -> Vec<&'r serde_json::Value> {
    report["findings"]
        .as_array()
        .map(|all| all.iter().filter(|f| f["owned_secret"] == name).collect())
        .unwrap_or_default()
}

/// Runs `sidekey-scan ARGS` in `dir` with `env` added; answers the exit code, the report read
/// from stdout as JSON (so ARGS ask for `--format json`) and stderr.
pub fn scan_json(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let out = scan_output(dir, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// Runs `sidekey-scan ARGS` in `dir` with `env` added, to its end.
pub fn scan_output(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(bin("sidekey-scan"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// [`scan_json`] with `--format json --no-progress` added to ARGS.
pub fn scan_report(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--format", "json", "--no-progress"])
        .collect();
    scan_json(dir, &args, env)
}

/// The one finding of a JSON report at `path` (panics, showing the report, unless exactly one).
pub fn one_finding<'r>(report: &'r serde_json::Value, path: &str) -> &'r serde_json::Value {
    let found: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path)
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    found[0]
}
