//! Archives: zip (jar, whl, apk), tar, gzip and zstd streams, nested to any depth within
//! [`super::Limits`]; `docker save` tarballs and OCI layouts are tars of tars. Members go back
//! through [`super::dispatch`] with the path `ARCHIVE!MEMBER`.
//!
//! Tars and compressed streams are read as streams, so a member costs bounded memory whatever
//! its size; a zip needs its central directory, so one read from a stream is held in memory
//! (up to [`super::Limits::max_member`]). A compressed stream is not a level of its own: a
//! `x.tgz` holding a tar is opened in place (`x.tgz!etc/app.env`), a gzipped text file is
//! `x.gz!x` (the name from the gzip header when it has one).
//!
//! Limits: every byte a decompressor produces (zip members, gzip and zstd streams) is charged
//! to the top-level input's budget, and every member is cut at `max_member` — except members
//! that are archives themselves, which are cut member by member in turn. A cut raises an
//! [`io::Error`] carrying a [`Cut`] that travels up to whoever reads, which reports it once:
//! the sink for text, [`super::dispatch`] for an archive that cannot go on. A spent budget is
//! 0 (the last byte of it is never spent), so each enclosing archive sees it and stops
//! quietly.

use std::fmt;
use std::io::{self, Cursor, Read, Seek};
use std::sync::atomic::Ordering;

use flate2::read::MultiGzDecoder;

use super::{dispatch, sniff, Ctx, Kind, SNIFF_LEN};

/// Opens the archive `content` of `kind` found at `path` and dispatches its members.
/// Answers why it could not be read (the caller reports it as skipped); members that were
/// read before the failure stay scanned.
pub fn open(kind: Kind, path: &str, content: &mut dyn Read, ctx: &Ctx<'_>) -> Result<(), String> {
    match kind {
        Kind::Zip => open_zip(path, content, ctx),
        Kind::Tar => open_tar(path, content, "tar", ctx),
        Kind::Gzip => {
            let mut stream = Limited::new(MultiGzDecoder::new(content), ctx, true);
            let head = read_head(&mut stream).map_err(|e| describe("truncated or corrupt gzip stream", &e))?;
            let name = stream.inner.header().and_then(|h| h.filename()).and_then(header_name);
            expanded(path, name, head, stream, "gzip", ctx)
        }
        Kind::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(content).map_err(|e| format!("cannot start zstd decoder: {e}"))?;
            let mut stream = Limited::new(decoder, ctx, true);
            let head = read_head(&mut stream).map_err(|e| describe("truncated or corrupt zstd stream", &e))?;
            expanded(path, None, head, stream, "zstd", ctx)
        }
        Kind::Text(_) | Kind::Binary => Err("not an archive".into()),
    }
}

/// Opens a zip that can be read in place (a file on disk): nothing is held in memory, so
/// there is no size limit on the zip itself. Members are dispatched as by [`open`].
pub fn open_seekable_zip<R: Read + Seek>(path: &str, reader: R, ctx: &Ctx<'_>) -> Result<(), String> {
    let zip = zip::ZipArchive::new(reader).map_err(|e| format!("not a readable zip: {e}"))?;
    zip_members(path, zip, ctx);
    Ok(())
}

// === zip ===

/// A zip read from a stream: held in memory, so only up to `max_member` bytes of it.
fn open_zip(path: &str, content: &mut dyn Read, ctx: &Ctx<'_>) -> Result<(), String> {
    let max = ctx.limits.max_member;
    let mut bytes = Vec::new();
    content
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| describe("cannot read zip", &e))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "zip larger than {} (a zip read as a stream is held in memory to be opened); not opened",
            Size(max)
        ));
    }
    let zip = zip::ZipArchive::new(Cursor::new(bytes.as_slice())).map_err(|e| format!("not a readable zip: {e}"))?;
    zip_members(path, zip, ctx);
    Ok(())
}

