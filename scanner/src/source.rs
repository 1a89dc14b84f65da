//! Sources: where bytes come from. Files, git history, the index and archives all end in
//! [`dispatch`], which sniffs the content and hands text to a [`Sink`] (the scan driver);
//! the engine never knows which source it is reading.

pub mod archive;
pub mod files;
pub mod git;

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Why a part of the input could not be scanned (reported; the rest is still scanned). A
/// skipped part makes the scan incomplete (exit code 3 unless `--allow-skipped`); a part
/// `outside` the input (a submodule, whose content is another repository) is only reported.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// What was skipped.
    pub path: String,
    /// Why.
    pub reason: String,
    /// Not part of this input (a submodule): reported, never counted as skipped.
    pub outside: bool,
}

/// The commit that introduced a blob (history scans only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    /// Full commit id.
    pub id: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub email: String,
    /// Author date, RFC 3339.
    pub date: String,
}

/// How text is encoded, as sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 or any ASCII-compatible encoding.
    Utf8,
    /// UTF-16, little-endian (with or without BOM).
    Utf16Le,
    /// UTF-16, big-endian (with or without BOM).
    Utf16Be,
}

/// Where text goes: the scan driver. Sources call it from many threads at once.
pub trait Sink: Sync {
    /// Text to scan: `path` as the user would type it (`A!B!C` inside archives), `content`
    /// read to its end (it may be larger than memory should hold: read it in windows).
    fn text(&self, path: &str, content: &mut dyn Read, encoding: Encoding, commit: Option<&Arc<Commit>>);
    /// A file, blob or archive member met (archive or not), before its content: rules that
    /// match paths alone report it here. Called once per path and commit.
    fn file(&self, _path: &str, _commit: Option<&Arc<Commit>>) {}
    /// Text already in memory (a git blob, a small member): as [`Sink::text`], without
    /// reading it through a stream first.
    fn text_bytes(&self, path: &str, bytes: &[u8], encoding: Encoding, commit: Option<&Arc<Commit>>) {
        self.text(path, &mut &bytes[..], encoding, commit)
    }
    /// Whether `path` (a directory when `dir`) is excluded from the scan (`--exclude`,
    /// `.sidekeyignore`): a walk does not read it.
    fn excluded(&self, _path: &str, _dir: bool) -> bool {
        false
    }
    /// A part of the input that was not scanned, and why: the scan is incomplete.
    fn skipped(&self, path: &str, reason: String);
    /// Something named in the input whose content is elsewhere (a submodule), and why it is
    /// not scanned: reported, but the scan is complete without it.
    fn outside(&self, path: &str, reason: String);
}

/// Bounds on what archives may cost: a zip bomb is cut off and reported, never followed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest member scanned as text or held in memory (a nested zip, a zip read as a
    /// stream); a zip member declaring more is not read. Members that are tars or compressed
    /// streams are read as streams and limited member by member.
    pub max_member: u64,
    /// Most bytes expanded out of one top-level archive, all members and nesting together.
    pub max_expanded: u64,
    /// Deepest nesting of archives within archives (`A!B!C` is depth 2).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member: 256 * 1024 * 1024,
            max_expanded: 4 * 1024 * 1024 * 1024,
            max_depth: 8,
        }
    }
}

/// What archives under one top-level input may still expand. When the budget is spent, a
/// grace allowance (a sixteenth of it, at least 1 MiB) keeps what is cheap scanned: members
/// that are small, stored, or expand no more than [`archive`] allows past the budget, each
/// taking at most an eighth of the grace (so one filler cannot take it all); nested archives
/// are no longer opened. Everything left out is reported as skipped.
#[derive(Debug)]
pub struct Budget {
    left: AtomicU64,
    grace: AtomicU64,
    /// The most one member or stream may take of the grace.
    pub grace_share: u64,
    spent: AtomicBool,
    exhausted: AtomicBool,
}

/// Where [`Budget::charge`] took bytes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charged {
    /// The budget.
    Budget,
    /// The grace allowance, the budget being spent.
    Grace,
    /// Neither: both are spent.
    Out,
}

impl Budget {
    /// A full budget for one top-level input.
    pub fn new(limits: &Limits) -> Self {
        let grace = (limits.max_expanded / 16).max(1024 * 1024);
        Budget {
            left: AtomicU64::new(limits.max_expanded),
            grace: AtomicU64::new(grace),
            grace_share: grace / 8,
            spent: AtomicBool::new(false),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Takes `n` expanded bytes from the budget, or once it is spent from the grace.
    pub fn charge(&self, n: u64) -> Charged {
        if !self.spent() && take(&self.left, n) {
            return Charged::Budget;
        }
        self.spent.store(true, Ordering::Relaxed);
        if take(&self.grace, n) {
            Charged::Grace
        } else {
            self.exhausted.store(true, Ordering::Relaxed);
            Charged::Out
        }
    }

    /// Takes `n` bytes from the budget only (opening a nested archive, never done on grace).
    pub fn charge_budget(&self, n: u64) -> bool {
        let taken = !self.spent() && take(&self.left, n);
        if !taken {
            self.spent.store(true, Ordering::Relaxed);
        }
        taken
    }

    /// Whether the grace has run out too: nothing more is expanded.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// Whether the budget (not the grace) has run out.
    pub fn spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }
}

/// Subtracts `n` from `left` if it is there.
fn take(left: &AtomicU64, n: u64) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(n))
        .is_ok()
}

