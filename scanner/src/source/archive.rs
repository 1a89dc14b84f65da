//! Archives: zip (jar, whl, apk), tar (ustar, gnu, pax and old v7 headers), gzip and zstd
//! streams, nested to any depth within [`super::Limits`]; `docker save` tarballs and OCI
//! layouts are tars of tars. Members go back through [`super::dispatch`] with the path
//! `ARCHIVE!MEMBER`.
//!
//! Memory stays bounded whatever the archive: tars and compressed streams are read as streams,
//! so a member costs bounded memory whatever its size. A zip needs its central directory, so
//! it is read in place: a zip on disk by position, a stored zip inside another zip as a window
//! of its parent (no copy), and a zip that arrives as a stream (compressed inside a zip, a tar
//! member, a git blob) is held in memory only up to [`IN_MEMORY`] and otherwise spilled to an
//! unlinked temporary file (up to [`super::Limits::max_member`]). A compressed stream is not a
//! level of its own: a `x.tgz` holding a tar is opened in place (`x.tgz!etc/app.env`), a
//! gzipped text file is `x.gz!x` (the name from the gzip header when it has one).
//!
//! Limits: every byte a member or a decompressor yields is charged to the top-level input's
//! [`Budget`], and every member is cut at `max_member` — except members that are archives
//! themselves, which are cut member by member in turn. When the budget is spent, what is cheap
//! is still scanned from the budget's grace (a member that expands at most [`GRACE_RATIO`]
//! times its compressed size, stored members, members of a plain tar), and nested archives
//! are not opened. A cut is reported to the sink where it happens, with the member's path,
//! and travels up as a [`Reported`] read error that stops every reader above it quietly.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;

use flate2::read::MultiGzDecoder;

use super::{dispatch, is_reported, sniff, Charged, Ctx, Kind, Reported, SNIFF_LEN};

/// A zip that arrives as a stream is held in memory up to this size; a larger one is spilled
/// to an unlinked temporary file, so nesting never multiplies memory.
pub const IN_MEMORY: u64 = 1024 * 1024;
/// Once the budget is spent, a zip member is read only while it has expanded at most this
/// many times its compressed size (or [`GRACE_FLOOR`] bytes): a filler that spent the budget
/// cannot also hide what comes after it.
pub const GRACE_RATIO: u64 = 16;
/// What any member may expand to on grace, whatever its compressed size.
pub const GRACE_FLOOR: u64 = 4096;

/// Why an archive was not read to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// For the caller to report as skipped.
    Say(String),
    /// Already reported where it happened (a cut).
    Quiet,
}

/// Opens the archive `content` of `kind` found at `path` and dispatches its members.
/// Answers why it could not be read to its end; members that were read before stay scanned.
pub fn open(kind: Kind, path: &str, content: &mut dyn Read, ctx: &Ctx<'_>) -> Result<(), Stop> {
    match kind {
        Kind::Zip => open_zip(path, content, ctx),
        Kind::Tar => open_tar(path, content, "tar", ctx),
        Kind::Gzip => {
            let mut stream = Limited::new(MultiGzDecoder::new(content), path, ctx, Charge::Stream);
            let head = read_head(&mut stream).map_err(|e| describe("truncated or corrupt gzip stream", &e))?;
            let name = stream.inner.header().and_then(|h| h.filename()).and_then(header_name);
            expanded(path, name, head, stream, "gzip", ctx)
        }
        Kind::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(content)
                .map_err(|e| Stop::Say(format!("cannot start zstd decoder: {e}")))?;
            let mut stream = Limited::new(decoder, path, ctx, Charge::Stream);
            let head = read_head(&mut stream).map_err(|e| describe("truncated or corrupt zstd stream", &e))?;
            expanded(path, None, head, stream, "zstd", ctx)
        }
        Kind::Text(_) | Kind::Binary => Err(Stop::Say("not an archive".into())),
    }
}

/// Opens a zip on disk in place: read by position, nothing held in memory, no size limit on
/// the zip itself. Members are dispatched as by [`open`].
pub fn open_zip_file(path: &str, file: &File, ctx: &Ctx<'_>) -> Result<(), Stop> {
    let view = View::file(file).map_err(|e| Stop::Say(format!("cannot read: {e}")))?;
    zip_in(path, view, ctx)
}

/// Opens a zip held in memory in place (as [`open_zip_file`]).
pub fn open_zip_bytes(path: &str, bytes: &[u8], ctx: &Ctx<'_>) -> Result<(), Stop> {
    zip_in(path, View::memory(bytes), ctx)
}

// === zip ===

