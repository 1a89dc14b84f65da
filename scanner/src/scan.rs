//! The scan driver: the [`Sink`] every source writes to. It reads text in windows (so a
//! large file costs bounded memory), decodes UTF-16, runs the engine, follows base64 blobs a
//! bounded number of levels, applies inline allows and the baseline, and collects findings.

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sidekey::SecretString;

use crate::allow;
use crate::engine::{Engine, Match};
use crate::finding::Finding;
use crate::owned::Owned;
use crate::source::{Commit, Encoding, Sink, Skipped, ThreadBuf};
use crate::views::View;

/// Bytes scanned at once; longer content is read in windows of this size.
const WINDOW: usize = 32 * 1024 * 1024;
/// Bytes each window repeats of the previous one, so a secret on the seam is still whole.
const OVERLAP: usize = 64 * 1024;
/// Shortest run of base64 characters decoded and scanned.
const MIN_BASE64: usize = 32;
/// Longest run of base64 characters decoded (longer ones are data, not credentials).
const MAX_BASE64: usize = 1024 * 1024;
/// Base64 within base64 followed this deep (a docker config inside a Kubernetes Secret is 2).
const BASE64_DEPTH: usize = 2;

/// One scan: the engine, what to leave out, and what was found.
pub struct Scan<'e> {
    engine: &'e Engine,
    known: HashSet<String>,
    /// The broker's fingerprints (`--verify` with a fingerprint source).
    owned: Option<&'e Owned>,
    findings: Mutex<Vec<Finding>>,
    skipped: Mutex<Vec<Skipped>>,
    /// Bytes of text scanned so far (for progress).
    pub scanned: AtomicU64,
}

impl<'e> Scan<'e> {
    /// A scan with `engine` that leaves out the fingerprints in `known` (a baseline).
    pub fn new(engine: &'e Engine, known: HashSet<String>) -> Self {
        Scan {
            engine,
            known,
            owned: None,
            findings: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            scanned: AtomicU64::new(0),
        }
    }

    /// The same scan, also reporting every string the broker issued (by fingerprint) and
    /// marking rule findings that are the broker's.
    pub fn with_owned(mut self, owned: &'e Owned) -> Self {
        self.owned = Some(owned);
        self
    }

    /// Findings in path, line, column order, and what was skipped.
    pub fn finish(self) -> (Vec<Finding>, Vec<Skipped>) {
        let mut findings = self.findings.into_inner().expect("never poisoned");
        findings.sort_by(|a, b| (&a.path, a.line, a.column, &a.rule_id).cmp(&(&b.path, b.line, b.column, &b.rule_id)));
        let mut skipped = self.skipped.into_inner().expect("never poisoned");
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        (findings, skipped)
    }

    /// Scans one window of text that follows `lines_before` lines of the same content; reports
    /// matches whose secret starts before `upto` (the rest are the next window's).
    fn window(&self, path: &str, bytes: &[u8], lines_before: usize, upto: usize, commit: Option<&Arc<Commit>>) {
        let mut here = Vec::new();
        for m in self.engine.scan_at(bytes, Some(path), commit.map(|c| c.id.as_str())) {
            if m.secret.start >= upto || allow::inline(bytes, m.secret.start) {
                continue;
            }
            let secret = String::from_utf8_lossy(&bytes[m.secret.clone()]).into_owned();
            here.push(self.finding(&m, path, lines_before + m.line, m.column, secret, commit));
        }
        if lines_before == 0 && upto == bytes.len() {
            if let Some(view) = View::of(path, bytes) {
                self.view(&view, bytes, path, commit, &mut here);
            }
        }
        if let Some(owned) = self.owned {
            for f in &mut here {
                if let Some(owner) = owned.owner(f.secret.expose().as_bytes()) {
                    f.owned_secret = Some(owner.to_owned());
                    f.verified = crate::finding::Verified::Live;
                }
            }
            let mut cursor = Cursor::new(bytes);
            for (range, owner) in owned.find(&bytes[..upto.min(bytes.len())]) {
                let secret = String::from_utf8_lossy(&bytes[range.clone()]).into_owned();
                if here.iter().any(|f| f.secret.expose() == secret) || allow::inline(bytes, range.start) {
                    continue;
                }
                let (line, column) = cursor.position(range.start);
                let mut f = Finding::owned(
                    path.to_owned(),
                    lines_before + line,
                    column,
                    SecretString::from(secret),
                    owner,
                );
                f.commit = commit.cloned();
                here.push(f);
            }
        }
        let mut cursor = Cursor::new(bytes);
        for (run, _) in base64_runs(&bytes[..upto.min(bytes.len())]) {
            if allow::inline(bytes, run.start) {
                continue;
            }
            let (line, column) = cursor.position(run.start);
            self.decoded(&bytes[run], path, lines_before + line, column, commit, 1, &mut here);
        }
        self.keep(here);
    }

