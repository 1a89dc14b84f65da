//! Files and directories: a parallel walk (the `ignore` crate). Hidden files (`.env`,
//! `.npmrc`) are scanned and `.gitignore` is not honoured — an ignored `.env` is exactly what
//! leaks; only `.git/` itself is skipped. Every file goes through [`super::dispatch`], so
//! archives are opened and other binary files dropped.

use std::io::{Read, Seek};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ignore::{WalkBuilder, WalkState};

use super::{archive, dispatch, sniff, Ctx, Kind, Limits, Sink};

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
                Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => file(entry.path(), sink, limits),
                Ok(_) => {}
            }
            WalkState::Continue
        })
    });
}

/// Dispatches one file (its own top-level input with its own archive budget).
pub fn file(path: &Path, sink: &dyn Sink, limits: &Limits) {
    let shown = display(path);
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return sink.skipped(&shown, format!("cannot read: {e}")),
    };
    let budget = AtomicU64::new(limits.max_expanded);
    let ctx = Ctx {
        sink,
        limits,
        commit: None::<&Arc<_>>,
        depth: 0,
        budget: &budget,
    };
    // A zip on disk is opened in place (its directory is at the end) rather than read into
    // memory as a stream would have to be.
    let mut magic = [0u8; 4];
    let is_zip = f.read_exact(&mut magic).is_ok() && sniff(&magic) == Kind::Zip;
    if let Err(e) = f.rewind() {
        return sink.skipped(&shown, format!("cannot read: {e}"));
    }
    if is_zip {
        if let Err(reason) = archive::open_seekable_zip(&shown, std::io::BufReader::new(f), &ctx) {
            sink.skipped(&shown, reason);
        }
    } else {
        dispatch(&shown, &mut f, &ctx);
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
