//! Files and directories: a parallel walk (the `ignore` crate). Hidden files (`.env`,
//! `.npmrc`) are scanned and `.gitignore` is not honoured — an ignored `.env` is exactly what
//! leaks; only `.git/` itself is skipped. Every file goes through [`super::dispatch`], so
//! archives are opened and other binary files dropped.

use ignore::{WalkBuilder, WalkState};
use std::io::{Read, Seek};
use std::path::Path;

use super::{archive, dispatch, dispatch_bytes, sniff, Budget, Ctx, Kind, Limits, Sink, ThreadBuf, SNIFF_LEN};

/// Dispatches every file under `roots`, in parallel. Unreadable files and directories are
/// reported to the sink as skipped.
pub fn walk(roots: &[impl AsRef<Path>], sink: &dyn Sink, limits: &Limits) {
    let Some((first, rest)) = roots.split_first() else {
        return;
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git");
    builder.build_parallel().run(|| {
        Box::new(|entry| {
            match entry {
                Err(e) => sink.skipped(&error_path(&e), e.to_string()),
                Ok(entry)
                    if entry.depth() > 0
                        && sink.excluded(&display(entry.path()), entry.file_type().is_some_and(|t| t.is_dir())) =>
                {
                    return WalkState::Skip;
                }
                Ok(entry) => match entry.file_type() {
                    Some(t) if t.is_file() => file(entry.path(), entry.depth() == 0, sink, limits),
                    Some(t) if t.is_dir() || t.is_symlink() => {}
                    // A FIFO, socket or device: named on the command line or found in a tree.
                    Some(t) => sink.skipped(
                        &display(entry.path()),
                        format!("not a regular file ({}); not read", special(t)),
                    ),
                    None => {}
                },
            }
            WalkState::Continue
        })
    });
}

/// Dispatches one file (its own top-level input with its own archive budget). Only regular
/// files are opened: a FIFO would block, a device could be endless, a socket holds nothing;
/// each is reported as skipped, as is a file that cannot be read. A symlink is followed only
/// when it was `named` on the command line.
pub fn file(path: &Path, named: bool, sink: &dyn Sink, limits: &Limits) {
    let shown = display(path);
    let mut f = match open_regular(path, named) {
        Ok(f) => f,
        Err(reason) => return sink.skipped(&shown, reason),
    };
    let budget = Budget::new(limits);
    let ctx = Ctx::top(sink, limits, None, &budget);
    let mut head = ThreadBuf::lend(&READ_BUF, WHOLE);
    let cannot = |e: std::io::Error| sink.skipped(&shown, format!("cannot read: {e}"));
    if let Err(e) = (&mut f).take(SNIFF_LEN as u64).read_to_end(&mut head) {
        return cannot(e);
    }
    // A zip on disk is opened in place (its directory is at the end) rather than read into
    // memory as a stream would have to be.
    if sniff(&head[..head.len().min(4)]) == Kind::Zip {
        if let Err(e) = f.rewind() {
            return cannot(e);
        }
        sink.file(&shown, None);
        if let Err(archive::Stop::Say(reason)) = archive::open_zip_file(&shown, &f, &ctx) {
            sink.skipped(&shown, reason);
        }
        return;
    }
    // Most files are then read whole and scanned where they lie; a larger one streams on
    // from what was read.
    if head.len() == SNIFF_LEN {
        if let Err(e) = (&mut f).take((WHOLE - SNIFF_LEN) as u64).read_to_end(&mut head) {
            return cannot(e);
        }
    }
    if head.len() < WHOLE {
        dispatch_bytes(&shown, &head, &ctx);
    } else {
        dispatch(&shown, &mut head.as_slice().chain(&mut f), &ctx);
    }
}

/// Files up to this size are read whole before they are scanned.
const WHOLE: usize = 1024 * 1024;

thread_local! {
    /// The buffer files are read into (see [`ThreadBuf`]).
    static READ_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Opens `path` for reading if it is a regular file, without blocking on a FIFO and (unless it
/// was `named`) without following a symlink swapped in since the walk saw it; answers why not
/// otherwise.
pub fn open_regular(path: &Path, named: bool) -> Result<std::fs::File, String> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt as _;
    let flags = if named {
        OFlag::O_NONBLOCK
    } else {
        OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = f.metadata().map_err(|e| format!("cannot read: {e}"))?.file_type();
    if !kind.is_file() {
        return Err(format!("not a regular file ({}); not read", special(kind)));
    }
    Ok(f)
}

/// What a file that is not a regular file is, in words.
pub fn special(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// The path an `ignore` error is about, when it names one.
fn error_path(e: &ignore::Error) -> String {
    match e {
        ignore::Error::WithPath { path, .. } => display(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => error_path(err),
        _ => String::new(),
    }
}

/// The path as the user would type it: relative paths stay relative, `./` is dropped.
pub fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}
