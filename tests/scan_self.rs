//! sidekey's own scanner passes on sidekey (issue 12, item 5): with the committed
//! `.sidekey-scan.toml` (gitleaks' global `[allowlist]`: the rules' examples, test fixtures,
//! fuzz seeds, and two fake values by pattern), `sidekey-scan` finds nothing in the committed
//! files nor in the history of HEAD — and without it the rule examples are reported, so it is
//! the file that makes the difference. A contributor installs the hook with that config and
//! commits freely; a commit the hook refuses says what to do next (issue 12, item 6).

use std::path::Path;
use std::process::Output;

use rand::SeedableRng;
use serde_json::Value;
use sidekey_scanner::rules::examples::expand;

use crate::support::git::isolated;
use crate::support::{bin, scan_report};

/// The repository this test belongs to.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `program ARGS` in `dir`, git isolated from the user's and the system's configuration.
fn run(program: &Path, dir: &Path, args: &[&str]) -> Output {
    isolated(program, dir).args(args).output().unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = run(Path::new("git"), dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `path:line ruleId` of each finding, for messages.
fn listed(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{} {}", f["path"], f["line"], f["ruleId"]))
        .collect()
}

#[test]
fn the_repository_scans_clean_with_its_committed_allowlist() {
    let files: Vec<String> = git(root(), &["ls-files", "-z"])
        .split('\0')
        .filter(|f| !f.is_empty() && root().join(f).is_file())
        .map(str::to_owned)
        .collect();
    assert!(
        files.iter().any(|f| f == ".sidekey-scan.toml"),
        "the allowlist is committed"
    );
    let files: Vec<&str> = files.iter().map(String::as_str).collect();

    let with: Vec<&str> = ["--config", ".sidekey-scan.toml"]
        .into_iter()
        .chain(files.iter().copied())
        .collect();
    let (code, report, stderr) = scan_report(root(), &with, &[]);
    assert_eq!((code, listed(&report)), (0, vec![]), "the committed files: {stderr}");

    let (code, report, _) = scan_report(root(), &files, &[]);
    assert_eq!(code, 1, "without the allowlist the rule examples are found");
    assert!(
        listed(&report).iter().any(|f| f.contains("config/rules.toml")),
        "{report:#}"
    );

    let (code, report, stderr) = scan_report(root(), &["--config", ".sidekey-scan.toml", "--git", "HEAD"], &[]);
    assert_eq!((code, listed(&report)), (0, vec![]), "the history of HEAD: {stderr}");
}

#[test]
fn the_hook_with_the_allowlist_passes_fixtures_and_a_refusal_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    std::fs::copy(root().join(".sidekey-scan.toml"), dir.join(".sidekey-scan.toml")).unwrap();
    git(&dir, &["add", ".sidekey-scan.toml"]);
    git(&dir, &["commit", "-q", "-m", "scanner settings"]);
    let out = run(
        &bin("sidekey-scan"),
        &dir,
        &["install-hook", "--", "--config", ".sidekey-scan.toml"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let token = expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(12)).unwrap();
    // A fixture under tests/ is committed.
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(dir.join("tests/fixture.env"), format!("TOKEN={token}\n")).unwrap();
    git(&dir, &["add", "tests/fixture.env"]);
    git(&dir, &["commit", "-q", "-m", "a fixture"]);

    // The same token elsewhere is refused, and the hook's output says what to do next.
    std::fs::write(dir.join("app.env"), format!("TOKEN={token}\n")).unwrap();
    git(&dir, &["add", "app.env"]);
    let refused = run(Path::new("git"), &dir, &["commit", "-q", "-m", "app env"]);
    assert!(!refused.status.success(), "the hook refuses the commit");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    for next in [
        "github-pat",
        "app.env",
        "the commit was refused",
        "sidekey:allow",
        "--baseline",
        "sidekey-scan --verify --revoke",
        "sidekey-agent revoke",
        "git commit --no-verify",
    ] {
        assert!(said.contains(next), "{next:?} in: {said}");
    }
    assert!(!said.contains(&token), "redacted: {said}");
}
