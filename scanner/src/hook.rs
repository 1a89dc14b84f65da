//! Git hooks: `install-hook` writes a small shell script that runs this binary — `--staged`
//! before a commit, `--pre-push` before a push. A hook sidekey did not write is never
//! replaced silently.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The line that marks a hook as sidekey's own.
const MARK: &str = "# installed by `sidekey-scan install-hook`";

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Runs `sidekey-scan --staged`.
    PreCommit,
    /// Runs `sidekey-scan --pre-push REMOTE` with the refs git passes on stdin.
    PrePush,
}

impl Hook {
    /// The hook's file name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PreCommit => "pre-commit",
            Hook::PrePush => "pre-push",
        }
    }

    /// The script, running `scanner` (unless `SIDEKEY_SCAN` names another binary) with
    /// `extra` options.
    pub fn script(self, scanner: &Path, extra: &[String]) -> String {
        let mut args = match self {
            Hook::PreCommit => "--staged".to_owned(),
            Hook::PrePush => "--pre-push \"$1\"".to_owned(),
        };
        for a in extra {
            args.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        }
        let quoted = scanner.display().to_string().replace('\'', r"'\''");
        format!(
            "#!/bin/sh\n{MARK}\n# Refuses the {} when sidekey-scan finds a secret or cannot read part of it (exit 3); to skip once: git {} --no-verify\n\
             default='{quoted}'\n\
             scanner=\"${{SIDEKEY_SCAN:-$default}}\"\n\
             command -v \"$scanner\" >/dev/null 2>&1 || scanner=sidekey-scan\n\
             exec \"$scanner\" {args}\n",
            if self == Hook::PreCommit { "commit" } else { "push" },
            if self == Hook::PreCommit { "commit" } else { "push" },
        )
    }
}

/// Writes `hook` into `hooks_dir`, executable. An existing hook that sidekey did not write is
/// kept, and installing fails, unless `force` (then it is renamed to `NAME.sidekey-backup`).
/// Answers the path written.
pub fn install(hooks_dir: &Path, hook: Hook, scanner: &Path, extra: &[String], force: bool) -> anyhow::Result<PathBuf> {
    let path = hooks_dir.join(hook.name());
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.contains(MARK) => {
            if !force {
                bail!(
                    "{}: a {} hook already exists and was not written by sidekey; \
                     not replacing it (use --force to keep it as {}.sidekey-backup and install)",
                    path.display(),
                    hook.name(),
                    hook.name()
                );
            }
            let backup = hooks_dir.join(format!("{}.sidekey-backup", hook.name()));
            std::fs::rename(&path, &backup)
                .with_context(|| format!("{}: cannot move to {}", path.display(), backup.display()))?;
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("{}: cannot read existing hook: {e}", path.display()),
    }
    std::fs::create_dir_all(hooks_dir).with_context(|| format!("{}: cannot create", hooks_dir.display()))?;
    let tmp = hooks_dir.join(format!(".{}.sidekey-tmp", hook.name()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    file.write_all(hook.script(scanner, extra).as_bytes())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_hooks_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/opt/it's here/sidekey-scan");
        let path = install(dir.path(), Hook::PreCommit, bin, &[], false).unwrap();
        let script = std::fs::read_to_string(&path).unwrap();
        assert!(script.contains("--staged") && script.contains(r"default='/opt/it'\''s here/sidekey-scan'"));
        // The script names the binary it was installed with: sh runs it, quotes and all.
        let fake = dir.path().join("it's here");
        std::fs::create_dir(&fake).unwrap();
        let fake_bin = fake.join("sidekey-scan");
        std::fs::write(&fake_bin, "#!/bin/sh\necho ran \"$@\"\n").unwrap();
        std::fs::set_permissions(&fake_bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(Hook::PreCommit.script(&fake_bin, &["--verify".into(), "a b".into()]))
            .env_remove("SIDEKEY_SCAN")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran --staged --verify a b\n");
        // Our own hook is replaced freely.
        install(dir.path(), Hook::PreCommit, bin, &[], false).unwrap();

        std::fs::write(dir.path().join("pre-push"), "#!/bin/sh\nmake lint\n").unwrap();
        let err = install(dir.path(), Hook::PrePush, bin, &[], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pre-push hook already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pre-push")).unwrap(),
            "#!/bin/sh\nmake lint\n"
        );
        install(dir.path(), Hook::PrePush, bin, &["--verify".into()], true).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("pre-push"))
            .unwrap()
            .contains("--pre-push \"$1\" '--verify'"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pre-push.sidekey-backup")).unwrap(),
            "#!/bin/sh\nmake lint\n"
        );
    }
}
