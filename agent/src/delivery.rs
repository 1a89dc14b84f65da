//! `[[file]]` delivery: one [`Task`] per file renders the secrets it uses into the file each
//! time a served version changes, then runs the file's `on_change` command.
//!
//! - **When**: the task wakes on every change of the [`Store`] and looks at the slots of the
//!   file's secrets ([`FileSpec::secrets`]); it renders once all of them are served and again
//!   whenever any of their versions changes. Versions that come and go while a render or
//!   `on_change` is running are skipped: the file always ends with the latest. An expired
//!   value is never written: while one of the secrets is expired the file is not rendered.
//! - **What**: `template` (see [`sidekey::template`]) filled from the secrets' data, or the
//!   `secret`'s data as a JSON object and a newline when there is no template. The text lives
//!   in a [`SecretString`] and the old content, when compared, in `Zeroizing` memory.
//! - **How**: atomically — a temporary file in the same directory, created 0600, given its
//!   `owner` and `group` (chown) and the configured mode exactly (whatever the umask),
//!   written, fsynced, renamed over the file, and the directory fsynced. A reader sees the
//!   old file or the new one, never a part. When the file already holds exactly that text
//!   with that mode and owner, it is left alone and `on_change` does not run (an agent
//!   restart does not reload the app).
//! - **`on_change`**: run without a shell, stdin/stdout/stderr to /dev/null (its output could
//!   hold the value), with `SIDEKEY_FILE`, `SIDEKEY_SECRET` and `SIDEKEY_VERSION` set (for a
//!   file of several secrets, their names and versions, comma-separated, in the same order),
//!   in its own process group, killed after [`ON_CHANGE_TIMEOUT`].
//! - **Failures** never stop the agent: a template naming a field the data lacks, a write
//!   that fails, an owner the agent may not give the file to, leave the old file in place;
//!   they and a failed `on_change` are recorded in [`Status`] (for `/v1/health`), the audit
//!   log and `sidekey_file_renders_total` / `sidekey_file_commands_total`. Write failures are
//!   retried (1 s doubling to 30 s); a template or ownership error waits for the next version.
//! - **Delivered**: each file's last delivered versions are kept beside its failure in
//!   [`Status`], which readiness ([`crate::ready`]) waits on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sidekey::api::FailingFile;
use sidekey::atomic::{write_owned, Ownership, WriteError, Written};
use sidekey::audit::EventKind;
use sidekey::config::{Account, FileSpec};
use sidekey::template;
use sidekey::{AuditEvent, SecretData, SecretName, SecretString};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::metrics;
use crate::store::{Served, Store};

