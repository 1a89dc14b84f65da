//! The audit log: `sidekey::AuditEvent`s as JSON lines, appended by a dedicated thread so a
//! busy socket never waits on the disk. The file is created 0600. Without `audit_log` in the
//! config, lines go to stderr prefixed `audit: `.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use sidekey::AuditEvent;

/// A handle to record audit events; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEvent>,
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
            Some(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| format!("{}: cannot open audit log", path.display()))?,
            ),
            None => Box::new(StderrLines),
        };
        let (tx, rx) = mpsc::channel::<AuditEvent>();
        let thread = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_loop(rx, BufWriter::new(out)))
            .context("cannot start the audit log writer")?;
        Ok((AuditLog { tx }, Writer(thread)))
    }

    /// Records one event (never blocks on I/O).
    pub fn record(&self, event: AuditEvent) {
        let _ = self.tx.send(event);
    }
}

fn write_loop(rx: mpsc::Receiver<AuditEvent>, mut out: BufWriter<Box<dyn Write + Send>>) {
    loop {
        let event = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = out.flush();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        write_event(&mut out, &event);
        // Drain what is queued, then flush once: one write per burst, not per event.
        while let Ok(event) = rx.try_recv() {
            write_event(&mut out, &event);
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
    let _ = out.flush();
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
