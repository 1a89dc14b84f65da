//! Build metadata for `--version` and `sidekey_build_info`: the git commit the binary is built
//! from and its date, as `SIDEKEY_COMMIT` ("abc1234", or "unknown" outside a git checkout, e.g.
//! from a source tarball) and `SIDEKEY_COMMIT_DATE` ("2026-12-06", or empty). A packager who
//! builds without git sets `SIDEKEY_COMMIT` (and `SIDEKEY_COMMIT_DATE`) in the environment.
//! `SIDEKEY_VERSION` is what `-V` prints after the name: "0.1.0 (abc1234 2026-12-06)";
//! `SIDEKEY_TARGET` the target triple, for `--version`.
//!
//! The script reruns when HEAD moves (a commit, a checkout), not on every edit: the commit is
//! the one checked out, not a claim that the tree is clean. Both binaries use this one script
//! (`build = "../build/version.rs"` in agent/; scanner/build.rs calls [`main`] and also
//! converts the built-in rules).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn main() {
    println!("cargo:rerun-if-env-changed=SIDEKEY_COMMIT");
    println!("cargo:rerun-if-env-changed=SIDEKEY_COMMIT_DATE");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let (commit, date) = match std::env::var("SIDEKEY_COMMIT") {
        Ok(commit) if !commit.is_empty() => (commit, std::env::var("SIDEKEY_COMMIT_DATE").unwrap_or_default()),
        _ => from_git(&dir).unwrap_or_else(|| ("unknown".to_owned(), String::new())),
    };
    println!("cargo:rustc-env=SIDEKEY_COMMIT={commit}");
    println!("cargo:rustc-env=SIDEKEY_COMMIT_DATE={date}");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let built = [commit.as_str(), date.as_str()].join(" ");
    println!("cargo:rustc-env=SIDEKEY_VERSION={version} ({})", built.trim());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=SIDEKEY_TARGET={target}");
}

/// The checked-out commit (short hash, commit date), after registering the files whose change
/// means HEAD moved: HEAD itself, the branch's ref file and packed-refs (worktrees included:
/// git says where they are).
fn from_git(dir: &Path) -> Option<(String, String)> {
    // A source tarball unpacked inside some other repository (a packaging one) is not that
    // repository's commit: the crate's own manifest must be tracked.
    git(dir, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let head = git(dir, &["rev-parse", "--git-path", "HEAD"])?;
    watch(dir, &head);
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &branch]) {
            watch(dir, &path);
        }
    }
    if let Some(packed) = git(dir, &["rev-parse", "--git-path", "packed-refs"]) {
        watch(dir, &packed);
    }
    let line = git(dir, &["log", "-1", "--format=%h %cs"])?;
    let (commit, date) = line.split_once(' ')?;
    Some((commit.to_owned(), date.to_owned()))
}

/// Reruns the build script when `path` (relative to `dir`) changes; a file that does not exist
/// is not registered (cargo would rerun the script on every build).
fn watch(dir: &Path, path: &str) {
    let path = dir.join(path);
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Runs git in `dir`; its trimmed stdout, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