/// A zip read from a stream: in memory when small, else spilled to an unlinked temporary file;
/// never more than `max_member` bytes of it.
fn open_zip(path: &str, content: &mut dyn Read, ctx: &Ctx<'_>) -> Result<(), Stop> {
    let max = ctx.limits.max_member;
    let too_large = || {
        Stop::Say(format!(
            "zip larger than {} (a zip read as a stream must be stored to be opened); not opened",
            Size(max)
        ))
    };
    let mut head = Vec::new();
    content
        .take(IN_MEMORY.min(max).saturating_add(1))
        .read_to_end(&mut head)
        .map_err(|e| describe("cannot read zip", &e))?;
    if head.len() as u64 <= IN_MEMORY.min(max) {
        return zip_in(path, View::memory(&head), ctx);
    }
    if head.len() as u64 > max {
        return Err(too_large());
    }
    let spill_failed = |e: io::Error| Stop::Say(format!("cannot spill the zip to a temporary file: {e}"));
    let mut spill = tempfile::tempfile().map_err(spill_failed)?;
    spill.write_all(&head).map_err(spill_failed)?;
    let rest = max.saturating_add(1) - head.len() as u64;
    drop(head);
    let copied =
        io::copy(&mut content.take(rest), &mut spill).map_err(|e| describe("cannot read zip (or spill it)", &e))?;
    if copied >= rest {
        return Err(too_large());
    }
    open_zip_file(path, &spill, ctx)
}

/// Opens the zip in `view` and dispatches its members.
fn zip_in(path: &str, view: View<'_>, ctx: &Ctx<'_>) -> Result<(), Stop> {
    let zip = zip::ZipArchive::new(BufReader::new(view)).map_err(|e| Stop::Say(format!("not a readable zip: {e}")))?;
    zip_members(path, zip, view, ctx);
    Ok(())
}

/// Dispatches each file of `zip` (whose bytes are `view`); a member that cannot be opened is
/// reported and the next one is tried (the central directory says where each starts).
fn zip_members<R: Read + Seek>(path: &str, mut zip: zip::ZipArchive<R>, view: View<'_>, ctx: &Ctx<'_>) {
    for i in 0..zip.len() {
        if ctx.budget.exhausted() {
            return ctx.sink.skipped(
                path,
                format!(
                    "archive expands past {} in total; its last {} member(s) are not scanned",
                    Size(ctx.limits.max_expanded),
                    zip.len() - i
                ),
            );
        }
        let name = match zip.name_for_index(i) {
            Some(Ok(name)) => name.into_owned(),
            _ => format!("#{i}"),
        };
        let member_path = format!("{path}!{name}");
        let mut file = match zip.by_index(i) {
            Ok(file) => file,
            Err(e) => {
                ctx.sink.skipped(&member_path, format!("cannot open zip member: {e}"));
                continue;
            }
        };
        if !file.is_file() {
            continue;
        }
        // A stored zip is opened where it lies in its parent.
        let stored = file.compression() == zip::CompressionMethod::Stored && !file.encrypted();
        if let Some(inner) = stored
            .then(|| file.data_start().and_then(|at| view.sub(at, file.compressed_size())))
            .flatten()
            .filter(|inner| inner.is_zip())
        {
            drop(file);
            zip_in_place(&member_path, inner, ctx);
            continue;
        }
        let declared = file.size();
        let grace_cap = file.compressed_size().saturating_mul(GRACE_RATIO).max(GRACE_FLOOR);
        member(
            &member_path,
            &mut file,
            Charge::Member { grace_cap },
            Some(declared),
            ctx,
        );
    }
}

/// Opens the stored zip `inner` found at `path` as a window of its parent. Its size is charged
/// to the budget as reading it out would be, so that entries sharing the same bytes (an
/// overlapping-entries bomb) cannot multiply work for free.
fn zip_in_place(path: &str, inner: View<'_>, ctx: &Ctx<'_>) {
    ctx.sink.file(path, ctx.commit);
    let nested = ctx.nested();
    if nested.depth >= ctx.limits.max_depth {
        return ctx.sink.skipped(
            path,
            format!("archive nested deeper than {} levels; not opened", ctx.limits.max_depth),
        );
    }
    if !ctx.budget.charge_budget(inner.len) {
        return ctx.sink.skipped(path, not_opened(ctx));
    }
    if let Err(Stop::Say(reason)) = zip_in(path, inner, &nested) {
        ctx.sink.skipped(path, reason);
    }
}

