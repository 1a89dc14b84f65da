//! `sidekey-scan --git`, `--staged`, `--pre-push` and `install-hook` against real git
//! repositories: a secret deleted from the tree is still found in history with the commit that
//! introduced it; the pre-commit hook refuses a staged secret and ignores an unstaged one; the
//! pre-push hook refuses a push; the pre-commit framework runs `.pre-commit-hooks.yaml`; a
//! corrupt object is an error that names it.

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

/// `git` in `dir`, isolated from the user's and the system's configuration.
fn git_cmd(dir: &Path) -> Command {
    isolated("git", dir)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    std::fs::create_dir(&path).unwrap();
    git(&path, &["init", "-q", "-b", "main"]);
    (dir, path)
}

fn commit_file(dir: &Path, path: &str, text: &str, message: &str) -> String {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
    git(dir, &["add", path]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("sidekey-scan"))
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap()
}

/// What a command said, stdout and stderr together (git runs hooks with stdout on stderr).
fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn findings(out: &Output) -> Vec<serde_json::Value> {
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    report["findings"].as_array().unwrap().clone()
}

#[test]
fn history_finds_deleted_secrets_with_the_commit_that_introduced_them() {
    let (_tmp, dir) = repo();
    let (leaked, in_message) = (token(11), token(12));
    commit_file(&dir, "README.md", "# app\n", "start");
    let introduced = commit_file(
        &dir,
        "deploy/.env",
        &format!("A=1\nGITHUB_TOKEN={leaked}\n"),
        "add deploy env",
    );
    // The same blob again under another path, then both deleted: reported once, for the commit
    // that introduced it.
    std::fs::copy(dir.join("deploy/.env"), dir.join("copy.env")).unwrap();
    git(&dir, &["add", "copy.env"]);
    git(&dir, &["commit", "-q", "-m", "copy"]);
    git(&dir, &["rm", "-q", "deploy/.env", "copy.env"]);
    git(&dir, &["commit", "-q", "-m", "remove the env files"]);
    let tip = commit_file(
        &dir,
        "notes.txt",
        "nothing here\n",
        &format!("rotate later: {in_message}"),
    );
    assert!(!dir.join("deploy/.env").exists());

    let out = scan(&dir, &["--git", "--format", "json", "--no-redact"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out);
    assert_eq!(found.len(), 2, "{found:#?}");
    let env = found
        .iter()
        .find(|f| f["secret"] == leaked.as_str())
        .expect("the deleted secret");
    assert_eq!(env["path"], "deploy/.env");
    assert_eq!((env["line"].as_u64(), env["column"].as_u64()), (Some(2), Some(14)));
    assert_eq!(env["commit"], introduced.as_str());
    assert_eq!(env["author"], "Ada Leak <ada@example.test>");
    assert!(env["date"].as_str().unwrap().starts_with("20"), "{env}");
    let message = found
        .iter()
        .find(|f| f["secret"] == in_message.as_str())
        .expect("the commit message");
    assert_eq!(
        (message["path"].as_str(), message["commit"].as_str()),
        (Some("COMMIT_MSG"), Some(tip.as_str()))
    );

    // A range: only what it adds.
    let out = scan(&dir, &["--git", "HEAD~1..HEAD", "--format", "json"]);
    assert_eq!(findings(&out).len(), 1, "only the tip's message");
    let out = scan(&dir, &["--git", &format!("{introduced}~1"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // SARIF carries the commit too.
    let out = scan(&dir, &["--git", "--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results.iter().any(|r| r["properties"]["commit"] == introduced.as_str()),
        "{sarif:#}"
    );

    // Human output names the commit and hides the secret.
    let out = scan(&dir, &["--git"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&introduced[..12]) && !text.contains(&leaked), "{text}");
}

#[test]
fn staged_from_a_subdirectory_reads_the_commit_and_names_top_level_paths_whatever_diff_relative_says() {
    let (_tmp, dir) = repo();
    commit_file(&dir, "README", "hello\n", "start");
    // A user's `diff.relative` would make git's answer relative to the directory it runs in.
    git(&dir, &["config", "diff.relative", "true"]);
    let secret = token(24);
    std::fs::create_dir_all(dir.join("app/deep")).unwrap();
    std::fs::write(dir.join("app/config.yml"), format!("key: {secret}\n")).unwrap();
    git(&dir, &["add", "app/config.yml"]);
    let out = scan(&dir.join("app/deep"), &["--staged", "--format", "json", "--no-redact"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["path"], "app/config.yml");
    assert_eq!(found[0]["secret"], secret.as_str());
}

#[test]
fn staged_scans_only_what_the_commit_adds() {
    let (_tmp, dir) = repo();
    let (old, staged, unstaged) = (token(21), token(22), token(23));
    // A secret already committed is not this commit's doing.
    commit_file(&dir, "config.yml", &format!("old: {old}\n"), "start");
    assert_eq!(scan(&dir, &["--staged"]).status.code(), Some(0), "nothing staged");

    std::fs::write(dir.join("config.yml"), format!("old: {old}\nnew: {staged}\n")).unwrap();
    git(&dir, &["add", "config.yml"]);
    std::fs::write(dir.join("local.env"), format!("T={unstaged}\n")).unwrap();
    let out = scan(&dir, &["--staged", "--format", "json", "--no-redact"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let found = findings(&out);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0]["path"].as_str(), found[0]["line"].as_u64()),
        (Some("config.yml"), Some(2))
    );
    assert_eq!(found[0]["secret"], staged.as_str());

    // Staged content counts, not the working tree: unstage the secret line, keep it on disk.
    git(&dir, &["reset", "-q", "config.yml"]);
    assert_eq!(scan(&dir, &["--staged"]).status.code(), Some(0));

    // In a repository without commits, everything staged is new.
    let (_tmp2, fresh) = repo();
    std::fs::write(fresh.join("a.env"), format!("T={staged}\n")).unwrap();
    git(&fresh, &["add", "a.env"]);
    assert_eq!(scan(&fresh, &["--staged"]).status.code(), Some(1));
}

#[test]
fn installed_hooks_refuse_commits_and_pushes_that_add_secrets() {
    let (tmp, dir) = repo();
    commit_file(&dir, "README.md", "# app\n", "start");

    let out = scan(&dir, &["install-hook"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hook = dir.join(".git/hooks/pre-commit");
    assert!(std::fs::read_to_string(&hook).unwrap().contains("--staged"));

    std::fs::write(dir.join("app.env"), format!("TOKEN={}\n", token(31))).unwrap();
    git(&dir, &["add", "app.env"]);
    let refused = git_cmd(&dir).args(["commit", "-q", "-m", "add env"]).output().unwrap();
    assert!(!refused.status.success(), "the hook refuses the commit");
    let said = both(&refused);
    assert!(said.contains("github-pat") && said.contains("app.env"), "{said}");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]), "1");

    // Without the secret the commit goes through.
    std::fs::write(dir.join("app.env"), "TOKEN=${GITHUB_TOKEN}\n").unwrap();
    git(&dir, &["add", "app.env"]);
    git(&dir, &["commit", "-q", "-m", "add env"]);

    // A foreign hook is not replaced without --force.
    std::fs::write(dir.join(".git/hooks/pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = scan(&dir, &["install-hook", "--pre-push"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = scan(&dir, &["install-hook", "--pre-push", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join(".git/hooks/pre-push.sidekey-backup").exists());

    // The pre-push hook refuses a push of a commit that added a secret (committed with
    // --no-verify, as a hurried developer would), on a new branch and on an existing one.
    let remote = tmp.path().join("remote.git");
    git(tmp.path(), &["init", "-q", "--bare", remote.to_str().unwrap()]);
    git(&dir, &["remote", "add", "origin", remote.to_str().unwrap()]);
    git(&dir, &["push", "-q", "origin", "main"]);
    std::fs::write(dir.join("ci.env"), format!("TOKEN={}\n", token(32))).unwrap();
    git(&dir, &["add", "ci.env"]);
    git(&dir, &["commit", "-q", "--no-verify", "-m", "ci env"]);
    let refused = git_cmd(&dir).args(["push", "-q", "origin", "main"]).output().unwrap();
    assert!(!refused.status.success(), "the pre-push hook refuses the push");
    assert!(both(&refused).contains("ci.env"), "{}", both(&refused));
    let refused = git_cmd(&dir)
        .args(["push", "-q", "origin", "main:feature"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "also to a new branch");
    // Pushing what the remote has already, or a clean branch, is fine.
    git(&dir, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&dir, &["push", "-q", "origin", "main:feature"]);
}

/// A hook repository as pre-commit would clone it: this checkout's files (committed or not,
/// untracked ones included unless ignored) committed in a new repository. Returns its commit.
fn hooks_repo(hooks: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(hooks).unwrap();
    let listed = git(root, &["ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
    for file in listed.split('\0').filter(|f| !f.is_empty()) {
        let (from, to) = (root.join(file), hooks.join(file));
        if !from.is_file() {
            continue; // deleted in the work tree, or the .stack symlink
        }
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    git(hooks, &["init", "-q"]);
    git(hooks, &["add", "-A"]);
    git(hooks, &["commit", "-q", "-m", "hooks"]);
    git(hooks, &["rev-parse", "HEAD"])
}

#[test]
fn the_pre_commit_framework_runs_the_pinned_hook_and_the_system_one() {
    let Ok(pre_commit) = std::env::var("SIDEKEY_TEST_PRE_COMMIT") else {
        panic!("tests/run.sh installs pre-commit (SIDEKEY_TEST_PRE_COMMIT)");
    };
    let (tmp, dir) = repo();
    let hooks = tmp.path().join("hooks-repo");
    let rev = hooks_repo(&hooks);
    commit_file(&dir, "README.md", "# app\n", "start");
    // The pinned hook builds its own sidekey-scan; PATH has cargo but no sidekey-scan. Its
    // build goes to a target dir kept between test runs (deps compiled once), in the dev
    // profile (the hook's default is release, the same command otherwise).
    let scan_dir = bin("sidekey-scan").parent().unwrap().to_path_buf();
    let path = std::env::var("PATH").unwrap();
    let without_scan = std::env::split_paths(&path).filter(|p| *p != scan_dir);
    let without_scan = std::env::join_paths(without_scan).unwrap();
    let with_scan = std::ffi::OsString::from(format!("{}:{path}", scan_dir.display()));
    let hook_target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pre-commit-hook");
    let run = |dir: &Path, id: &str, path: &std::ffi::OsStr| {
        let config = format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: {id}\n",
            hooks.display()
        );
        std::fs::write(tmp.path().join("pre-commit-config.yaml"), config).unwrap();
        isolated(&pre_commit, dir)
            .args(["run", "--config"])
            .arg(tmp.path().join("pre-commit-config.yaml"))
            .args(["--hook-stage", "pre-commit"])
            .env("PATH", path)
            .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"))
            .env("SIDEKEY_HOOK_PROFILE", "dev")
            .env("SIDEKEY_HOOK_TARGET_DIR", &hook_target)
            .output()
            .unwrap()
    };
    std::fs::write(dir.join("clean.txt"), "nothing\n").unwrap();
    git(&dir, &["add", "clean.txt"]);
    for (id, path) in [("sidekey-scan", &without_scan), ("sidekey-scan-system", &with_scan)] {
        let out = run(&dir, id, path);
        assert!(out.status.success(), "{id}: {}", both(&out));
    }

    std::fs::write(dir.join("app.env"), format!("TOKEN={}\n", token(41))).unwrap();
    git(&dir, &["add", "app.env"]);
    for (id, path) in [("sidekey-scan", &without_scan), ("sidekey-scan-system", &with_scan)] {
        let out = run(&dir, id, path);
        let said = both(&out);
        assert!(!out.status.success(), "{id}: {said}");
        assert!(said.contains("github-pat") && said.contains("app.env"), "{id}: {said}");
    }
    // What ran is the scanner built from the pinned revision.
    let built = Command::new(hook_target.join("debug/sidekey-scan"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&built.stdout);
    assert!(version.contains(&rev[..7]), "{version} (pinned {rev})");
}

#[test]
fn corrupt_objects_and_non_repositories_are_errors_that_name_them() {
    let (tmp, dir) = repo();
    commit_file(&dir, "a.txt", "plain text\n", "start");
    let blob = git(&dir, &["rev-parse", "HEAD:a.txt"]);
    let object = dir.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, b"this is not a zlib stream").unwrap();

    let out = scan(&dir, &["--git"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&blob) || said.contains("a.txt"), "{said}");
    assert!(!said.contains("panicked"), "{said}");

    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for args in [&["--git"][..], &["--staged"], &["install-hook"]] {
        let out = scan(&plain, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
    }
}

#[test]
fn history_of_a_bare_mirror_is_scanned_like_its_work_tree() {
    let (dir, work) = repo();
    let leaked = token(41);
    commit_file(&work, "config/.env", &format!("GITHUB_TOKEN={leaked}\n"), "add config");
    commit_file(&work, "config/.env", "GITHUB_TOKEN=\n", "remove the token");
    let mirror = dir.path().join("mirror.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            work.to_str().unwrap(),
            mirror.to_str().unwrap(),
        ],
    );

    let from_work = findings(&scan(&work, &["--git", "--format", "json", "--no-redact"]));
    let out = scan(&mirror, &["--git", "--format", "json", "--no-redact"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let from_mirror = findings(&out);
    assert_eq!(from_mirror.len(), 1, "{from_mirror:#?}");
    assert_eq!(from_mirror[0]["secret"], leaked.as_str());
    assert_eq!(from_mirror[0]["path"], "config/.env");
    assert_eq!(from_mirror, from_work, "a mirror reports what its work tree does");
}