    /// Scans the format view of a whole file (`bytes`), reporting each secret the file did not
    /// already show at its value's place in the file.
    fn view(&self, view: &View, bytes: &[u8], path: &str, commit: Option<&Arc<Commit>>, here: &mut Vec<Finding>) {
        let text = view.text();
        let matches = self.engine.scan_at(text, Some(path), commit.map(|c| c.id.as_str()));
        if matches.is_empty() {
            return;
        }
        let starts = crate::views::line_starts(bytes);
        for m in matches {
            let secret = String::from_utf8_lossy(&text[m.secret.clone()]).into_owned();
            let (line, column) = view.origin(m.line);
            let at = starts.get(line - 1).copied().unwrap_or(0);
            if allow::inline(bytes, at) {
                continue;
            }
            // The file showed it already: keep that place, and a provider's rule over a
            // generic one (the view names the provider where the file's layout hid it).
            let generic = self.engine.rules()[m.rule].family == "generic";
            if let Some(f) = here.iter_mut().find(|f| f.secret.expose() == secret) {
                if f.family == "generic" && !generic {
                    *f = self.finding(&m, path, f.line, f.column, secret, commit);
                }
                continue;
            }
            if here.iter().any(|f| (f.line, f.column) == (line, column)) {
                continue;
            }
            here.push(self.finding(&m, path, line, column, secret, commit));
        }
    }

    /// Scans the decoding of the base64 text `encoded`, reporting at the encoded text's place.
    #[allow(clippy::too_many_arguments)]
    fn decoded(
        &self,
        encoded: &[u8],
        path: &str,
        line: usize,
        column: usize,
        commit: Option<&Arc<Commit>>,
        depth: usize,
        out: &mut Vec<Finding>,
    ) {
        let Some(plain) = decode_base64(encoded) else {
            return;
        };
        for m in self.engine.scan_at(&plain, Some(path), commit.map(|c| c.id.as_str())) {
            let secret = String::from_utf8_lossy(&plain[m.secret.clone()]).into_owned();
            out.push(self.finding(&m, path, line, column, secret, commit));
        }
        if depth < BASE64_DEPTH {
            for (run, _) in base64_runs(&plain) {
                self.decoded(&plain[run], path, line, column, commit, depth + 1, out);
            }
        }
    }

    fn finding(
        &self,
        m: &Match,
        path: &str,
        line: usize,
        column: usize,
        secret: String,
        commit: Option<&Arc<Commit>>,
    ) -> Finding {
        let mut f = Finding::new(
            &self.engine.rules()[m.rule],
            path.to_owned(),
            line,
            column,
            SecretString::from(secret),
        );
        f.commit = commit.cloned();
        f
    }

    fn keep(&self, mut here: Vec<Finding>) {
        here.retain(|f| {
            !self.known.contains(&f.fingerprint) && (f.owned_secret.is_some() || !self.engine.path_allowed(&f.path))
        });
        if !here.is_empty() {
            self.findings.lock().expect("never poisoned").append(&mut here);
        }
    }
}

