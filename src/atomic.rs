//! Replacing a file atomically with exactly a given mode (and, for `[[file]]` deliveries, a
//! given owner and group): what the agent's encrypted store, its cache and `[[file]]`
//! deliveries all write with.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt, PermissionsExt};
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
    /// The step was giving the file its owner and group ([`Ownership`]): a refusal there
    /// (not root) does not pass by retrying.
    pub ownership: bool,
}

/// Who a written file belongs to; `None` keeps the writer's own user or group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The file's uid.
    pub uid: Option<u32>,
    /// The file's gid.
    pub gid: Option<u32>,
}

/// Replaces `path` with `contents` and exactly `mode`, atomically (temporary file in the same
/// directory, fsync, rename, directory fsync); answers `Unchanged` without writing when the
/// file already holds exactly that. On failure the old file is untouched and no temporary
/// file is left behind. The umask does not change the mode.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<Written, WriteError> {
    write_owned(path, contents, mode, Ownership::default())
}

/// [`write_atomically`], the file given to `owner` too: the temporary file is chowned before
/// it is renamed into place, so the file appears under its name already with its owner, group
/// and mode. A file that holds `contents` with that mode but another owner is rewritten.
pub fn write_owned(path: &Path, contents: &[u8], mode: u32, owner: Ownership) -> Result<Written, WriteError> {
    if holds(path, contents, mode, owner) {
        return Ok(Written::Unchanged);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| WriteError {
        what: format!("{} does not name a file", path.display()),
        source: std::io::ErrorKind::InvalidInput.into(),
        ownership: false,
    })?;
    let temp = dir.join(format!(
        ".{}.{:016x}.sidekey-tmp",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let step = |what: &str, source: std::io::Error| WriteError {
        what: format!("cannot {what}"),
        source,
        ownership: false,
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
        // Owner first: a chown may clear set-id bits, so the mode is set after it.
        if owner != Ownership::default() {
            std::os::unix::fs::fchown(&file, owner.uid, owner.gid).map_err(|source| WriteError {
                what: format!("cannot give {} to {}", path.display(), describe(owner)),
                source,
                ownership: true,
            })?;
        }
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

/// `uid 65534 and gid 65534`, for messages.
fn describe(owner: Ownership) -> String {
    match (owner.uid, owner.gid) {
        (Some(uid), Some(gid)) => format!("uid {uid} and gid {gid}"),
        (Some(uid), None) => format!("uid {uid}"),
        (None, Some(gid)) => format!("gid {gid}"),
        (None, None) => "its writer".to_owned(),
    }
}

/// Whether `path` is a regular file with exactly `contents`, `mode` and `owner`.
fn holds(path: &Path, contents: &[u8], mode: u32, owner: Ownership) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o7777 != mode || meta.len() != contents.len() as u64 {
        return false;
    }
    if owner.uid.is_some_and(|uid| uid != meta.uid()) || owner.gid.is_some_and(|gid| gid != meta.gid()) {
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
    fn the_owner_and_group_are_set_before_the_file_appears() {
        let dir = Dir::new();
        let path = dir.0.join("db.env");
        let me = Ownership {
            uid: Some(nix::unistd::geteuid().as_raw()),
            gid: Some(nix::unistd::getegid().as_raw()),
        };
        assert_eq!(write_owned(&path, b"A=1\n", 0o640, me).unwrap(), Written::Replaced);
        assert_eq!(write_owned(&path, b"A=1\n", 0o640, me).unwrap(), Written::Unchanged);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((Some(meta.uid()), Some(meta.gid())), (me.uid, me.gid));
        if nix::unistd::geteuid().is_root() {
            // Another owner: the same content is rewritten with it.
            let nobody = Ownership {
                uid: Some(65534),
                gid: None,
            };
            assert_eq!(write_owned(&path, b"A=1\n", 0o640, nobody).unwrap(), Written::Replaced);
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), mode_of(&path)),
                (65534, me.gid.unwrap(), 0o640)
            );
        } else {
            // Not root: giving the file away is refused, the old file stays, nothing is left.
            let root = Ownership {
                uid: Some(0),
                gid: Some(0),
            };
            let err = write_owned(&path, b"A=2\n", 0o640, root).unwrap_err();
            assert!(err.ownership, "{err}");
            assert!(err.to_string().contains("uid 0 and gid 0"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), b"A=1\n");
        }
        assert_eq!(entries(&dir.0), ["db.env"]);
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
