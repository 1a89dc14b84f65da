//! `[[file]]` delivery: one [`Task`] per file renders its secret into the file each time the
//! served version changes, then runs the file's `on_change` command.
//!
//! - **When**: the task watches the secret's [`Store`] channel; it renders on the first value
//!   served and on every new version. Versions that come and go while a render or
//!   `on_change` is running are skipped: the file always ends with the latest. An expired
//!   value is never written.
//! - **What**: `template` (see [`sidekey::template`]) filled from the secret's data, or the
//!   data as a JSON object and a newline when there is no template. The text lives in a
//!   [`SecretString`] and the old content, when compared, in [`Zeroizing`] memory.
//! - **How**: atomically — a temporary file in the same directory, created 0600, given the
//!   configured mode exactly (whatever the umask), written, fsynced, renamed over the file,
//!   and the directory fsynced. A reader sees the old file or the new one, never a part.
//!   When the file already holds exactly that text with that mode, it is left alone and
//!   `on_change` does not run (an agent restart does not reload the app).
//! - **`on_change`**: run without a shell, stdin/stdout/stderr to /dev/null (its output could
//!   hold the value), with `SIDEKEY_FILE`, `SIDEKEY_SECRET` and `SIDEKEY_VERSION` set, in its
//!   own process group, killed after [`ON_CHANGE_TIMEOUT`].
//! - **Failures** never stop the agent: a template naming a field the data lacks, or a
//!   write that fails, leaves the old file in place; it and a failed `on_change` are
//!   recorded in [`Status`] (for `/v1/health`), the audit log and
//!   `sidekey_file_renders_total` / `sidekey_file_commands_total`. Write failures are
//!   retried (1 s doubling to 30 s); a template error waits for the next version.
//! - **Delivered**: each file's last delivered version is kept beside its failure in
//!   [`Status`], which readiness ([`crate::ready`]) waits on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sidekey::api::FailingFile;
use sidekey::atomic::{write_atomically, WriteError, Written};
use sidekey::audit::EventKind;
use sidekey::config::FileSpec;
use sidekey::template::{self, Template};
use sidekey::{AuditEvent, SecretName, SecretString};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::metrics;
use crate::store::{Served, Store};

/// How long an `on_change` command may run before it is killed.
pub const ON_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a file was not delivered. Names paths, fields and programs, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template does not parse (config validation refuses this; kept for safety).
    #[error("template: {0}")]
    Template(#[from] template::Error),
    /// The template names a field the secret's data lacks.
    #[error(transparent)]
    Render(#[from] template::RenderError),
    /// Creating, writing or renaming the file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// `on_change` failed.
    #[error("on_change {program:?} {how}")]
    OnChange {
        /// The program run.
        program: String,
        /// What went wrong: could not start, exited with a status, timed out.
        how: String,
        /// The metric's `result` label.
        result: &'static str,
    },
}

impl Error {
    /// Write failures may pass (a full disk, a directory being mounted); the others need a
    /// new version or a config change.
    fn is_retried(&self) -> bool {
        matches!(self, Error::Write(_))
    }

    fn action(&self) -> &'static str {
        match self {
            Error::OnChange { .. } => "on_change",
            _ => "render",
        }
    }
}

/// Each file's last outcome, by path: what `/v1/health` reports (the failures) and what
/// readiness (`READY=1`, `run --once`, [`crate::ready`]) waits for (every file delivered).
#[derive(Debug)]
pub struct Status {
    files: Mutex<BTreeMap<PathBuf, FileState>>,
    /// Bumped on every change, so that a waiter wakes instead of polling.
    updates: watch::Sender<u64>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            files: Mutex::default(),
            updates: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct FileState {
    /// The last version written (or found already written) with its `on_change` run.
    delivered: Option<u64>,
    /// The last failure, until a delivery clears it.
    failed: Option<Failed>,
}

#[derive(Debug)]
struct Failed {
    secret: SecretName,
    action: &'static str,
    reason: String,
    /// Whether the task retries by itself (a write); else it waits for a new version.
    retried: bool,
}

/// Where one file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing delivered and nothing failed yet (its secret is not served yet).
    Pending,
    /// Written, and its `on_change` ran, at this version; no failure since.
    Delivered(u64),
    /// The last attempt failed (never a value in `reason`).
    Failed {
        /// Why.
        reason: String,
        /// Whether the task retries by itself; `false`: only a new version can fix it.
        retried: bool,
    },
}