impl Sink for Scan<'_> {
    fn excluded(&self, path: &str, dir: bool) -> bool {
        self.engine.excluded(path, dir)
    }

    fn file(&self, path: &str, commit: Option<&Arc<Commit>>) {
        if self.engine.excluded(path, false) {
            return;
        }
        let found = self.engine.file_rules(path, commit.map(|c| c.id.as_str()));
        let here = found
            .map(|rule| Finding {
                commit: commit.cloned(),
                ..Finding::file(rule, path.to_owned())
            })
            .collect();
        self.keep(here);
    }

    fn text(&self, path: &str, content: &mut dyn Read, encoding: Encoding, commit: Option<&Arc<Commit>>) {
        if self.engine.excluded(path, false) {
            return;
        }
        let label = match encoding {
            Encoding::Utf8 => return self.bytes(path, content, commit),
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
        };
        // UTF-16 is scanned twice, decoded and as the bytes it is: content that only looks
        // like UTF-16 (a BOM or a NUL-heavy start in front of ASCII) cannot hide a secret
        // behind the wrong decoding.
        let mut decoder = label.new_decoder();
        let mut raw = Windows::new(self, path, commit);
        let mut text = Windows::new(self, path, commit);
        let mut chunk = vec![0u8; CHUNK];
        let mut decoded = Vec::new();
        let mut first = true;
        loop {
            let n = match content.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    raw.finish();
                    text.finish();
                    return self.read_failed(path, &e);
                }
            };
            self.scanned.fetch_add(n as u64, Ordering::Relaxed);
            decoded.resize(decoder.max_utf8_buffer_length(n).unwrap_or(n * 3 + 16), 0);
            let (_, _, written, _) = decoder.decode_to_utf8(&chunk[..n], &mut decoded, n == 0);
            text.extend(&decoded[..written]);
            if n == 0 {
                break;
            }
            // The bytes as they are, less a leading BOM, so that the first line starts where
            // an editor shows it (a rule anchored at a line start still matches there).
            let bom = usize::from(first && n >= 2 && matches!(chunk[..2], [0xff, 0xfe] | [0xfe, 0xff])) * 2;
            first = false;
            raw.extend(&chunk[bom..n]);
        }
        raw.finish();
        text.finish();
    }

    fn text_bytes(&self, path: &str, bytes: &[u8], encoding: Encoding, commit: Option<&Arc<Commit>>) {
        if self.engine.excluded(path, false) {
            return;
        }
        if encoding != Encoding::Utf8 || bytes.len() > WINDOW {
            return self.text(path, &mut &bytes[..], encoding, commit);
        }
        self.scanned.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.window(path, bytes, 0, bytes.len(), commit);
    }

    fn skipped(&self, path: &str, reason: String) {
        self.skip(path, reason, false)
    }

    fn outside(&self, path: &str, reason: String) {
        self.skip(path, reason, true)
    }
}

impl Scan<'_> {
    /// Records a skipped part, unless the config's allowlist leaves its path out (as it does
    /// findings there).
    fn skip(&self, path: &str, reason: String, outside: bool) {
        if self.engine.path_allowed(path) {
            return;
        }
        self.skipped.lock().expect("never poisoned").push(Skipped {
            path: path.to_owned(),
            reason,
            outside,
        });
    }

    /// Scans `content` as bytes, in windows.
    fn bytes(&self, path: &str, content: &mut dyn Read, commit: Option<&Arc<Commit>>) {
        let mut windows = Windows::new(self, path, commit);
        loop {
            let before = windows.buf.len();
            let ended = windows.read_from(content);
            self.scanned
                .fetch_add((windows.buf.len() - before) as u64, Ordering::Relaxed);
            match ended {
                Ok(false) => windows.slide(),
                Ok(true) => return windows.finish(),
                Err(e) => {
                    // What was read before the error is still scanned.
                    windows.finish();
                    return self.read_failed(path, &e);
                }
            }
        }
    }

    /// Reports a read error, unless it was reported where it happened (an archive limit).
    fn read_failed(&self, path: &str, e: &std::io::Error) {
        if !crate::source::is_reported(e) {
            self.skipped(path, format!("cannot read: {e}"));
        }
    }
}

/// Bytes read at a time from text that is decoded while it is read.
const CHUNK: usize = 1024 * 1024;

/// One text as it arrives, scanned in windows of about [`WINDOW`] bytes, each repeating the
/// end of the one before (see [`seam`]).
struct Windows<'s, 'e> {
    scan: &'s Scan<'e>,
    path: &'s str,
    commit: Option<&'s Arc<Commit>>,
    buf: ThreadBuf,
    lines_before: usize,
}

