//! The audit log: `sidekey::AuditEvent`s as JSON lines, appended by a dedicated thread so a
//! busy socket never waits on the disk. The file is created 0600. Without `audit_log` in the
//! config, lines go to stderr prefixed `audit: `.
//!
//! Reads are the one event a busy service makes thousands of times a second, so they are
//! tallied, not queued: identical reads (same caller, connection, secret, version, lease and
//! rule) within one flush interval ([`READ_WINDOW`]) become one `read` line with a `count`
//! and the time of the first. Refusals are tallied the same way (same caller, connection,
//! route, secret and reason), so a local flood of refused requests costs one line per window,
//! not one per request. Every other event is written as it happens.
//!
//! [`AuditLog::reopen`] (on SIGHUP) closes the file and opens the configured path again, as
//! logrotate and systemd's `ExecReload` expect; no event is lost across it.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use sidekey::audit::{EventKind, Peer};
use sidekey::{AuditEvent, LeaseId, SecretName};
use std::hash::BuildHasher as _;

/// How long identical reads are tallied before their line is written.
pub const READ_WINDOW: Duration = Duration::from_millis(250);

/// A handle to record audit events; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    tallies: Arc<Tallies>,
}

/// What is tallied until the next window's lines are written. Hashed with foldhash (seeded
/// per process): every read hashes its key, and SipHash took as long as the rest of the
/// tally.
#[derive(Default)]
struct Tallies {
    reads: Mutex<Reads>,
    refusals: Mutex<HashMap<Refused, Tally, RandomState>>,
}

/// The reads of this window, found by their borrowed form ([`ReadOf`]): a read like one
/// already tallied only counts, with nothing copied or allocated (issue 18: the owned key
/// cost two allocations and their frees on every cached read).
#[derive(Default)]
struct Reads {
    hasher: RandomState,
    table: HashTable<(Read, Tally)>,
}

impl Reads {
    fn count(&mut self, read: ReadOf<'_>) {
        let hash = self.hasher.hash_one(read);
        if let Some((_, tally)) = self.table.find_mut(hash, |(kept, _)| kept.of() == read) {
            tally.count += 1;
            return;
        }
        let hasher = &self.hasher;
        self.table.insert_unique(
            hash,
            (
                read.to_owned(),
                Tally {
                    first: SystemTime::now(),
                    count: 1,
                },
            ),
            |(kept, _)| hasher.hash_one(kept.of()),
        );
    }
}

/// One kind of refusal, as the audit line will show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refused {
    /// The Unix socket peer.
    pub peer: Option<Peer>,
    /// The TCP remote address.
    pub remote: Option<std::net::SocketAddr>,
    /// The verified token's name.
    pub token: Option<String>,
    /// The route.
    pub route: String,
    /// The secret named, if any.
    pub secret: Option<SecretName>,
    /// Why.
    pub reason: String,
}

/// One kind of read, as the audit line will show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Read {
    /// The secret read.
    pub secret: SecretName,
    /// The version served.
    pub version: u64,
    /// The lease of the served value.
    pub lease_id: Option<LeaseId>,
    /// The Unix socket peer.
    pub peer: Option<Peer>,
    /// The TCP remote address.
    pub remote: Option<std::net::SocketAddr>,
    /// The verified token's name.
    pub token: Option<String>,
    /// The route.
    pub route: &'static str,
    /// The `[[access]]` rule that granted it.
    pub rule: usize,
}

/// What the writer thread is asked to do.
// Events are nearly every message; boxing them would add an allocation to each to save space
// on the rare `Reopen`.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Write this event.
    Event(AuditEvent),
    /// Open the log's path again (after a rotation).
    Reopen,
}

struct Tally {
    first: SystemTime,
    count: u64,
}