impl Status {
    /// The failing deliveries, in path order.
    pub fn failing(&self) -> Vec<FailingFile> {
        let files = self.files.lock().expect("never poisoned");
        files
            .iter()
            .filter_map(|(path, state)| {
                let f = state.failed.as_ref()?;
                Some(FailingFile {
                    path: path.display().to_string(),
                    secret: f.secret.to_string(),
                    reason: f.reason.clone(),
                })
            })
            .collect()
    }

    /// Where the file at `path` stands; a failure outranks an earlier delivery.
    pub fn outcome(&self, path: &Path) -> Outcome {
        let files = self.files.lock().expect("never poisoned");
        match files.get(path) {
            Some(FileState { failed: Some(f), .. }) => Outcome::Failed {
                reason: f.reason.clone(),
                retried: f.retried,
            },
            Some(FileState {
                delivered: Some(version),
                ..
            }) => Outcome::Delivered(*version),
            _ => Outcome::Pending,
        }
    }

    /// A receiver that wakes on every change of any file's outcome.
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    fn change(&self, path: &Path, f: impl FnOnce(&mut FileState)) {
        f(self
            .files
            .lock()
            .expect("never poisoned")
            .entry(path.to_owned())
            .or_default());
        self.updates.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn fail(&self, spec: &FileSpec, error: &Error) {
        let failed = Failed {
            secret: spec.secret.clone(),
            action: error.action(),
            reason: error.to_string(),
            retried: error.is_retried(),
        };
        self.change(&spec.path, |state| state.failed = Some(failed));
    }

    /// Records `version` as delivered at `path`, and clears its failure; with `renders_only`,
    /// only a render failure (a failed `on_change` stands until the command succeeds).
    pub(crate) fn delivered(&self, path: &Path, version: u64, renders_only: bool) {
        self.change(path, |state| {
            state.delivered = Some(version);
            if !renders_only || state.failed.as_ref().is_some_and(|f| f.action == "render") {
                state.failed = None;
            }
        });
    }
}

/// One `[[file]]`'s task.
pub struct Task {
    /// The file.
    pub spec: FileSpec,
    /// Where the served values are.
    pub store: Arc<Store>,
    /// The audit log.
    pub audit: AuditLog,
    /// Failures, for `/v1/health`.
    pub status: Arc<Status>,
    /// Cancelled on shutdown; a write or `on_change` in progress is finished first.
    pub stop: CancellationToken,
}

impl Task {
    /// Runs until `stop` is cancelled.
    pub async fn run(self) {
        let Some(mut slot) = self.store.subscribe(self.spec.secret.as_str()) else {
            return; // validation makes every [[file]] name a configured secret
        };
        let template = self.spec.template.as_deref().map(Template::parse).transpose();
        if self.spec.mode & 0o007 != 0 {
            tracing::warn!(file = %self.spec.path.display(), mode = %format!("{:04o}", self.spec.mode), "the configured mode opens the secret's file to every user on this host");
        }
        let mut settled: Option<u64> = None;
        let mut failures = 0u32;
        loop {
            let served = slot.borrow_and_update().served.clone();
            let now = SystemTime::now();
            let mut retry = None;
            if let Some(served) = served
                .filter(|s| Some(s.version) != settled)
                .filter(|s| s.lease.as_ref().is_none_or(|l| l.is_valid(now)))
            {
                match self.deliver(&template, &served).await {
                    Err(e) if e.is_retried() => {
                        retry = Some(Duration::from_secs(1 << failures.min(5)).min(Duration::from_secs(30)));
                        failures += 1;
                    }
                    _ => {
                        settled = Some(served.version);
                        failures = 0;
                    }
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                changed = slot.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(retry.unwrap_or_default()), if retry.is_some() => {}
            }
        }
    }

    /// Renders and writes one version, runs `on_change` after a write, and records the
    /// outcome everywhere it is reported.
    async fn deliver(
        &self,
        template: &Result<Option<Template>, template::Error>,
        served: &Served,
    ) -> Result<(), Error> {
        let file = self.spec.path.display().to_string();
        let version = served.version;
        let written = match self.write(template, served).await {
            Ok(written) => written,
            Err(e) => {
                metrics::file_render(&file, "error");
                return Err(self.failed(e, version));
            }
        };
        if written == Written::Unchanged {
            metrics::file_render(&file, "unchanged");
            tracing::debug!(file, secret = %self.spec.secret, version, "file already up to date");
            self.status.delivered(&self.spec.path, version, true);
            return Ok(());
        }
        metrics::file_render(&file, "written");
        tracing::info!(file, secret = %self.spec.secret, version, "file written");
        self.audit.record(
            AuditEvent::new(EventKind::Render { path: file.clone() })
                .secret(&self.spec.secret)
                .version(version),
        );
        if let Some((program, args)) = self.spec.on_change.split_first() {
            let env = [
                ("SIDEKEY_FILE", file.clone()),
                ("SIDEKEY_SECRET", self.spec.secret.to_string()),
                ("SIDEKEY_VERSION", version.to_string()),
            ];
            match run_command(program, args, &env, ON_CHANGE_TIMEOUT).await {
                Ok(()) => {
                    metrics::file_command(&file, "ok");
                    tracing::info!(file, program, "on_change ran");
                }
                Err(e) => {
                    if let Error::OnChange { result, .. } = &e {
                        metrics::file_command(&file, result);
                    }
                    return Err(self.failed(e, version));
                }
            }
        }
        self.status.delivered(&self.spec.path, version, false);
        Ok(())
    }

    /// Renders `served` and writes it, off the async threads.
    async fn write(
        &self,
        template: &Result<Option<Template>, template::Error>,
        served: &Served,
    ) -> Result<Written, Error> {
        let text = match template {
            Ok(Some(template)) => template.render(&served.data)?,
            Ok(None) => SecretString::from(format!("{}\n", served.data.expose_json())),
            Err(e) => return Err(Error::Template(e.clone())),
        };
        let (path, mode) = (self.spec.path.clone(), self.spec.mode);
        // `text` moves into the closure and is zeroed there when dropped.
        tokio::task::spawn_blocking(move || write_atomically(&path, text.expose().as_bytes(), mode))
            .await
            .expect("writing a file does not panic")
            .map_err(Error::Write)
    }

    /// Reports a failure (log, audit, health) and hands it back.
    fn failed(&self, e: Error, version: u64) -> Error {
        let file = self.spec.path.display();
        let retry = if e.is_retried() {
            "; retrying"
        } else {
            "; the file keeps its previous content"
        };
        tracing::warn!(file = %file, secret = %self.spec.secret, version, error = %e, "file delivery failed{retry}");
        self.audit.record(
            AuditEvent::new(EventKind::Failure {
                action: e.action().to_owned(),
                reason: format!("{file}: {e}"),
            })
            .secret(&self.spec.secret)
            .version(version),
        );
        self.status.fail(&self.spec, &e);
        e
    }
}

/// Runs `program args` without a shell, in its own process group, with `env` added and no
/// stdio; the group is killed after `timeout`.
async fn run_command(program: &str, args: &[String], env: &[(&str, String)], timeout: Duration) -> Result<(), Error> {
    let fail = |how: String, result| Error::OnChange {
        program: program.to_owned(),
        how,
        result,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // systemd's socket is the agent's: a command must not report readiness in its name.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}"), "failed"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(fail(format!("failed: {status}"), "failed")),
        Ok(Err(e)) => Err(fail(format!("could not be waited for: {e}"), "failed")),
        Err(_) => {
            if let Some(pid) = child.id() {
                // The whole group: a shell's children too.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            Err(fail(
                format!(
                    "did not finish within {} and was killed",
                    humantime::format_duration(timeout)
                ),
                "timeout",
            ))
        }
    }
}

#[cfg(test)]
mod tests;