/// Where a zip's bytes are.
#[derive(Debug, Clone, Copy)]
enum Backing<'a> {
    Memory(&'a [u8]),
    File(&'a File),
}

/// A window of a zip's bytes, read by position: what a stored zip inside another is opened
/// on, without a copy.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    backing: Backing<'a>,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> View<'a> {
    fn memory(bytes: &'a [u8]) -> Self {
        View {
            backing: Backing::Memory(bytes),
            start: 0,
            len: bytes.len() as u64,
            pos: 0,
        }
    }

    fn file(file: &'a File) -> io::Result<Self> {
        Ok(View {
            backing: Backing::File(file),
            start: 0,
            len: file.metadata()?.len(),
            pos: 0,
        })
    }

    /// The `len` bytes at `at` (relative to this window), when they are inside it.
    fn sub(&self, at: u64, len: u64) -> Option<View<'a>> {
        (at.checked_add(len)? <= self.len).then(|| View {
            backing: self.backing,
            start: self.start + at,
            len,
            pos: 0,
        })
    }

    /// Whether the window starts like a zip.
    fn is_zip(&self) -> bool {
        let mut magic = [0u8; 4];
        let mut view = *self;
        view.read_exact(&mut magic).is_ok() && sniff(&magic) == Kind::Zip
    }
}

impl Read for View<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let at = self.start + self.pos;
        let n = match self.backing {
            Backing::Memory(bytes) => {
                let at = at as usize; // within `bytes`, a slice in memory
                buf[..want].copy_from_slice(&bytes[at..at + want]);
                want
            }
            Backing::File(file) => file.read_at(&mut buf[..want], at)?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for View<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

// === tar ===

/// A tar, streamed: regular files only, each member's remainder skipped by the tar reader
/// (never held). `what` names it in reasons (`tar`, `tar in gzip stream`).
fn open_tar(path: &str, content: &mut dyn Read, what: &str, ctx: &Ctx<'_>) -> Result<(), Stop> {
    let mut archive = tar::Archive::new(content);
    let mut entries = archive
        .entries()
        .map_err(|e| describe(&format!("not a readable {what}"), &e))?;
    loop {
        let mut entry = match entries.next() {
            None => return Ok(()),
            Some(Ok(entry)) => entry,
            Some(Err(e)) => return Err(describe(&format!("truncated or corrupt {what}"), &e)),
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.strip_prefix("./").unwrap_or(&name).to_owned();
        member(&format!("{path}!{name}"), &mut entry, Charge::None, None, ctx);
    }
}

// === compressed streams ===

/// What a gzip or zstd stream expands to: a tar or zip is opened in place (same path, same
/// depth); anything else is dispatched one level down as `path!name`.
fn expanded<R: Read>(
    path: &str,
    name: Option<String>,
    head: Vec<u8>,
    mut rest: Limited<'_, R>,
    format: &str,
    ctx: &Ctx<'_>,
) -> Result<(), Stop> {
    let kind = sniff(&head);
    if is_archive(kind) {
        rest.cap = u64::MAX;
    }
    match kind {
        Kind::Tar | Kind::Zip => {
            let mut all = head.as_slice().chain(&mut rest);
            if kind == Kind::Tar {
                open_tar(path, &mut all, &format!("tar in {format} stream"), ctx)?;
            } else {
                open_zip(path, &mut all, ctx)?;
            }
            // Read to the end of the stream (a tar's padding), so that a truncated or corrupt
            // stream is noticed even when it breaks off where the archive could have ended.
            io::copy(&mut all, &mut io::sink())
                .map(drop)
                .map_err(|e| describe(&format!("truncated or corrupt {format} stream"), &e))
        }
        _ => {
            let name = name.unwrap_or_else(|| inner_name(path));
            dispatch(
                &format!("{path}!{name}"),
                &mut head.as_slice().chain(rest),
                &ctx.nested(),
            );
            Ok(())
        }
    }
}

/// The name of what a compressed file holds, from its own name: `x.gz` → `x`,
/// `x.tgz` → `x.tar`; a name without such a suffix is kept.
fn inner_name(path: &str) -> String {
    let last = path.rsplit(['!', '/']).next().unwrap_or(path);
    for (suffix, replacement) in [
        (".tgz", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".gzip", ""),
        (".zst", ""),
        (".zstd", ""),
    ] {
        if let Some(stem) = last.strip_suffix(suffix).filter(|s| !s.is_empty()) {
            return format!("{stem}{replacement}");
        }
    }
    last.to_owned()
}

/// The file name a gzip header records, without any directory.
fn header_name(raw: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(raw);
    let base = name.rsplit(['/', '\\']).next().unwrap_or(&name).trim();
    (!base.is_empty()).then(|| base.to_owned())
}

// === members and limits ===

/// Dispatches one member one level down. Text is cut at `max_member`; a member that is an
/// archive is not (its own members are, and a zip is held only up to `max_member`), but once
/// the budget is spent it is not opened at all. A zip member whose declared size is past
/// `max_member` is reported and not read, unless it is a tar or compressed stream (read as a
/// stream, so any size costs bounded memory).
fn member(path: &str, content: &mut dyn Read, charge: Charge, declared: Option<u64>, ctx: &Ctx<'_>) {
    let mut limited = Limited::new(content, path, ctx, charge);
    let head = match read_head(&mut limited) {
        Ok(head) => head,
        Err(e) => return say(ctx, path, describe("cannot read", &e)),
    };
    let kind = sniff(&head);
    if is_archive(kind) {
        if ctx.budget.spent() {
            return ctx.sink.skipped(path, not_opened(ctx));
        }
        limited.cap = u64::MAX;
    }
    let streamed = matches!(kind, Kind::Tar | Kind::Gzip | Kind::Zstd);
    if let Some(size) = declared.filter(|size| !streamed && *size > ctx.limits.max_member) {
        return ctx.sink.skipped(
            path,
            format!(
                "member expands to {}, past the {} limit for one member; not scanned",
                Size(size),
                Size(ctx.limits.max_member)
            ),
        );
    }
    dispatch(path, &mut head.as_slice().chain(limited), &ctx.nested());
}

/// Why a nested archive is not opened once the budget is spent.
fn not_opened(ctx: &Ctx<'_>) -> String {
    format!(
        "archive not opened: the archive it is in expanded past {} in total",
        Size(ctx.limits.max_expanded)
    )
}

/// Reports `stop` at `path` unless it was reported already.
fn say(ctx: &Ctx<'_>, path: &str, stop: Stop) {
    if let Stop::Say(reason) = stop {
        ctx.sink.skipped(path, reason);
    }
}

/// Content that is opened as an archive rather than scanned.
fn is_archive(kind: Kind) -> bool {
    !matches!(kind, Kind::Text(_) | Kind::Binary)
}

/// Reads up to [`SNIFF_LEN`] bytes.
fn read_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    reader.take(SNIFF_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Why reading stopped early.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum Cut {
    /// One member is larger than `max_member`.
    #[error("member is larger than {}; the rest of it is not scanned", Size(*.0))]
    Member(u64),
    /// The top-level input expanded past `max_expanded` and its grace.
    #[error("archive expands past {} in total; the rest of it is not scanned", Size(*.0))]
    Budget(u64),
    /// Past the budget, the member expands more than [`GRACE_RATIO`] times its size, or
    /// more than its share of the grace.
    #[error(
        "the archive expanded past {} in total, and past that a member is read only while it \
         stays small ({GRACE_RATIO} times its compressed size, and an eighth of the grace); the \
         rest of it is not scanned",
        Size(*.0)
    )]
    Grace(u64),
}

/// What a [`Limited`] reader charges to the budget.
#[derive(Debug, Clone, Copy)]
enum Charge {
    /// Nothing (a member of a tar: its bytes are charged where they were expanded, if at all).
    None,
    /// A decompressed stream: all of it, past the budget from its grace.
    Stream,
    /// A zip member: all of it, past the budget only up to `grace_cap` bytes of grace.
    Member { grace_cap: u64 },
}

/// A reader that stops past `cap` bytes and charges what it reads to the budget. A cut is
/// reported at its `path` once, and every later read fails with a [`Reported`] error.
struct Limited<'c, R> {
    inner: R,
    path: &'c str,
    ctx: &'c Ctx<'c>,
    charge: Charge,
    cap: u64,
    read: u64,
    on_grace: u64,
    cut: Option<Cut>,
}