thread_local! {
    /// The window buffer of the texts one thread scans (see [`ThreadBuf`]).
    static WINDOW_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest window buffer kept for the next text.
const KEEP: usize = 4 * 1024 * 1024;

impl<'s, 'e> Windows<'s, 'e> {
    fn new(scan: &'s Scan<'e>, path: &'s str, commit: Option<&'s Arc<Commit>>) -> Self {
        Windows {
            scan,
            path,
            commit,
            buf: ThreadBuf::lend(&WINDOW_BUF, KEEP),
            lines_before: 0,
        }
    }

    /// Fills the window from `reader`; answers whether the reader ended. On an error, what
    /// was read before it is in the window.
    fn read_from(&mut self, reader: &mut dyn Read) -> std::io::Result<bool> {
        let want = WINDOW.saturating_sub(self.buf.len());
        let read = reader.take(want as u64).read_to_end(&mut self.buf)?;
        Ok(read < want)
    }

    /// Adds `bytes`, scanning a full window when there is one.
    fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= WINDOW {
            self.slide();
        }
    }

    /// Scans the window up to its seam and keeps what follows for the next one.
    fn slide(&mut self) {
        let upto = seam(&self.buf);
        self.scan
            .window(self.path, &self.buf, self.lines_before, upto, self.commit);
        self.lines_before += memchr::memchr_iter(b'\n', &self.buf[..upto]).count();
        self.buf.drain(..upto);
    }

    /// Scans what is left.
    fn finish(self) {
        self.scan
            .window(self.path, &self.buf, self.lines_before, self.buf.len(), self.commit);
    }
}

/// Where a full window is cut: at a line start within the last stretch, so the next window
/// begins a line and repeats at least [`OVERLAP`] bytes.
fn seam(buf: &[u8]) -> usize {
    let hard = buf.len().saturating_sub(OVERLAP);
    let from = hard.saturating_sub(OVERLAP);
    match memchr::memrchr(b'\n', &buf[from..hard]) {
        Some(i) => from + i + 1,
        None => hard,
    }
}

/// Lines and columns of increasing offsets in one text, reading each byte once.
struct Cursor<'b> {
    bytes: &'b [u8],
    at: usize,
    line: usize,
    /// Characters between the start of the line and `at`.
    column: usize,
}

impl<'b> Cursor<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Cursor {
            bytes,
            at: 0,
            line: 1,
            column: 0,
        }
    }

    /// 1-based line and column (in characters) of byte `to`, at or after the last one asked.
    fn position(&mut self, to: usize) -> (usize, usize) {
        let chars = |b: &[u8]| b.iter().filter(|b| **b & 0xc0 != 0x80).count();
        let seg = &self.bytes[self.at..to];
        match memchr::memrchr(b'\n', seg) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', seg).count();
                self.column = chars(&seg[last + 1..]);
            }
            None => self.column += chars(seg),
        }
        self.at = to;
        (self.line, self.column + 1)
    }
}

/// Whether `b` is a byte of the base64 alphabets (standard and URL-safe together), written as
/// comparisons, which compile to vector instructions over a block where a table would not.
#[inline(always)]
fn is_base64(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'+')
        | (b == b'/')
        | (b == b'-')
        | (b == b'_')
}

/// Whether all sixteen bytes of `block` are base64 bytes (no early exit within a test: a few
/// SSE2 instructions). Spaces, line ends, quotes, brackets and non-ASCII bytes all sort below
/// `+` as signed bytes, so one comparison rules out most blocks of text before the full test.
#[inline(always)]
fn all_base64(block: &[u8; 16]) -> bool {
    block.iter().fold(true, |all, b| all & (*b as i8 >= b'+' as i8))
        && block.iter().fold(true, |all, b| all & is_base64(*b))
}

/// Which of the sixteen bytes of `block` are base64 bytes: bit `i` for byte `i` (a few SSE2
/// instructions, like [`all_base64`]).
#[inline(always)]
fn base64_mask(block: &[u8; 16]) -> u16 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, b)| mask | u16::from(is_base64(*b)) << i)
}

/// Which kinds of bytes `run` holds: bit 0 upper case, 1 lower case, 2 digits, 3 `-` or `_`
/// (one pass with no early exit, in vector instructions).
fn kinds(run: &[u8]) -> u8 {
    run.iter().fold(0, |kinds, b| {
        kinds
            | u8::from(b.is_ascii_uppercase())
            | u8::from(b.is_ascii_lowercase()) << 1
            | u8::from(b.is_ascii_digit()) << 2
            | u8::from(*b == b'-' || *b == b'_') << 3
    })
}

