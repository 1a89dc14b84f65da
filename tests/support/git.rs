//! git for tests: commands isolated from the user's and the system's configuration, with a
//! fixed author, so fixtures are the same on every machine.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// `program` in `dir` with git isolated from the user's and the system's configuration (and
/// no `SIDEKEY_SCAN` override for the hooks it may run).
pub fn isolated(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Leak")
        .env("GIT_AUTHOR_EMAIL", "ada@example.test")
        .env("GIT_COMMITTER_NAME", "Ada Leak")
        .env("GIT_COMMITTER_EMAIL", "ada@example.test")
        .env_remove("SIDEKEY_SCAN");
    cmd
}
