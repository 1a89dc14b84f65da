//! Opening the files sidekey keeps for itself — the audit log, the sealed cache, the local
//! store and its lock — so that a hostile path cannot turn them against the agent: never
//! through a symlink (`O_NOFOLLOW`), never a FIFO, socket or device (opened `O_NONBLOCK`, so a
//! FIFO cannot hang the open, then refused unless it is a regular file), and reads capped, so
//! `/dev/zero` or a huge file cannot exhaust memory. Errors name the path and the reason.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

/// The most any of these files is read into memory.
pub const MAX_READ: u64 = 64 * 1024 * 1024;

fn flags() -> i32 {
    (OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits()
}

/// `file`, once it is known to be a regular file.
fn regular(file: File, path: &Path) -> std::io::Result<File> {
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// The error of an open: a symlink (`ELOOP` under `O_NOFOLLOW`) and a FIFO without a reader
/// (`ENXIO`) say so.
fn opened(result: std::io::Result<File>, path: &Path) -> std::io::Result<File> {
    result.map_err(|e| match e.raw_os_error() {
        Some(code) if code == nix::errno::Errno::ELOOP as i32 => Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link, which sidekey does not follow for its own files",
                path.display()
            ),
        ),
        Some(code) if code == nix::errno::Errno::ENXIO as i32 => Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ),
        _ => e,
    })
}

/// Reads the regular file at `path`, at most [`MAX_READ`] bytes (more is an error).
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = opened(OpenOptions::new().read(true).custom_flags(flags()).open(path), path)?;
    let file = regular(file, path)?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_READ {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{} is larger than {} MiB", path.display(), MAX_READ / (1024 * 1024)),
        ));
    }
    Ok(bytes)
}

/// Opens (creating with `mode`) the regular file at `path` for appending.
pub fn append(path: &Path, mode: u32) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .custom_flags(flags())
        .open(path);
    regular(opened(file, path)?, path)
}

/// Opens (creating with `mode`, never truncating) the regular file at `path` for writing, e.g.
/// a lock file.
pub fn write(path: &Path, mode: u32) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(mode)
        .custom_flags(flags())
        .open(path);
    regular(opened(file, path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened_and_reads_are_capped() {
        let dir = std::env::temp_dir().join(format!("sidekey-own-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"ok").unwrap();
        assert_eq!(read(&file).unwrap(), b"ok");
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link).unwrap_err().to_string().contains("symbolic link"));
        assert!(append(&link, 0o600).unwrap_err().to_string().contains("symbolic link"));
        let zero = Path::new("/dev/zero");
        assert!(read(zero).unwrap_err().to_string().contains("not a regular file"));
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(append(&fifo, 0o600)
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
        assert!(read(&fifo).unwrap_err().to_string().contains("not a regular file"));
        assert!(write(&dir, 0o600).is_err(), "a directory");
        assert_eq!(read(&dir.join("missing")).unwrap_err().kind(), ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
