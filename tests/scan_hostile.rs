//! `sidekey-scan` against hostile input: a committed file name (or archive member name) holding
//! an escape sequence, a newline that forges a GitHub Actions `::error` line and a bidi
//! override reaches the human report and stderr escaped, never raw; a `--git` revision that
//! looks like an option is refused (exit 2, naming it) and never reaches git; submodules,
//! which are not scanned, are reported as skipped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::SeedableRng;
use sidekey_scanner::rules::examples::expand;

use crate::support::bin;
use crate::support::git::isolated;

/// A checksum-valid GitHub token made at run time.
fn token(seed: u64) -> String {
    expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

/// The hostile name: ESC `[31m`, a newline then `::error::pwned`, a right-to-left override.
const HOSTILE: &str = "a\x1b[31mred\n::error::pwned\u{202e}txt.env";
/// How the report shows it.
const ESCAPED: &str = r"a\x1b[31mred\n::error::pwned\u{202e}txt.env";

/// `git` in `dir`, isolated from the user's and the system's configuration, by an author
/// whose name holds an escape sequence.
fn git(dir: &Path, args: &[&str]) -> String {
    // A hostile author name too.
    let out = isolated("git", dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Eve \x1b[2J")
        .env("GIT_AUTHOR_EMAIL", "eve@example.test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    (tmp, dir)
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("sidekey-scan"))
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

/// A zip holding one member.
fn zip(name: &str, text: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.write_all(text.as_bytes()).unwrap();
    writer.finish().unwrap().into_inner()
}

/// Neither stream holds a raw ESC, BEL or bidi override, nor a line a CI runner reads as a
/// workflow command.
fn assert_tame(what: &str, out: &Output) {
    assert_tame_stream(what, "stdout", &out.stdout);
    assert_tame_stream(what, "stderr", &out.stderr);
}

fn assert_tame_stream(what: &str, stream: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!bytes.contains(&0x1b), "{what}: raw ESC on {stream}: {text:?}");
    assert!(!bytes.contains(&0x07), "{what}: raw BEL on {stream}: {text:?}");
    assert!(
        !text.contains('\u{202e}'),
        "{what}: raw bidi override on {stream}: {text:?}"
    );
    assert!(
        text.lines().all(|l| !l.trim_start().starts_with("::")),
        "{what}: a workflow command line on {stream}: {text:?}"
    );
}

#[test]
fn hostile_file_and_member_names_are_escaped_in_human_output() {
    let (_tmp, dir) = repo();
    std::fs::write(dir.join(HOSTILE), format!("GITHUB_TOKEN={}\n", token(1))).unwrap();
    let member = "x\x1b]0;title\x07\n::warning::m.env";
    std::fs::write(dir.join("bundle.zip"), zip(member, &format!("T={}\n", token(2)))).unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "add"]);

    // Files, human report on stdout.
    let out = scan(&dir, &["."]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_tame("files", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{ESCAPED}:1:14")), "{stdout}");
    assert!(
        stdout.contains(r"bundle.zip!x\x1b]0;title\x07\n::warning::m.env:1:3"),
        "{stdout}"
    );

    // History, human report: the path and the author are escaped.
    let out = scan(&dir, &["--git"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_tame("--git", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{ESCAPED}:1:14")), "{stdout}");
    assert!(stdout.contains(r"by Eve \x1b[2J <eve@example.test>"), "{stdout}");

    // Readable names stay readable.
    std::fs::write(dir.join("café-日本.env"), format!("GITHUB_TOKEN={}\n", token(3))).unwrap();
    let out = scan(&dir, &["café-日本.env"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("café-日本.env:1:14"));
}

/// A repository with one commit and a gitlink (a submodule entry) at `path` staged in its
/// index (pointing at that commit).
fn repo_with_gitlink(path: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = repo();
    std::fs::write(dir.join("README"), "hello\n").unwrap();
    git(&dir, &["add", "README"]);
    git(&dir, &["commit", "-q", "-m", "start"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    let entry = format!("160000,{head},{path}");
    git(&dir, &["update-index", "--add", "--cacheinfo", &entry]);
    (tmp, dir)
}

#[test]
fn hostile_skipped_names_are_escaped_on_stderr() {
    // A submodule (gitlink) under the hostile name: skipped, and said so.
    let (_tmp, dir) = repo_with_gitlink(HOSTILE);
    git(&dir, &["commit", "-q", "-m", "submodule"]);

    let out = scan(&dir, &["--git", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The JSON report holds the exact name, its control characters JSON-escaped.
    assert_tame_stream("--git --format json", "stderr", &out.stderr);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        !json.contains('\x1b') && json.lines().all(|l| !l.starts_with("::")),
        "{json}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("sidekey-scan: not scanned {ESCAPED}: submodule")),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["skipped"][0]["path"], HOSTILE,
        "JSON keeps the name exact: {report:#}"
    );

    let out = scan(&dir, &["--git"]);
    assert_tame("--git human", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("not scanned {ESCAPED}: submodule")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn submodules_are_reported_as_skipped_in_history_and_staged_scans() {
    let (_tmp, dir) = repo_with_gitlink("vendor/lib");

    let out = scan(&dir, &["--staged", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped"][0]["path"], "vendor/lib", "{report:#}");

    git(&dir, &["commit", "-q", "-m", "vendor"]);
    let bumped = git(&dir, &["rev-parse", "HEAD"]);
    git(
        &dir,
        &["update-index", "--cacheinfo", &format!("160000,{bumped},vendor/lib")],
    );
    git(&dir, &["commit", "-q", "-m", "bump vendor"]);
    let out = scan(&dir, &["--git", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "each submodule once: {report:#}");
    assert_eq!(skipped[0]["path"], "vendor/lib");
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("not scanned"),
        "{report:#}"
    );
}

#[test]
fn a_revision_is_never_read_as_an_option() {
    let (tmp, dir) = repo();
    std::fs::write(dir.join("README"), "hello\n").unwrap();
    git(&dir, &["add", "README"]);
    git(&dir, &["commit", "-q", "-m", "start"]);
    let target = tmp.path().join("written-by-git");
    let word = format!("--output={}", target.display());

    for args in [
        vec![format!("--git={word}")],
        vec!["--git".into(), format!("HEAD {word}")],
        vec!["--git".into(), format!("HEAD^..HEAD {word}")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = scan(&dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{word:?}")),
            "{args:?} names the revision: {stderr}"
        );
        assert!(!target.exists(), "{args:?}: git wrote {}", target.display());
    }
    // Revisions that are not options still work.
    let out = scan(&dir, &["--git", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