/// A read as the route has it, borrowed: what [`AuditLog::read`] takes. The same fields as
/// [`Read`], which is made from it only for the first read of its kind in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadOf<'a> {
    /// The secret read.
    pub secret: &'a str,
    /// The version served.
    pub version: u64,
    /// The lease of the served value.
    pub lease_id: Option<&'a LeaseId>,
    /// The Unix socket peer.
    pub peer: Option<Peer>,
    /// The TCP remote address.
    pub remote: Option<std::net::SocketAddr>,
    /// The verified token's name.
    pub token: Option<&'a str>,
    /// The route.
    pub route: &'static str,
    /// The `[[access]]` rule that granted it.
    pub rule: usize,
}

impl ReadOf<'_> {
    fn to_owned(self) -> Read {
        Read {
            secret: SecretName::new(self.secret),
            version: self.version,
            lease_id: self.lease_id.cloned(),
            peer: self.peer,
            remote: self.remote,
            token: self.token.map(str::to_owned),
            route: self.route,
            rule: self.rule,
        }
    }
}

impl Read {
    fn of(&self) -> ReadOf<'_> {
        ReadOf {
            secret: self.secret.as_str(),
            version: self.version,
            lease_id: self.lease_id.as_ref(),
            peer: self.peer,
            remote: self.remote,
            token: self.token.as_deref(),
            route: self.route,
            rule: self.rule,
        }
    }
}

/// The writer thread; joining it flushes every recorded event.
pub struct Writer(std::thread::JoinHandle<()>);

impl Writer {
    /// Waits until every event recorded before all handles were dropped is written.
    pub fn finish(self) {
        let _ = self.0.join();
    }
}

impl AuditLog {
    /// Opens (creating 0600, appending) the log at `path`, or stderr when `None`.
    pub fn open(path: Option<&Path>) -> anyhow::Result<(AuditLog, Writer)> {
        let out: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(open_file(path)?),
            None => Box::new(StderrLines),
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        let tallies = Arc::new(Tallies::default());
        let tallied = tallies.clone();
        let path = path.map(Path::to_path_buf);
        let thread = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_loop(rx, &tallied, BufWriter::new(out), path))
            .context("cannot start the audit log writer")?;
        Ok((AuditLog { tx, tallies }, Writer(thread)))
    }

    /// Records one event (never blocks on I/O).
    pub fn record(&self, event: AuditEvent) {
        let _ = self.tx.send(Msg::Event(event));
    }

    /// Closes the log file and opens its path again (a rotated file is left to its rotator);
    /// events recorded before are written to the old file. Without a file, nothing happens.
    pub fn reopen(&self) {
        let _ = self.tx.send(Msg::Reopen);
    }

    /// Tallies one read; its line is written within [`READ_WINDOW`].
    pub fn read(&self, read: ReadOf<'_>) {
        self.tallies.reads.lock().expect("never poisoned").count(read);
    }
}

impl AuditLog {
    /// Tallies one refusal; its line is written within [`READ_WINDOW`]. Answers whether it is
    /// the first of its kind in this window (the caller logs only those).
    pub fn refusal(&self, refused: Refused) -> bool {
        let mut refusals = self.tallies.refusals.lock().expect("never poisoned");
        let tally = refusals.entry(refused).or_insert_with(|| Tally {
            first: SystemTime::now(),
            count: 0,
        });
        tally.count += 1;
        tally.count == 1
    }
}

/// Takes the tallied reads and refusals as audit events, oldest first.
fn drain(tallies: &Tallies) -> Vec<AuditEvent> {
    let refusals = std::mem::take(&mut *tallies.refusals.lock().expect("never poisoned"));
    let mut events: Vec<AuditEvent> = refusals
        .into_iter()
        .map(|(refused, tally)| {
            let mut event = AuditEvent::new(EventKind::Refusal { reason: refused.reason });
            event.ts = tally.first;
            event.peer = refused.peer;
            event.remote = refused.remote.map(|r| r.to_string());
            event.token = refused.token;
            event.route = Some(refused.route);
            event.secret = refused.secret;
            event.count = Some(tally.count);
            event
        })
        .collect();
    events.extend(drain_reads(&tallies.reads));
    events.sort_by_key(|e| e.ts);
    events
}

