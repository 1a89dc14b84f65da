//! Files and directories: a parallel walk (the `ignore` crate). Hidden files (`.env`,
//! `.npmrc`) are scanned and `.gitignore` is not honoured — an ignored `.env` is exactly what
//! leaks; only `.git/` itself is skipped. Binary files (a NUL byte in the first 8 KiB) are
//! skipped until archive support opens them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use super::Skipped;

/// Largest file read whole; larger files are reported as skipped.
pub const MAX_FILE: u64 = 256 * 1024 * 1024;

/// Calls `visit(display_path, bytes)` for every text file under `roots`, in parallel.
/// Answers what was skipped and why.
pub fn walk(roots: &[PathBuf], visit: &(dyn Fn(&str, &[u8]) + Sync)) -> Vec<Skipped> {
    let skipped = Mutex::new(Vec::new());
    let skip = |path: &Path, reason: String| {
        skipped.lock().expect("never poisoned").push(Skipped {
            path: display(path),
            reason,
        })
    };
    let Some((first, rest)) = roots.split_first() else {
        return Vec::new();
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
                Err(e) => skipped.lock().expect("never poisoned").push(Skipped {
                    path: String::new(),
                    reason: e.to_string(),
                }),
                Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => match read(entry.path()) {
                    Ok(Some(bytes)) => visit(&display(entry.path()), &bytes),
                    Ok(None) => {}
                    Err(reason) => skip(entry.path(), reason),
                },
                Ok(_) => {}
            }
            WalkState::Continue
        })
    });
    skipped.into_inner().expect("never poisoned")
}

/// The file's bytes, `None` for binary files, or why it cannot be read.
fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE {
        return Err(format!("larger than {} MiB", MAX_FILE / (1024 * 1024)));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let head = &bytes[..bytes.len().min(8192)];
    Ok((!head.contains(&0)).then_some(bytes))
}

/// The path as the user would type it: relative paths stay relative, `./` is dropped.
fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}