/// How long an `on_change` command may run before it is killed.
pub const ON_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a file was not delivered. Names paths, fields, owners and programs, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template names a field the secret's data lacks, or a value its filter cannot write.
    #[error(transparent)]
    Render(#[from] template::RenderError),
    /// Creating, writing or renaming the file failed.
    #[error(transparent)]
    Write(WriteError),
    /// The file could not be given its `owner` and `group` (the agent is not root, or the
    /// user is gone); the old file is kept.
    #[error("cannot give {path} to {who}: {source}")]
    Owner {
        /// The file.
        path: String,
        /// The owner and group as configured, e.g. `owner root (0), group root (0)`.
        who: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
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

    fn write(e: WriteError, path: &Path, who: String) -> Error {
        if e.ownership {
            Error::Owner {
                path: path.display().to_string(),
                who,
                source: e.source,
            }
        } else {
            Error::Write(e)
        }
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
    /// The last versions written (or found already written) with its `on_change` run.
    delivered: Option<Vec<u64>>,
    /// The last failure, until a delivery clears it.
    failed: Option<Failed>,
}

#[derive(Debug)]
struct Failed {
    /// The file's secrets, comma-separated.
    secret: String,
    action: &'static str,
    reason: String,
    /// Whether the task retries by itself (a write); else it waits for a new version.
    retried: bool,
}

/// Where one file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing delivered and nothing failed yet (its secrets are not all served yet).
    Pending,
    /// Written, and its `on_change` ran, at these versions of its secrets; no failure since.
    Delivered(Vec<u64>),
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
                    secret: f.secret.clone(),
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
                delivered: Some(versions),
                ..
            }) => Outcome::Delivered(versions.clone()),
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
            secret: names(&spec.secrets),
            action: error.action(),
            reason: error.to_string(),
            retried: error.is_retried(),
        };
        self.change(&spec.path, |state| state.failed = Some(failed));
    }

    /// Records `versions` (of the file's secrets) as delivered at `path`, and clears its
    /// failure; with `renders_only`, only a render failure (a failed `on_change` stands until
    /// the command succeeds).
    pub(crate) fn delivered(&self, path: &Path, versions: &[u64], renders_only: bool) {
        self.change(path, |state| {
            state.delivered = Some(versions.to_vec());
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
        let mut slots = Vec::with_capacity(self.spec.secrets.len());
        for name in &self.spec.secrets {
            match self.store.subscribe(name.as_str()) {
                Some(slot) => slots.push(slot),
                None => return, // validation makes every [[file]] name configured secrets
            }
        }
        if self.spec.mode & 0o007 != 0 {
            tracing::warn!(file = %self.spec.path.display(), mode = %format!("{:04o}", self.spec.mode), "the configured mode opens the secret's file to every user on this host");
        }
        let mut updates = self.store.updates();
        let mut settled: Option<Vec<u64>> = None;
        let mut failures = 0u32;
        loop {
            // Marked seen before the slots are read: a change made meanwhile wakes the next wait.
            updates.borrow_and_update();
            let now = SystemTime::now();
            let served: Option<Vec<Arc<Served>>> = slots
                .iter()
                .map(|slot| {
                    slot.borrow()
                        .served
                        .clone()
                        .filter(|s| s.lease.as_ref().is_none_or(|l| l.is_valid(now)))
                })
                .collect();
            let mut retry = None;
            if let Some(served) = served.filter(|s| Some(versions(s)) != settled) {
                match self.deliver(&served).await {
                    Err(e) if e.is_retried() => {
                        retry = Some(Duration::from_secs(1 << failures.min(5)).min(Duration::from_secs(30)));
                        failures += 1;
                    }
                    _ => {
                        settled = Some(versions(&served));
                        failures = 0;
                    }
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                changed = updates.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(retry.unwrap_or_default()), if retry.is_some() => {}
            }
        }
    }

    /// Renders and writes one set of versions (`served`, one per secret of the file), runs
    /// `on_change` after a write, and records the outcome everywhere it is reported.
    async fn deliver(&self, served: &[Arc<Served>]) -> Result<(), Error> {
        let file = self.spec.path.display().to_string();
        let secrets = names(&self.spec.secrets);
        let versions = versions(served);
        let version = joined(&versions);
        let written = match self.write(served).await {
            Ok(written) => written,
            Err(e) => {
                metrics::file_render(&file, "error");
                return Err(self.failed(e, served));
            }
        };
        if written == Written::Unchanged {
            metrics::file_render(&file, "unchanged");
            tracing::debug!(file, secret = %secrets, version, "file already up to date");
            self.status.delivered(&self.spec.path, &versions, true);
            return Ok(());
        }
        metrics::file_render(&file, "written");
        tracing::info!(file, secret = %secrets, version, "file written");
        for (name, served) in self.spec.secrets.iter().zip(served) {
            self.audit.record(
                AuditEvent::new(EventKind::Render { path: file.clone() })
                    .secret(name)
                    .version(served.version),
            );
        }
        if let Some((program, args)) = self.spec.on_change.split_first() {
            let env = [
                ("SIDEKEY_FILE", file.clone()),
                ("SIDEKEY_SECRET", secrets.clone()),
                ("SIDEKEY_VERSION", version),
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
                    return Err(self.failed(e, served));
                }
            }
        }
        self.status.delivered(&self.spec.path, &versions, false);
        Ok(())
    }

    /// Renders `served` and writes it with the file's mode and owner, off the async threads.
    async fn write(&self, served: &[Arc<Served>]) -> Result<Written, Error> {
        let text = match &self.spec.template {
            Some(template) => {
                let values: BTreeMap<SecretName, SecretData> = self
                    .spec
                    .secrets
                    .iter()
                    .zip(served)
                    .map(|(name, served)| (name.clone(), served.data.clone()))
                    .collect();
                template.render(values)?
            }
            // Validation gives a file without a template its `secret`, the only one it has.
            None => SecretString::from(format!("{}\n", served[0].data.expose_json())),
        };
        let owner = Ownership {
            uid: resolve(self.spec.owner.as_ref(), Who::User, &self.spec.path)?,
            gid: resolve(self.spec.group.as_ref(), Who::Group, &self.spec.path)?,
        };
        let who = describe(self.spec.owner.as_ref(), self.spec.group.as_ref());
        let (path, mode) = (self.spec.path.clone(), self.spec.mode);
        // `text` moves into the closure and is zeroed there when dropped.
        tokio::task::spawn_blocking(move || {
            write_owned(&path, text.expose().as_bytes(), mode, owner).map_err(|e| Error::write(e, &path, who))
        })
        .await
        .expect("writing a file does not panic")
    }

    /// Reports a failure (log, audit, health) and hands it back.
    fn failed(&self, e: Error, served: &[Arc<Served>]) -> Error {
        let file = self.spec.path.display();
        let retry = if e.is_retried() {
            "; retrying"
        } else {
            "; the file keeps its previous content"
        };
        let version = joined(&versions(served));
        tracing::warn!(file = %file, secret = %names(&self.spec.secrets), version, error = %e, "file delivery failed{retry}");
        for (name, served) in self.spec.secrets.iter().zip(served) {
            self.audit.record(
                AuditEvent::new(EventKind::Failure {
                    action: e.action().to_owned(),
                    reason: format!("{file}: {e}"),
                })
                .secret(name)
                .version(served.version),
            );
        }
        self.status.fail(&self.spec, &e);
        e
    }
}

/// The versions of `served`, in order.
fn versions(served: &[Arc<Served>]) -> Vec<u64> {
    served.iter().map(|s| s.version).collect()
}

/// `a,b,c`: how a file's several secrets (and versions) are named in logs, health and
/// `on_change`'s environment.
fn names(secrets: &[SecretName]) -> String {
    secrets.iter().map(SecretName::as_str).collect::<Vec<_>>().join(",")
}

fn joined(versions: &[u64]) -> String {
    versions.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// A user or a group.
#[derive(Clone, Copy)]
enum Who {
    User,
    Group,
}

/// The id of `account`: as validated, or (a name `check --portable` kept unresolved) looked
/// up now; a failed lookup is an [`Error::Owner`] of the file at `path`.
fn resolve(account: Option<&Account>, who: Who, path: &Path) -> Result<Option<u32>, Error> {
    let Some(account) = account else {
        return Ok(None);
    };
    if let Some(id) = account.id {
        return Ok(Some(id));
    }
    let (word, found) = match who {
        Who::User => (
            "owner",
            nix::unistd::User::from_name(&account.name).map(|u| u.map(|u| u.uid.as_raw())),
        ),
        Who::Group => (
            "group",
            nix::unistd::Group::from_name(&account.name).map(|g| g.map(|g| g.gid.as_raw())),
        ),
    };
    let source = match found {
        Ok(Some(id)) => return Ok(Some(id)),
        Ok(None) => std::io::Error::new(std::io::ErrorKind::NotFound, "no such name on this host"),
        Err(e) => e.into(),
    };
    Err(Error::Owner {
        path: path.display().to_string(),
        who: format!("{word} {}", account.name),
        source,
    })
}

/// `owner nobody (65534), group nogroup (65534)`, for messages.
fn describe(owner: Option<&Account>, group: Option<&Account>) -> String {
    let parts: Vec<String> = [("owner", owner), ("group", group)]
        .into_iter()
        .filter_map(|(key, account)| account.map(|a| format!("{key} {a}")))
        .collect();
    parts.join(", ")
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