impl<'c, R: Read> Limited<'c, R> {
    fn new(inner: R, path: &'c str, ctx: &'c Ctx<'c>, charge: Charge) -> Self {
        Limited {
            inner,
            path,
            ctx,
            charge,
            cap: ctx.limits.max_member,
            read: 0,
            on_grace: 0,
            cut: None,
        }
    }

    /// The cut, if reading `n` more bytes makes one.
    fn check(&mut self, n: u64) -> Option<Cut> {
        if self.read > self.cap {
            return Some(Cut::Member(self.cap));
        }
        let grace_cap = match self.charge {
            Charge::None => return None,
            _ if n == 0 => return None,
            Charge::Stream => u64::MAX,
            Charge::Member { grace_cap } => grace_cap,
        }
        .min(self.ctx.budget.grace_share);
        match self.ctx.budget.charge(n) {
            Charged::Budget => None,
            Charged::Grace => {
                self.on_grace += n;
                let max = self.ctx.limits.max_expanded;
                // A stream cannot be skipped past: its cut is the budget's.
                (self.on_grace > grace_cap).then_some(match self.charge {
                    Charge::Stream => Cut::Budget(max),
                    _ => Cut::Grace(max),
                })
            }
            Charged::Out => Some(Cut::Budget(self.ctx.limits.max_expanded)),
        }
    }
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(cut) = self.cut {
            return Err(io::Error::other(Reported(cut.to_string())));
        }
        // Never more than one byte past the cap: enough to tell that it is past.
        let room = self.cap.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        match self.check(n as u64) {
            Some(cut) => {
                self.cut = Some(cut);
                self.ctx.sink.skipped(self.path, cut.to_string());
                Err(io::Error::other(Reported(cut.to_string())))
            }
            None => Ok(n),
        }
    }
}