/// A read error whose cause was already reported to the sink where it happened (an archive
/// limit cut a member): whoever reads it stops quietly instead of reporting it again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// Whether `e` is a [`Reported`] one.
pub fn is_reported(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Reported>())
}

/// What one [`dispatch`] needs besides the bytes: where text goes, the limits, and the state of
/// the top-level input it came from.
pub struct Ctx<'a> {
    /// Where text goes.
    pub sink: &'a dyn Sink,
    /// Archive limits.
    pub limits: &'a Limits,
    /// The commit this content came from, for history scans.
    pub commit: Option<&'a Arc<Commit>>,
    /// Archive nesting depth of this content (0: a file, a blob).
    pub depth: usize,
    /// What archives under the same top-level input may still expand.
    pub budget: &'a Budget,
}

impl<'a> Ctx<'a> {
    /// The context of a top-level input (a file, a blob), with its own `budget`.
    pub fn top(sink: &'a dyn Sink, limits: &'a Limits, commit: Option<&'a Arc<Commit>>, budget: &'a Budget) -> Self {
        Ctx {
            sink,
            limits,
            commit,
            depth: 0,
            budget,
        }
    }

    /// The same context, one archive level deeper.
    pub fn nested(&self) -> Ctx<'_> {
        Ctx {
            sink: self.sink,
            limits: self.limits,
            commit: self.commit,
            depth: self.depth + 1,
            budget: self.budget,
        }
    }
}

/// What the first bytes of some content say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A zip archive (also jar, whl, apk, docx...).
    Zip,
    /// A tar archive (also `docker save` output and OCI layers).
    Tar,
    /// A gzip stream (tar.gz, tgz, or a single gzipped file).
    Gzip,
    /// A zstandard stream (tar.zst).
    Zstd,
    /// Text in the given encoding.
    Text(Encoding),
    /// Anything else with a NUL byte near the start: scanned as bytes, never decoded.
    Binary,
}

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 8192;

/// Classifies content by its first bytes (up to [`SNIFF_LEN`]).
pub fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Kind::Zip;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Kind::Zstd;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" || is_v7_tar_header(head) {
        return Kind::Tar;
    }
    if head.starts_with(&[0xff, 0xfe]) {
        return Kind::Text(Encoding::Utf16Le);
    }
    if head.starts_with(&[0xfe, 0xff]) {
        return Kind::Text(Encoding::Utf16Be);
    }
    if !head.contains(&0) {
        return Kind::Text(Encoding::Utf8);
    }
    // UTF-16 without a BOM: ASCII-range text has a NUL in every other byte.
    let pairs = head.len() / 2;
    if pairs >= 8 {
        let zero_at = |parity: usize| {
            head.iter()
                .skip(parity)
                .step_by(2)
                .take(pairs)
                .filter(|b| **b == 0)
                .count()
        };
        let (even, odd) = (zero_at(0), zero_at(1));
        if odd * 10 >= pairs * 9 && even == 0 {
            return Kind::Text(Encoding::Utf16Le);
        }
        if even * 10 >= pairs * 9 && odd == 0 {
            return Kind::Text(Encoding::Utf16Be);
        }
    }
    Kind::Binary
}

/// Whether `head` starts with an old-style (v7, pre-POSIX) tar header: no magic, so the
/// header's own checksum decides (the octal sum of its 512 bytes with the checksum field read
/// as spaces; old tars summed signed bytes, so either sum is accepted), with a name and a mode.
fn is_v7_tar_header(head: &[u8]) -> bool {
    let Some(header) = head.get(..512) else {
        return false;
    };
    let octal = |field: &[u8]| -> Option<u64> {
        let digits = field.trim_ascii_start();
        let end = digits
            .iter()
            .position(|b| *b == 0 || *b == b' ')
            .unwrap_or(digits.len());
        let digits = &digits[..end];
        if digits.is_empty() || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
            return None;
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u64::from_str_radix(d, 8).ok())
    };
    let (Some(recorded), Some(_mode)) = (octal(&header[148..156]), octal(&header[100..108])) else {
        return false;
    };
    if header[0] == 0 {
        return false; // no name: an end-of-archive block, or not a tar
    }
    let field = |i: usize| if (148..156).contains(&i) { b' ' } else { header[i] };
    let unsigned: u64 = (0..512).map(|i| u64::from(field(i))).sum();
    let signed: i64 = (0..512).map(|i| i64::from(field(i) as i8)).sum();
    recorded == unsigned || i64::try_from(recorded).is_ok_and(|r| r == signed)
}