/// Takes the tallied reads as audit events.
fn drain_reads(reads: &Mutex<Reads>) -> Vec<AuditEvent> {
    let taken = std::mem::take(&mut reads.lock().expect("never poisoned").table);
    let mut events: Vec<AuditEvent> = taken
        .into_iter()
        .map(|(read, tally)| {
            let mut event = AuditEvent::new(EventKind::Read)
                .secret(&read.secret)
                .lease(read.lease_id.as_ref())
                .version(read.version);
            event.ts = tally.first;
            event.peer = read.peer;
            event.remote = read.remote.map(|r| r.to_string());
            event.token = read.token;
            event.route = Some(read.route.to_owned());
            event.rule = Some(read.rule);
            event.count = Some(tally.count);
            event
        })
        .collect();
    events.sort_by_key(|e| e.ts);
    events
}

/// Opens (creating 0600, appending) the log file at `path`.
/// Not through a symlink and never a FIFO or device ([`sidekey::own_files`]).
fn open_file(path: &Path) -> anyhow::Result<std::fs::File> {
    sidekey::own_files::append(path, 0o600).with_context(|| format!("{}: cannot open audit log", path.display()))
}

fn write_loop(
    rx: mpsc::Receiver<Msg>,
    tallies: &Tallies,
    mut out: BufWriter<Box<dyn Write + Send>>,
    path: Option<PathBuf>,
) {
    let mut next_reads = SystemTime::now() + READ_WINDOW;
    loop {
        let wait = next_reads.duration_since(SystemTime::now()).unwrap_or_default();
        let mut reopen = false;
        let open = match rx.recv_timeout(wait) {
            Ok(msg) => {
                // Drain what is queued, then flush once: one write per burst, not per event.
                for msg in std::iter::once(msg).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                    match msg {
                        Msg::Event(event) => write_event(&mut out, &event),
                        Msg::Reopen => reopen = true,
                    }
                }
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => true,
            Err(mpsc::RecvTimeoutError::Disconnected) => false,
        };
        if !open || SystemTime::now() >= next_reads {
            for event in drain(tallies) {
                write_event(&mut out, &event);
            }
            next_reads = SystemTime::now() + READ_WINDOW;
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot write the audit log");
        }
        if let (true, Some(path)) = (reopen, &path) {
            match open_file(path) {
                Ok(file) => {
                    out = BufWriter::new(Box::new(file));
                    tracing::info!(path = %path.display(), "audit log reopened");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot reopen the audit log; writing to the old file")
                }
            }
        }
        if !open {
            break;
        }
    }
}

fn write_event(out: &mut impl Write, event: &AuditEvent) {
    let mut line = serde_json::to_vec(event).expect("audit events always serialize");
    line.push(b'\n');
    let _ = out.write_all(&line);
}

struct StderrLines;

impl Write for StderrLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        for line in buf.split_inclusive(|b| *b == b'\n') {
            err.write_all(b"audit: ")?;
            err.write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_reads_become_one_line_with_a_count() {
        let dir = std::env::temp_dir().join(format!("sidekey-audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let (log, writer) = AuditLog::open(Some(&path)).unwrap();
        let read = |uid| ReadOf {
            secret: "db",
            version: 3,
            lease_id: None,
            peer: Some(Peer {
                uid,
                gid: uid,
                pid: None,
            }),
            remote: None,
            token: None,
            route: "/v1/secrets/{name}",
            rule: 0,
        };
        for _ in 0..1000 {
            log.read(read(1000));
        }
        log.read(read(1001));
        log.record(AuditEvent::new(EventKind::Issue).secret(&SecretName::new("db")));
        drop(log);
        writer.finish();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let reads: Vec<_> = lines.iter().filter(|l| l["event"] == "read").collect();
        assert!(reads.iter().any(|l| l["count"] == 1000 && l["peer"]["uid"] == 1000));
        assert!(reads.iter().any(|l| l["count"] == 1 && l["peer"]["uid"] == 1001));
        let _ = std::fs::remove_dir_all(dir);
    }
}