/// Dispatches each file of `zip`; a member that cannot be opened is reported and the next
/// one is tried (the central directory says where each starts).
fn zip_members<R: Read + Seek>(path: &str, mut zip: zip::ZipArchive<R>, ctx: &Ctx<'_>) {
    for i in 0..zip.len() {
        if spent(ctx) {
            return;
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
        let declared = file.size();
        member(&member_path, &mut file, true, Some(declared), ctx);
    }
}

// === tar ===

/// A tar, streamed: regular files only, each member's remainder skipped by the tar reader
/// (never held) when the member turns out not to be text.
/// `what` names it in reasons (`tar`, `tar in gzip stream`).
fn open_tar(path: &str, content: &mut dyn Read, what: &str, ctx: &Ctx<'_>) -> Result<(), String> {
    let mut archive = tar::Archive::new(content);
    let mut entries = archive
        .entries()
        .map_err(|e| describe(&format!("not a readable {what}"), &e))?;
    loop {
        if spent(ctx) {
            return Ok(());
        }
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
        member(&format!("{path}!{name}"), &mut entry, false, None, ctx);
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
) -> Result<(), String> {
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
            if spent(ctx) {
                return Ok(());
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
/// archive is not (its own members are, and a zip is held only up to `max_member`). A zip
/// member whose declared size is past `max_member` is reported and not read, unless it is a
/// tar or compressed stream (read as a stream, so any size costs bounded memory).
fn member(path: &str, content: &mut dyn Read, charged: bool, declared: Option<u64>, ctx: &Ctx<'_>) {
    let mut limited = Limited::new(content, ctx, charged);
    let head = match read_head(&mut limited) {
        Ok(head) => head,
        Err(e) => return ctx.sink.skipped(path, describe("cannot read", &e)),
    };
    let kind = sniff(&head);
    if is_archive(kind) {
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

/// Why reading stopped early: travels inside an [`io::Error`] to whoever reports it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum Cut {
    /// One member is larger than `max_member`.
    #[error("member is larger than {}; the rest of it is not scanned", Size(*.0))]
    Member(u64),
    /// The top-level input expanded past `max_expanded`.
    #[error("archive expands past {} in total; the rest of it is not scanned", Size(*.0))]
    Budget(u64),
}

/// A reader that fails with a [`Cut`] past `cap` bytes and, when `charged`, charges what it
/// reads to the budget. Once cut it stays cut.
struct Limited<'c, R> {
    inner: R,
    ctx: &'c Ctx<'c>,
    charged: bool,
    cap: u64,
    read: u64,
    cut: Option<Cut>,
}

impl<'c, R: Read> Limited<'c, R> {
    fn new(inner: R, ctx: &'c Ctx<'c>, charged: bool) -> Self {
        Limited {
            inner,
            ctx,
            charged,
            cap: ctx.limits.max_member,
            read: 0,
            cut: None,
        }
    }
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(cut) = self.cut {
            return Err(io::Error::other(cut));
        }
        // Never more than one byte past the cap: enough to tell that it is past.
        let room = self.cap.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        let cut = if self.read > self.cap {
            Some(Cut::Member(self.cap))
        } else if self.charged && n > 0 && !charge(self.ctx, n as u64) {
            Some(Cut::Budget(self.ctx.limits.max_expanded))
        } else {
            None
        };
        match cut {
            Some(cut) => {
                self.cut = Some(cut);
                Err(io::Error::other(cut))
            }
            None => Ok(n),
        }
    }
}

/// Takes `n` bytes from the budget, never its last byte; when they are not there the budget
/// becomes 0, which every enclosing archive reads as "spent and reported".
fn charge(ctx: &Ctx<'_>, n: u64) -> bool {
    let taken = ctx.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(n).filter(|rest| *rest > 0)
    });
    if taken.is_err() {
        ctx.budget.store(0, Ordering::Relaxed);
    }
    taken.is_ok()
}

/// Whether the budget ran out (and the cut was reported where it happened).
fn spent(ctx: &Ctx<'_>) -> bool {
    ctx.budget.load(Ordering::Relaxed) == 0
}

/// The reason to report for `e`: a cut says itself, anything else after `context`.
fn describe(context: &str, e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Cut>()) {
        Some(cut) => cut.to_string(),
        None => format!("{context}: {e}"),
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
    use std::io::Write;
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::source::{Commit, Encoding, Limits, Sink};

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
                self.skipped(path, format!("cannot read: {e}"));
            }
            let text = String::from_utf8_lossy(&text).into_owned();
            self.texts.lock().unwrap().push((path.to_owned(), text));
        }

        fn skipped(&self, path: &str, reason: String) {
            self.skipped.lock().unwrap().push((path.to_owned(), reason));
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
        let budget = AtomicU64::new(limits.max_expanded);
        let ctx = Ctx {
            sink: &sink,
            limits,
            commit: None,
            depth: 0,
            budget: &budget,
        };
        dispatch(path, &mut &bytes[..], &ctx);
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
    fn zip_files_reach_the_sink_and_binaries_and_directories_do_not() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        writer.add_directory("dir/", options).unwrap();
        writer.start_file("dir/x.env", options).unwrap();
        writer.write_all(b"TOKEN=one\n").unwrap();
        writer.start_file("lib.so", options).unwrap();
        writer.write_all(b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
        let bytes = writer.finish().unwrap().into_inner();

        let sink = scan("app.jar", &bytes, &Limits::default());
        assert_eq!(sink.paths(), vec!["app.jar!dir/x.env"]);
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
        let budget = AtomicU64::new(limits.max_expanded);
        let ctx = Ctx {
            sink: &sink,
            limits: &limits,
            commit: None,
            depth: 0,
            budget: &budget,
        };
        open_seekable_zip("big.zip", Cursor::new(&bytes), &ctx).unwrap();
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
        assert_eq!(sink.paths(), vec!["a.tgz!first.env"]);
        let skipped = sink.notices();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "a.tgz");
        assert!(skipped[0].1.contains("truncated"), "{skipped:?}");

        // Cut inside the gzip trailer: the tar is whole, the stream is not.
        let whole = gz(&tar(&[("first.env", b"A=one\n"), ("zeros.bin", &[0; 100_000])]));
        let sink = scan("b.tgz", &whole[..whole.len() - 4], &Limits::default());
        assert_eq!(sink.paths(), vec!["b.tgz!first.env"]);
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
        assert!(skipped[0].1.contains("expands past 1 MiB in total"), "{skipped:?}");
        assert_eq!(sink.paths(), vec!["bomb.zip!big.env"], "nothing after the cut");
        assert!(sink.text("bomb.zip!big.env").unwrap().len() < 1024 * 1024);

        // The same in a tgz: the cut is in the stream every member comes from.
        let bytes = gz(&tar(&[("big.env", &big), ("after.env", b"B=two\n")]));
        let sink = scan("bomb.tgz", &bytes, &limits);
        assert_eq!(sink.notices().len(), 1, "{:?}", sink.notices());
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
        assert_eq!(sink.paths(), vec!["image.tar!layer.tar!app.env"]);
        assert!(sink.notices().is_empty(), "{:?}", sink.notices());
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

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(Size(512).to_string(), "512 bytes");
        assert_eq!(Size(256 * 1024 * 1024).to_string(), "256 MiB");
        assert_eq!(Size(1536 * 1024 * 1024).to_string(), "1.5 GiB");
    }
}