/// A byte buffer lent by this thread's `home` and given back when dropped (kept for the next
/// borrower unless it grew past `keep`): texts read one after another need no allocation,
/// growth or fresh pages each. A borrower that finds the buffer lent already gets a new one.
pub(crate) struct ThreadBuf {
    buf: Vec<u8>,
    home: &'static std::thread::LocalKey<std::cell::Cell<Vec<u8>>>,
    keep: usize,
}

impl ThreadBuf {
    pub(crate) fn lend(home: &'static std::thread::LocalKey<std::cell::Cell<Vec<u8>>>, keep: usize) -> ThreadBuf {
        let mut buf = home.take();
        buf.clear();
        ThreadBuf { buf, home, keep }
    }
}

impl std::ops::Deref for ThreadBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl std::ops::DerefMut for ThreadBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Drop for ThreadBuf {
    fn drop(&mut self) {
        if self.buf.capacity() <= self.keep {
            self.home.set(std::mem::take(&mut self.buf));
        }
    }
}

/// Sniffs `content` and hands it on: archives are opened member by member (within the
/// limits); everything else goes to the sink. Binary content is scanned as the bytes it is
/// (a secret is ASCII, and one NUL byte must not hide it). `path` is the name the user would
/// type for this content.
pub fn dispatch(path: &str, content: &mut dyn Read, ctx: &Ctx<'_>) {
    ctx.sink.file(path, ctx.commit);
    let mut reader = BufReader::with_capacity(64 * 1024, content);
    let head = match fill_head(&mut reader) {
        Ok(head) => head,
        Err(e) if is_reported(&e) => return,
        Err(e) => return ctx.sink.skipped(path, format!("cannot read: {e}")),
    };
    let mut all = head.as_slice().chain(reader);
    match sniff(&head) {
        Kind::Text(encoding) => ctx.sink.text(path, &mut all, encoding, ctx.commit),
        Kind::Binary => ctx.sink.text(path, &mut all, Encoding::Utf8, ctx.commit),
        kind => {
            if ctx.depth >= ctx.limits.max_depth {
                return ctx.sink.skipped(
                    path,
                    format!("archive nested deeper than {} levels; not opened", ctx.limits.max_depth),
                );
            }
            if let Err(archive::Stop::Say(reason)) = archive::open(kind, path, &mut all, ctx) {
                ctx.sink.skipped(path, reason);
            }
        }
    }
}

/// As [`dispatch`], for content already in memory.
pub fn dispatch_bytes(path: &str, bytes: &[u8], ctx: &Ctx<'_>) {
    let text = |encoding| {
        ctx.sink.file(path, ctx.commit);
        ctx.sink.text_bytes(path, bytes, encoding, ctx.commit)
    };
    match sniff(&bytes[..bytes.len().min(SNIFF_LEN)]) {
        Kind::Text(encoding) => text(encoding),
        Kind::Binary => text(Encoding::Utf8),
        _ => dispatch(path, &mut &bytes[..], ctx),
    }
}

/// Reads up to [`SNIFF_LEN`] bytes, leaving the rest in `reader`.
fn fill_head(reader: &mut BufReader<&mut dyn Read>) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    while head.len() < SNIFF_LEN {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(SNIFF_LEN - head.len());
        head.extend_from_slice(&buf[..n]);
        reader.consume(n);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_tells_archives_text_and_binary_apart() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Kind::Zstd);
        let mut tar = vec![0u8; 512];
        tar[..4].copy_from_slice(b"file");
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Kind::Tar);
        let mut v7 = tar::Header::new_old();
        v7.set_path("etc/app.env").unwrap();
        v7.set_size(6);
        v7.set_mode(0o644);
        v7.set_cksum();
        assert_eq!(sniff(v7.as_bytes()), Kind::Tar);
        let mut wrong = *v7.as_bytes();
        wrong[0] ^= 1;
        assert_ne!(sniff(&wrong), Kind::Tar, "a bad checksum is not a header");
        assert_eq!(sniff(b"key = value\n"), Kind::Text(Encoding::Utf8));
        assert_eq!(sniff(b""), Kind::Text(Encoding::Utf8));
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\x00\x00\x00"), Kind::Binary);
        let le: Vec<u8> = "token = abcdefgh"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let be: Vec<u8> = "token = abcdefgh"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(sniff(&le), Kind::Text(Encoding::Utf16Le));
        assert_eq!(sniff(&be), Kind::Text(Encoding::Utf16Be));
        assert_eq!(sniff(&[&[0xff, 0xfe][..], &le].concat()), Kind::Text(Encoding::Utf16Le));
        assert_eq!(sniff(&vec![0u8; 4096]), Kind::Binary);
    }
}