/// Runs of base64 characters (standard or URL-safe alphabet, optional padding) at least
/// [`MIN_BASE64`] long, each with whether it is URL-safe. Runs without upper case, lower case
/// and digits (hex, words, paths) are not base64 worth decoding.
///
/// A run of 32 bytes or more holds a whole sixteen-byte block aligned on 16, so only blocks
/// made of base64 bytes alone are looked at more closely; in text almost every block has a
/// space or punctuation, and is passed over in a few vector instructions.
fn base64_runs(bytes: &[u8]) -> impl Iterator<Item = (Range<usize>, bool)> + '_ {
    const _: () = assert!(MIN_BASE64 >= 2 * 16 - 1, "a run of MIN_BASE64 holds an aligned block");
    // Invariant: `bytes[i - 1]` (if any) is not a base64 byte, so no run starts before `i`
    // and continues past it.
    let mut i = 0usize;
    std::iter::from_fn(move || {
        let mut block = i.next_multiple_of(16);
        while let Some(b) = bytes.get(block..block + 16) {
            if !all_base64(b.try_into().expect("16 bytes")) {
                block += 16;
                continue;
            }
            // Back into the block before (not all base64, and if it holds `i`, its base64 bytes
            // at the end start at `i` or later), then on by whole blocks and into the first
            // that is not all base64.
            let before = block.checked_sub(16).map_or(0, |b| {
                base64_mask(bytes[b..block].try_into().expect("16 bytes")).leading_ones() as usize
            });
            let start = block - before;
            let mut end = block + 16;
            loop {
                match bytes.get(end..end + 16) {
                    Some(b) => {
                        let ones = base64_mask(b.try_into().expect("16 bytes")).trailing_ones() as usize;
                        end += ones;
                        if ones < 16 {
                            break;
                        }
                    }
                    None => {
                        while end < bytes.len() && is_base64(bytes[end]) {
                            end += 1;
                        }
                        break;
                    }
                }
            }
            i = end + 1;
            block = i.next_multiple_of(16);
            let run = &bytes[start..end];
            if run.len() < MIN_BASE64 || run.len() > MAX_BASE64 {
                continue;
            }
            let kinds = kinds(run);
            let (upper, lower, digit) = (kinds & 1 != 0, kinds & 2 != 0, kinds & 4 != 0);
            if !(upper && lower && (digit || run.len() >= 64)) {
                continue;
            }
            let mut padded = end;
            while padded < bytes.len() && padded - end < 2 && bytes[padded] == b'=' {
                padded += 1;
            }
            i = i.max(padded);
            return Some((start..padded, kinds & 8 != 0));
        }
        None
    })
}

