//! `sidekey-scan` against hostile input: a committed file name (or archive member name) holding
//! an escape sequence, a newline that forges a GitHub Actions `::error` line and a bidi
//! override reaches the human report and stderr escaped, never raw.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::SeedableRng;
use sidekey_scanner::rules::examples::expand;

use crate::support::bin;

/// A checksum-valid GitHub token made at run time.
fn token(seed: u64) -> String {
    expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

/// The hostile name: ESC `[31m`, a newline then `::error::pwned`, a right-to-left override.
const HOSTILE: &str = "a\x1b[31mred\n::error::pwned\u{202e}txt.env";
/// How the report shows it.
const ESCAPED: &str = r"a\x1b[31mred\n::error::pwned\u{202e}txt.env";

/// `git` in `dir`, isolated from the user's and the system's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Eve \x1b[2J")
        .env("GIT_AUTHOR_EMAIL", "eve@example.test")
        .env("GIT_COMMITTER_NAME", "Eve")
        .env("GIT_COMMITTER_EMAIL", "eve@example.test")
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
