//! What a scan reads (issue 16): `--exclude GLOB` and `.sidekeyignore` (gitignore syntax) leave
//! paths out in a directory walk and in history, archive members with their archive; `-` and
//! `/dev/stdin` scan standard input (a pipe is read, not skipped as a FIFO).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use rand::SeedableRng as _;
use sidekey_scanner::rules::examples::expand;

use crate::support::{bin, scan_output};

fn token(seed: u64) -> String {
    expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

/// `sidekey-scan ARGS --format json` in `dir` with `stdin` on standard input: the exit code
/// and the paths of the findings, sorted (none when it printed no report).
fn found(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, Vec<String>) {
    let mut child = Command::new(bin("sidekey-scan"))
        .args(args)
        .args(["--format", "json", "--no-progress"])
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    if out.stdout.is_empty() {
        return (out.status.code().unwrap(), Vec::new());
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut paths: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    (out.status.code().unwrap(), paths)
}

fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

#[test]
fn exclude_globs_and_sidekeyignore_leave_paths_out_of_walks_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "src/app.env", &format!("GITHUB_TOKEN={}\n", token(1)));
    write(d, "build/out.env", &format!("GITHUB_TOKEN={}\n", token(2)));
    write(d, "web/app.min.js", &format!("var t=\"{}\";\n", token(3)));
    {
        let zip = std::fs::File::create(d.join("bundle.zip")).unwrap();
        let mut zip = zip::ZipWriter::new(zip);
        zip.start_file("inner.env", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(format!("GITHUB_TOKEN={}\n", token(4)).as_bytes())
            .unwrap();
        zip.finish().unwrap();
    }
    let all: Vec<String> = ["build/out.env", "bundle.zip!inner.env", "src/app.env", "web/app.min.js"]
        .map(str::to_owned)
        .into();
    assert_eq!(found(d, &["."], None), (1, all));
    assert_eq!(
        found(
            d,
            &[
                ".",
                "--exclude",
                "build/",
                "--exclude",
                "*.min.js",
                "--exclude",
                "*.zip"
            ],
            None
        ),
        (1, vec!["src/app.env".to_owned()])
    );
    std::fs::write(d.join(".sidekeyignore"), "# generated\nbuild/\n*.zip\n").unwrap();
    assert_eq!(
        found(d, &["."], None),
        (1, vec!["src/app.env".to_owned(), "web/app.min.js".to_owned()])
    );
    assert_eq!(
        found(d, &[".", "--exclude", "src/", "--exclude", "web/"], None),
        (0, vec![])
    );
    let (code, _) = found(d, &[".", "--exclude", "{a,b"], None);
    assert_eq!(code, 2, "a bad glob is an error");

    // History: the same patterns, from the repository's .sidekeyignore and --exclude.
    let git = |args: &[&str]| {
        let out = crate::support::git::isolated("git", d).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "all"]);
    assert_eq!(
        found(d, &["--git"], None),
        (1, vec!["src/app.env".to_owned(), "web/app.min.js".to_owned()])
    );
    assert_eq!(
        found(d, &["--git", "--exclude", "*.js"], None),
        (1, vec!["src/app.env".to_owned()])
    );
}

#[test]
fn dash_and_dev_stdin_scan_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let leaked = format!("export GITHUB_TOKEN={}\n", token(9));
    assert_eq!(
        found(dir.path(), &["-"], Some(&leaked)),
        (1, vec!["<stdin>".to_owned()])
    );
    assert_eq!(
        found(dir.path(), &["/dev/stdin"], Some(&leaked)),
        (1, vec!["<stdin>".to_owned()])
    );
    assert_eq!(found(dir.path(), &["-"], Some("nothing here\n")), (0, vec![]));
    // With paths: stdin and the files.
    write(dir.path(), "a.env", &format!("GITHUB_TOKEN={}\n", token(10)));
    assert_eq!(
        found(dir.path(), &["-", "a.env"], Some(&leaked)),
        (1, vec!["<stdin>".to_owned(), "a.env".to_owned()])
    );
}

#[test]
fn explain_says_why_each_candidate_was_dropped_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = token(11);
    // The same token with its checksum broken: a made-up token.
    let mut broken = live.clone();
    let last = broken.pop().unwrap();
    broken.push(if last == 'a' { 'b' } else { 'a' });
    write(
        dir.path(),
        "x.env",
        &format!("API_TOKEN=\"your_api_token_here\"\nGITHUB_TOKEN={broken}\nhmac_secret = \"000102030405060708090a0b0c0d0e0f\"\n"),
    );
    write(dir.path(), "vendor/lib/conf.py", "password = \"Xk2pQ9vL7mN4rT8w\"\n");
    let out = scan_output(dir.path(), &[".", "--explain", "--no-progress"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for said in [
        "explain: x.env:1: generic-token-assignment dropped your…: the rule's allowlist",
        "explain: x.env:2: github-pat dropped ghp_…: its checksum is not valid",
        "explain: x.env:3: generic-secret-assignment dropped 0001…: a test vector",
        "explain: vendor/lib/conf.py: generic rules are not run in vendored third-party code",
    ] {
        assert!(stderr.contains(said), "{said:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains(&broken) && !stderr.contains("Xk2pQ9vL"),
        "no candidate in full: {stderr}"
    );
    let quiet = scan_output(dir.path(), &[".", "--no-progress"], &[]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("explain:"));
}
