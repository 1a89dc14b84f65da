//! Replacing a file atomically with exactly a given mode: what the agent's encrypted store,
//! its cache and `[[file]]` deliveries all write with.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// What [`write_atomically`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file now holds the new contents.
    Replaced,
    /// The file already held exactly those contents with that mode; nothing was written.
    Unchanged,
}

/// A failed step of [`write_atomically`].
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct WriteError {
    /// The step that failed, with its path.
    pub what: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `contents` and exactly `mode`, atomically (temporary file in the same
/// directory, fsync, rename, directory fsync); answers `Unchanged` without writing when the
/// file already holds exactly that. On failure the old file is untouched and no temporary
/// file is left behind. The umask does not change the mode.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<Written, WriteError> {
    if holds(path, contents, mode) {
        return Ok(Written::Unchanged);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| WriteError {
        what: format!("{} does not name a file", path.display()),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let temp = dir.join(format!(
        ".{}.{:016x}.sidekey-tmp",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let step = |what: &str, source: std::io::Error| WriteError {
        what: format!("cannot {what}"),
        source,
    };
    let result = (|| {
        // Created private; the mode is then set on the descriptor (fchmod), so the umask does
        // not change it and the file appears under its name already with it.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| step(&format!("create a temporary file in {}", dir.display()), e))?;
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| step("set the file mode", e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| step(&format!("write {}", temp.display()), e))?;
        std::fs::rename(&temp, path).map_err(|e| step(&format!("rename the temporary file to {}", path.display()), e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    // Makes the rename itself durable. Some filesystems refuse to fsync a directory; the
    // file is in place either way, so that is not a failure.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(Written::Replaced)
}

/// Whether `path` is a regular file with exactly `contents` and `mode`.
fn holds(path: &Path, contents: &[u8], mode: u32) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o7777 != mode || meta.len() != contents.len() as u64 {
        return false;
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .is_ok_and(|old| old.as_slice() == contents)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A fresh directory, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            let path = std::env::temp_dir().join(format!("sidekey-atomic-test-{:016x}", rand::random::<u64>()));
            std::fs::create_dir(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn files_get_exactly_the_given_mode_whatever_the_umask() {
        let dir = Dir::new();
        let path = dir.0.join("db.env");
        for mode in [0o600, 0o640, 0o666, 0o400] {
            assert_eq!(write_atomically(&path, b"A=1\n", mode).unwrap(), Written::Replaced);
            assert_eq!(mode_of(&path), mode, "{mode:o}");
            assert_eq!(std::fs::read(&path).unwrap(), b"A=1\n");
        }
        assert_eq!(entries(&dir.0), ["db.env"], "no temporary file is left");
    }

    #[test]
    fn identical_content_and_mode_is_not_rewritten() {
        let dir = Dir::new();
        let path = dir.0.join("db.env");
        assert_eq!(write_atomically(&path, b"A=1\n", 0o600).unwrap(), Written::Replaced);
        assert_eq!(write_atomically(&path, b"A=1\n", 0o600).unwrap(), Written::Unchanged);
        assert_eq!(write_atomically(&path, b"A=1\n", 0o640).unwrap(), Written::Replaced);
        assert_eq!(write_atomically(&path, b"A=2\n", 0o640).unwrap(), Written::Replaced);
        assert_eq!(std::fs::read(&path).unwrap(), b"A=2\n");
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = Dir::new();
        // A non-empty directory where the file should be: the rename fails.
        let path = dir.0.join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let err = write_atomically(&path, b"A=1\n", 0o600).unwrap_err();
        assert!(err.to_string().contains("rename the temporary file to"), "{err}");
        assert_eq!(entries(&dir.0), ["taken"]);

        let err = write_atomically(&dir.0.join("missing/db.env"), b"A=1\n", 0o600).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