/// The decoding of `encoded` when it is text worth scanning (valid UTF-8 with no control
/// characters besides whitespace).
fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::GeneralPurposeConfig;
    use base64::engine::{DecodePaddingMode, GeneralPurpose};
    let lenient = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
    let plain = standard.decode(encoded).or_else(|_| url.decode(encoded)).ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    text.chars()
        .all(|c| !c.is_control() || c.is_whitespace())
        .then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alphabets as they are specified, for checking [`is_base64`].
    const BASE64_BYTE: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_';
            b += 1;
        }
        t
    };

    #[test]
    fn text_that_only_starts_like_utf16_is_scanned_as_bytes_from_after_the_bom() {
        use rand::SeedableRng as _;
        let engine = Engine::new(crate::rules::builtin());
        let token = crate::rules::examples::expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
        let text = [&[0xff, 0xfe][..], format!("GITHUB_TOKEN={token}\n").as_bytes()].concat();
        let scan = Scan::new(&engine, HashSet::new());
        scan.text("x.env", &mut &text[..], Encoding::Utf16Le, None);
        let (findings, skipped) = scan.finish();
        assert!(skipped.is_empty());
        let f = findings.iter().find(|f| f.secret.expose() == token).expect("found");
        assert_eq!(
            (f.line, f.column),
            (1, 14),
            "the column an editor shows, not counting the BOM"
        );
    }

    #[test]
    fn base64_runs_skip_hex_words_and_short_runs() {
        let text =
            b"a: 0123456789abcdef0123456789abcdef01234567\nb: c2VjcmV0LXRva2VuOiBzdXBlci1zZWNyZXQtdmFsdWU=\nc: short";
        let runs: Vec<_> = base64_runs(text).map(|(r, _)| &text[r]).collect();
        assert_eq!(runs, vec![&b"c2VjcmV0LXRva2VuOiBzdXBlci1zZWNyZXQtdmFsdWU="[..]]);
        assert_eq!(
            decode_base64(runs[0]).as_deref(),
            Some(&b"secret-token: super-secret-value"[..])
        );
        assert_eq!(decode_base64(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), None);
    }

    #[test]
    fn seams_fall_on_line_starts() {
        let mut buf = vec![b'x'; 3 * OVERLAP];
        buf[OVERLAP + 10] = b'\n';
        assert_eq!(seam(&buf), OVERLAP + 11);
        let flat = vec![b'x'; 3 * OVERLAP];
        assert_eq!(seam(&flat), 2 * OVERLAP);
    }

    #[test]
    fn cursors_count_lines_and_characters() {
        let text = "ab\nçd efg\n\nxyz".as_bytes();
        let mut c = Cursor::new(text);
        assert_eq!(c.position(1), (1, 2));
        assert_eq!(c.position(text.iter().position(|b| *b == b'e').unwrap()), (2, 4));
        assert_eq!(c.position(text.len() - 1), (4, 3));
    }

    #[test]
    fn base64_runs_agree_with_the_obvious_method_on_random_text() {
        use rand::{Rng, SeedableRng};
        // Every maximal run of base64 bytes that qualifies, with its padding.
        fn naive(text: &[u8]) -> Vec<(Range<usize>, bool)> {
            let mut runs = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if !BASE64_BYTE[text[i] as usize] {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < text.len() && BASE64_BYTE[text[i] as usize] {
                    i += 1;
                }
                let run = &text[start..i];
                let mixed = run.iter().any(u8::is_ascii_uppercase) && run.iter().any(u8::is_ascii_lowercase);
                if run.len() >= MIN_BASE64 && mixed && (run.iter().any(u8::is_ascii_digit) || run.len() >= 64) {
                    let pad = text[i..].iter().take(2).take_while(|b| **b == b'=').count();
                    runs.push((start..i + pad, run.iter().any(|b| *b == b'-' || *b == b'_')));
                    i += pad;
                }
            }
            runs
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for b in 0..=255u8 {
            assert_eq!(is_base64(b), BASE64_BYTE[b as usize], "{b}");
        }
        let mut found = 0;
        for round in 0..3000 {
            // Mostly base64 bytes, with separators now and then: runs of every length.
            let sep = [b' ', b'=', b'.', b'\n', 0xc3, b'"'];
            let p_sep = [0.01, 0.03, 0.1][round % 3];
            let text: Vec<u8> = (0..rng.gen_range(0..400))
                .map(|_| {
                    if rng.gen_bool(p_sep) {
                        sep[rng.gen_range(0..sep.len())]
                    } else {
                        b"aZ09+/-_"[rng.gen_range(0..8)]
                    }
                })
                .collect();
            let runs = naive(&text);
            found += runs.len();
            assert_eq!(
                base64_runs(&text).collect::<Vec<_>>(),
                runs,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
        assert!(found > 1000, "{found} runs: too few to tell");
    }

    #[test]
    fn base64_runs_are_found_wherever_they_start() {
        let run = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy";
        for before in 0..40 {
            for after in ["", " ", "==", "=\n", "!x"] {
                let text = format!("{}{run}{after}", "ab cd, ".repeat(before / 7) + &";;"[..before % 2]);
                let runs: Vec<_> = base64_runs(text.as_bytes()).map(|(r, _)| &text[r]).collect();
                let want = if after.starts_with("==") {
                    format!("{run}==")
                } else if after.starts_with('=') {
                    format!("{run}=")
                } else {
                    run.to_owned()
                };
                assert_eq!(runs, vec![want.as_str()], "{text:?}");
            }
        }
        let short = "QUJDREVGR0hJSktMTU5PUFFSU1RVVld"; // 31 characters
        assert_eq!(base64_runs(short.as_bytes()).count(), 0);
    }
}