/// What to do about `e`: nothing when it was reported where it happened, else say it after
/// `context`.
fn describe(context: &str, e: &io::Error) -> Stop {
    if is_reported(e) {
        Stop::Quiet
    } else {
        Stop::Say(format!("{context}: {e}"))
    }
}

/// A byte count for people: `256 MiB`, `1.5 GiB`, `512 bytes`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut scaled = self.0 as f64;
        while scaled >= 1024.0 && unit + 1 < UNITS.len() {
            scaled /= 1024.0;
            unit += 1;
        }
        if unit == 0 || scaled.fract() == 0.0 {
            write!(f, "{} {}", scaled as u64, UNITS[unit])
        } else {
            write!(f, "{scaled:.1} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::source::{Budget, Commit, Encoding, Limits, Sink};

    /// A sink that keeps what it is given, reading text as the scan driver does.
    #[derive(Default)]
    struct Recorder {
        texts: Mutex<Vec<(String, String)>>,
        skipped: Mutex<Vec<(String, String)>>,
    }

    impl Sink for Recorder {
        fn text(&self, path: &str, content: &mut dyn Read, _: Encoding, _: Option<&Arc<Commit>>) {
            let mut text = Vec::new();
            if let Err(e) = content.read_to_end(&mut text) {
                if !is_reported(&e) {
                    self.skipped(path, format!("cannot read: {e}"));
                }
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            self.texts.lock().unwrap().push((path.to_owned(), text));
        }

        fn skipped(&self, path: &str, reason: String) {
            self.skipped.lock().unwrap().push((path.to_owned(), reason));
        }

        fn outside(&self, path: &str, reason: String) {
            self.skipped(path, reason)
        }
    }

    impl Recorder {
        fn paths(&self) -> Vec<String> {
            self.texts.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
        }

        fn text(&self, path: &str) -> Option<String> {
            let texts = self.texts.lock().unwrap();
            texts.iter().find(|(p, _)| p == path).map(|(_, t)| t.clone())
        }

        fn notices(&self) -> Vec<(String, String)> {
            self.skipped.lock().unwrap().clone()
        }
    }

    /// Dispatches `bytes` found at `path` as a top-level input.
    fn scan(path: &str, bytes: &[u8], limits: &Limits) -> Recorder {
        let sink = Recorder::default();
        let budget = Budget::new(limits);
        dispatch(path, &mut &bytes[..], &Ctx::top(&sink, limits, None, &budget));
        sink
    }

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zst(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    /// Incompressible bytes (a tar member that a truncation can fall into).
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn zip_files_reach_the_sink_binaries_too_and_directories_do_not() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        writer.add_directory("dir/", options).unwrap();
        writer.start_file("dir/x.env", options).unwrap();
        writer.write_all(b"TOKEN=one\n").unwrap();
        writer.start_file("lib.so", options).unwrap();
        writer.write_all(b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
        let bytes = writer.finish().unwrap().into_inner();

        let sink = scan("app.jar", &bytes, &Limits::default());
        assert_eq!(sink.paths(), vec!["app.jar!dir/x.env", "app.jar!lib.so"]);
        assert_eq!(sink.text("app.jar!dir/x.env").as_deref(), Some("TOKEN=one\n"));
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
    }

    #[test]
    fn a_zip_read_in_place_is_not_held_in_memory_nor_limited() {
        let limits = Limits {
            max_member: 1024,
            ..Limits::default()
        };
        let bytes = zip(&[("noise.bin", &noise(4096)), ("x.env", b"A=one\n")]);
        let sink = Recorder::default();
        let budget = Budget::new(&limits);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        open_zip_file("big.zip", &file, &Ctx::top(&sink, &limits, None, &budget)).unwrap();
        assert_eq!(sink.paths(), vec!["big.zip!x.env"]);
        assert_eq!(sink.notices().len(), 1, "noise.bin declares more than max_member");
        // Read from a stream, the same zip is past max_member.
        let sink = scan("big.zip", &bytes, &limits);
        assert!(
            sink.notices()[0].1.contains("zip larger than 1 KiB"),
            "{:?}",
            sink.notices()
        );
    }

    #[test]
    fn tar_regular_files_are_members_and_links_are_not() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        builder.append_data(&mut dir, "./etc/", &b""[..]).unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(6);
        builder
            .append_data(&mut file, "./etc/app.env", &b"A=one\n"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder.append_link(&mut link, "etc/link.env", "app.env").unwrap();
        let long = format!("{}/deep.env", "d".repeat(150));
        let mut deep = tar::Header::new_gnu();
        deep.set_size(6);
        builder.append_data(&mut deep, &long, &b"B=two\n"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();

        let sink = scan("layer.tar", &bytes, &Limits::default());
        assert_eq!(
            sink.paths(),
            vec!["layer.tar!etc/app.env".to_owned(), format!("layer.tar!{long}")]
        );
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
    }

    #[test]
    fn compressed_tars_are_opened_in_place() {
        let bytes = tar(&[("etc/app.env", b"A=one\n")]);
        let sink = scan("a.tgz", &gz(&bytes), &Limits::default());
        assert_eq!(sink.paths(), vec!["a.tgz!etc/app.env"]);
        let sink = scan("a.tar.zst", &zst(&bytes), &Limits::default());
        assert_eq!(sink.paths(), vec!["a.tar.zst!etc/app.env"]);
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
    }

    #[test]
    fn compressed_text_is_named_after_the_file_or_the_gzip_header() {
        let sink = scan("logs/app.log.gz", &gz(b"line one\n"), &Limits::default());
        assert_eq!(sink.paths(), vec!["logs/app.log.gz!app.log"]);
        assert_eq!(sink.text("logs/app.log.gz!app.log").as_deref(), Some("line one\n"));

        let mut named = flate2::GzBuilder::new()
            .filename("settings.env")
            .write(Vec::new(), flate2::Compression::default());
        named.write_all(b"A=one\n").unwrap();
        let sink = scan("blob", &named.finish().unwrap(), &Limits::default());
        assert_eq!(sink.paths(), vec!["blob!settings.env"]);

        let sink = scan("x.zst", &zst(b"A=one\n"), &Limits::default());
        assert_eq!(sink.paths(), vec!["x.zst!x"]);
        assert_eq!(inner_name("a/b.tgz"), "b.tar");
        assert_eq!(inner_name("a.zip!blobs/sha256/abc"), "abc");
    }

    #[test]
    fn archives_nest_as_a_bang_path() {
        let inner = zip(&[("dir/x.env", b"TOKEN=deep\n")]);
        let outer = gz(&tar(&[("readme.txt", b"hello\n"), ("inner.zip", &inner)]));
        let sink = scan("a.tgz", &outer, &Limits::default());
        assert_eq!(sink.paths(), vec!["a.tgz!readme.txt", "a.tgz!inner.zip!dir/x.env"]);
        assert_eq!(sink.text("a.tgz!inner.zip!dir/x.env").as_deref(), Some("TOKEN=deep\n"));
    }

    #[test]
    fn image_layers_are_scanned_one_by_one_whiteouts_and_all() {
        let added = tar(&[("app/.env", b"TOKEN=old\n")]);
        let deleted = tar(&[("app/.wh..env", b"")]);
        let manifest = br#"[{"Config":"cfg.json","Layers":["l1/layer.tar","l2/layer.tar"]}]"#;
        let legacy = tar(&[
            ("manifest.json", manifest),
            ("l1/layer.tar", &added),
            ("l2/layer.tar", &deleted),
        ]);
        let sink = scan("image.tar", &legacy, &Limits::default());
        assert!(
            sink.paths().contains(&"image.tar!l1/layer.tar!app/.env".to_owned()),
            "{:?}",
            sink.paths()
        );

        let oci = tar(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("blobs/sha256/aaa", &gz(&added)),
            ("blobs/sha256/bbb", &gz(&deleted)),
        ]);
        let sink = scan("oci.tar", &oci, &Limits::default());
        assert!(
            sink.paths().contains(&"oci.tar!blobs/sha256/aaa!app/.env".to_owned()),
            "{:?}",
            sink.paths()
        );
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
    }

    #[test]
    fn a_truncated_gzip_is_reported_and_what_came_before_is_kept() {
        let whole = gz(&tar(&[("first.env", b"A=one\n"), ("noise.bin", &noise(200_000))]));
        let cut = &whole[..whole.len() - 50_000];
        let sink = scan("a.tgz", cut, &Limits::default());
        assert_eq!(sink.paths(), vec!["a.tgz!first.env", "a.tgz!noise.bin"]);
        let skipped = sink.notices();
        assert!(
            skipped.iter().any(|(p, r)| p == "a.tgz" && r.contains("truncated")),
            "{skipped:?}"
        );

        // Cut inside the gzip trailer: the tar is whole, the stream is not.
        let whole = gz(&tar(&[("first.env", b"A=one\n"), ("zeros.bin", &[0; 100_000])]));
        let sink = scan("b.tgz", &whole[..whole.len() - 4], &Limits::default());
        assert_eq!(sink.paths(), vec!["b.tgz!first.env", "b.tgz!zeros.bin"]);
        assert_eq!(sink.notices().len(), 1, "{:?}", sink.notices());
        assert!(sink.notices()[0].1.contains("gzip"), "{:?}", sink.notices());
    }

    #[test]
    fn a_truncated_tar_is_reported() {
        let whole = tar(&[("first.env", b"A=one\n"), ("second.env", &[b'x'; 5000])]);
        let sink = scan("a.tar", &whole[..3000], &Limits::default());
        assert_eq!(sink.paths()[0], "a.tar!first.env");
        let skipped = sink.notices();
        assert!(
            skipped.iter().any(|(p, r)| p == "a.tar" && r.contains("truncated")),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_corrupt_zip_is_reported_and_a_corrupt_member_skips_only_itself() {
        let sink = scan("bad.zip", b"PK\x03\x04 this is not a zip at all", &Limits::default());
        assert!(sink.paths().is_empty());
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "bad.zip");
        assert!(skipped[0].1.contains("zip"), "{skipped:?}");

        let mut bytes = zip(&[("a.env", &b"A=one\n".repeat(1000)), ("b.env", b"B=two\n")]);
        // Break the deflate stream of the first member (it starts after its 30-byte local
        // header and 5-byte name).
        for byte in &mut bytes[35..45] {
            *byte = 0xff;
        }
        let sink = scan("half.zip", &bytes, &Limits::default());
        assert_eq!(sink.text("half.zip!b.env").as_deref(), Some("B=two\n"));
        assert!(
            sink.notices().iter().any(|(p, _)| p == "half.zip!a.env"),
            "{:?}",
            sink.notices()
        );
    }

    #[test]
    fn a_spent_budget_cuts_the_archive_once_and_stops_it() {
        let limits = Limits {
            max_expanded: 1024 * 1024,
            ..Limits::default()
        };
        let big = b"A=one\n".repeat(5 * 1024 * 1024 / 6);
        let bytes = zip(&[("big.env", &big), ("after.env", b"B=two\n")]);
        let sink = scan("bomb.zip", &bytes, &limits);
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "bomb.zip!big.env");
        assert!(skipped[0].1.contains("expanded past 1 MiB in total"), "{skipped:?}");
        assert!(sink.text("bomb.zip!big.env").unwrap().len() < 2 * 1024 * 1024);
        // What comes after the filler is cheap, and still scanned.
        assert_eq!(sink.text("bomb.zip!after.env").as_deref(), Some("B=two\n"));

        // In a tgz every member comes from the stream that was cut: what follows is not read,
        // and that is reported once.
        let bytes = gz(&tar(&[("big.env", &big), ("after.env", b"B=two\n")]));
        let sink = scan("bomb.tgz", &bytes, &limits);
        assert_eq!(sink.notices().len(), 1, "{:?}", sink.notices());
        assert!(
            sink.notices()[0].1.contains("expands past 1 MiB"),
            "{:?}",
            sink.notices()
        );
        assert_eq!(sink.paths(), vec!["bomb.tgz!big.env"]);
    }

    #[test]
    fn a_member_past_the_limit_is_cut_and_the_next_one_is_scanned() {
        let limits = Limits {
            max_member: 1024 * 1024,
            ..Limits::default()
        };
        let big = b"A=one\n".repeat(2 * 1024 * 1024 / 6);
        let bytes = tar(&[("big.env", &big), ("after.env", b"B=two\n")]);
        let sink = scan("a.tar", &bytes, &limits);
        assert_eq!(sink.text("a.tar!after.env").as_deref(), Some("B=two\n"));
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "a.tar!big.env");
        assert!(skipped[0].1.contains("larger than 1 MiB"), "{skipped:?}");

        // A zip member that declares it is too large is not read at all.
        let zeros = vec![0u8; 2 * 1024 * 1024];
        let bytes = zip(&[("zeros.bin", &zeros), ("after.env", b"B=two\n")]);
        let sink = scan("a.zip", &bytes, &limits);
        assert_eq!(sink.paths(), vec!["a.zip!after.env"]);
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "a.zip!zeros.bin");
        assert!(skipped[0].1.contains("expands to 2 MiB"), "{skipped:?}");

        // A zip within a zip is held in memory: one past the limit is not opened.
        let mut stored = zip::ZipWriter::new(Cursor::new(Vec::new()));
        stored
            .start_file(
                "zeros.bin",
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
        stored.write_all(&zeros).unwrap();
        let inner = stored.finish().unwrap().into_inner();
        let sink = scan("a.zip", &zip(&[("inner.zip", &inner)]), &limits);
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "a.zip!inner.zip");
        assert!(skipped[0].1.contains("past the 1 MiB limit"), "{skipped:?}");

        // A layer larger than the member limit is a tar: its members are cut, not the layer.
        let layer = tar(&[("pad.bin", &zeros), ("app.env", b"C=three\n")]);
        let sink = scan("image.tar", &tar(&[("layer.tar", &layer)]), &limits);
        assert_eq!(
            sink.paths(),
            vec!["image.tar!layer.tar!pad.bin", "image.tar!layer.tar!app.env"]
        );
        assert_eq!(sink.notices().len(), 1, "only pad.bin is cut: {:?}", sink.notices());
        assert_eq!(sink.notices()[0].0, "image.tar!layer.tar!pad.bin");
    }

    #[test]
    fn nesting_stops_at_the_depth_limit() {
        let limits = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        let inner = zip(&[("x.env", b"A=one\n")]);
        let outer = zip(&[("top.env", b"B=two\n"), ("inner.zip", &inner)]);
        let sink = scan("outer.zip", &outer, &limits);
        assert_eq!(sink.paths(), vec!["outer.zip!top.env"]);
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "outer.zip!inner.zip");
        assert!(skipped[0].1.contains("deeper than 1"), "{skipped:?}");

        // A compressed stream within a compressed stream is a level of its own.
        let sink = scan("x.gz", &gz(&gz(&gz(b"A=one\n"))), &limits);
        assert!(sink.paths().is_empty());
        assert_eq!(sink.notices().len(), 1, "{:?}", sink.notices());
    }

    fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        for (name, data) in members {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn after_the_budget_what_is_cheap_is_still_scanned() {
        let limits = Limits {
            max_expanded: 1024 * 1024,
            ..Limits::default()
        };
        let filler = vec![b'a'; 4 * 1024 * 1024];
        let bytes = {
            let mut w = zip::ZipWriter::new_append(Cursor::new(zip(&[
                ("filler.txt", &filler),
                ("second-filler.txt", &filler),
                ("small.env", b"A=one\n"),
                ("noise.bin", &noise(64 * 1024)),
            ])))
            .unwrap();
            let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            w.start_file("stored.env", stored).unwrap();
            w.write_all(b"B=two\n").unwrap();
            w.start_file("inner.zip", stored).unwrap();
            w.write_all(&zip(&[("deep.env", b"C=three\n")])).unwrap();
            w.finish().unwrap().into_inner()
        };
        let sink = scan("bomb.zip", &bytes, &limits);
        assert_eq!(sink.text("bomb.zip!small.env").as_deref(), Some("A=one\n"));
        assert_eq!(sink.text("bomb.zip!stored.env").as_deref(), Some("B=two\n"));
        assert!(
            sink.text("bomb.zip!noise.bin").is_some(),
            "incompressible: cheap, read whole"
        );
        let skipped = sink.notices();
        let reason = |path: &str| {
            skipped
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| panic!("{path} not reported: {skipped:?}"))
        };
        assert!(reason("bomb.zip!filler.txt").contains("stays small"), "{skipped:?}");
        assert!(
            reason("bomb.zip!second-filler.txt").contains("stays small"),
            "{skipped:?}"
        );
        assert!(reason("bomb.zip!inner.zip").contains("not opened"), "{skipped:?}");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
    }

    #[test]
    fn a_stored_zip_is_opened_where_it_lies_and_a_compressed_one_is_spilled() {
        let inner = stored_zip(&[("noise.bin", &noise(3 * 1024 * 1024)), ("deep.env", b"A=one\n")]);
        assert!(inner.len() as u64 > IN_MEMORY);
        let outer = stored_zip(&[("inner.zip", &inner)]);
        let sink = scan("outer.zip", &outer, &Limits::default());
        assert_eq!(sink.text("outer.zip!inner.zip!deep.env").as_deref(), Some("A=one\n"));
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());

        // Deflated: read out of the stream into a temporary file, then opened there.
        let outer = zip(&[("inner.zip", &inner)]);
        let sink = scan("outer.zip", &outer, &Limits::default());
        assert_eq!(sink.text("outer.zip!inner.zip!deep.env").as_deref(), Some("A=one\n"));
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
    }

    #[test]
    fn old_v7_tars_are_read_like_the_others() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_old();
        header.set_size(6);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "etc/app.env", &b"A=one\n"[..])
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        assert_ne!(&bytes[257..262], b"ustar");
        let sink = scan("old.tar", &bytes, &Limits::default());
        assert_eq!(sink.paths(), vec!["old.tar!etc/app.env"]);
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
        let sink = scan("old.tgz", &gz(&bytes), &Limits::default());
        assert_eq!(sink.paths(), vec!["old.tgz!etc/app.env"]);
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(Size(512).to_string(), "512 bytes");
        assert_eq!(Size(256 * 1024 * 1024).to_string(), "256 MiB");
        assert_eq!(Size(1536 * 1024 * 1024).to_string(), "1.5 GiB");
    }
}
