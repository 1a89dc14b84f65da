//! The scheduler: one task per secret that keeps it served — fetch, serve, renew, re-issue,
//! retire the old lease — following the pure schedule in [`plan`]. The loop only sleeps,
//! calls the backend, publishes to the [`Store`], and records audit events and metrics.
//!
//! Each task is the only writer of its secret's slot: routes that would change what is
//! served (a revocation, `refreshNow`) or read the source (another version) send it a
//! [`Command`] and await the answer. How a kind is revoked is its backend's to say
//! ([`Backend::revocation`]); the scheduler knows no kinds.
//!
//! A replaced lease is revoked after a grace period, but not while proxy sessions still use
//! its credential ([`Holds`]): then it is left to its own expiry, when those sessions end
//! themselves. A revocation (a leak) tells the sessions using the revoked credential to end
//! at once. The scheduler knows of holds, not of sessions or protocols.
//!
//! On failure it keeps serving the last good value while that is valid (the store refuses
//! expired ones), records the reason for `/v1/health`, and retries with capped, jittered
//! backoff ([`crate::backoff`]). Time comes from a [`Clock`], so the tests run a task on
//! paused tokio time (`scheduler/tests.rs`).

pub mod plan;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sidekey::api::RevokeAction;
use sidekey::audit::EventKind;
use sidekey::config::SecretSpec;
use sidekey::{AuditEvent, Lease, LeaseId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::audit_log::AuditLog;
use crate::backend::{Backend, Error, Issued, Revocation};
use crate::backoff;
use crate::holds::{End, Holds, Which};
use crate::metrics;
use crate::store::Store;
use plan::{Action, Held};

/// Everything one secret's task needs.
pub struct Task {
    /// The secret.
    pub spec: SecretSpec,
    /// Its backend.
    pub backend: Arc<dyn Backend>,
    /// Where served values go.
    pub store: Arc<Store>,
    /// The audit log.
    pub audit: AuditLog,
    /// Cancelled on shutdown.
    pub stop: CancellationToken,
    /// Requests from routes (`POST /v1/revoke`, `/secretsmanager/get`).
    pub commands: mpsc::Receiver<Command>,
    /// What is already served (restored from the encrypted cache), to renew rather than fetch.
    pub held: Option<Held>,
    /// Where the time comes from ([`SystemClock`] but in tests).
    pub clock: Arc<dyn Clock>,
    /// Who still uses which served version (proxy sessions): consulted before revoking a
    /// replaced lease, told to end on a revocation.
    pub holds: Arc<Holds>,
}

/// Where a task reads the time, to judge leases and plan the next step. The system clock in
/// production; the tests pass one that moves with tokio's paused time, so leases run out as
/// fast as the test's sleeps advance (as rustls' `TimeProvider`).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A request to a secret's task, from a route: the task is the only writer of its secret's
/// slot in the [`Store`], so whatever would change what is served goes through it.
#[derive(Debug)]
pub enum Command {
    /// Revoke the credential with lease `lease` (the one served now when `None`) at its
    /// issuer, and serve a fresh one; answers what was done.
    Revoke {
        /// The lease to revoke; `None`: the served one.
        lease: Option<LeaseId>,
        /// Where the answer goes.
        reply: oneshot::Sender<Revoked>,
    },
    /// Read the secret at its source now, outside the schedule, and serve what was read
    /// (a leased credential is re-issued); answers once it is served, or why it could not be
    /// read — a failure here changes nothing served.
    Refresh {
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Read one specific version (by id or stage) for one request: answered, never served.
    FetchVersion {
        /// The issuer's version id.
        version_id: Option<String>,
        /// The issuer's version stage.
        version_stage: Option<String>,
        /// Where the version goes.
        reply: oneshot::Sender<Result<Issued, Error>>,
    },
}

/// What a revocation did (no value in it).
#[derive(Debug, Clone)]
pub struct Revoked {
    /// What was done.
    pub action: RevokeAction,
    /// Whether the credential was made unusable at its source.
    pub revoked: bool,
    /// The lease revoked, if any.
    pub lease_id: Option<String>,
    /// The version served afterwards.
    pub version: Option<u64>,
    /// What happened, in words.
    pub detail: String,
}

impl Task {
    /// Runs until `stop` is cancelled. Answers the lease held at the end, if any.
    pub async fn run(mut self) -> Option<Lease> {
        let mut commands = std::mem::replace(&mut self.commands, mpsc::channel(1).1);
        let mut held: Option<Held> = self.held.take();
        let mut failures = 0u32;
        let mut retry: Option<(Action, SystemTime)> = None;
        loop {
            let now = self.clock.now();
            let (action, at) = retry
                .take()
                .unwrap_or_else(|| plan::next(held.as_ref(), self.spec.refresh, now, rand::random()));
            let wait = at.duration_since(now).unwrap_or_default();
            tokio::select! {
                _ = self.stop.cancelled() => return held.and_then(|h| h.lease),
                _ = tokio::time::sleep(wait) => {}
                Some(command) = commands.recv() => {
                    if self.command(command, &mut held).await {
                        failures = 0; // plan again from what is served now
                    } else {
                        retry = Some((action, at)); // nothing changed: keep the step due
                    }
                    continue;
                }
            }
            let result = match action {
                Action::Fetch | Action::Refresh => self.fetch(action, &mut held).await,
                Action::Renew => self.renew(&mut held).await,
                Action::Reissue => self.reissue(&mut held).await,
                Action::Rotate => self.rotate(&mut held).await,
            };
            match result {
                Ok(()) => failures = 0,
                Err((failed, e)) => {
                    let now = self.clock.now();
                    let still_valid = held
                        .as_ref()
                        .and_then(|h| h.lease.as_ref())
                        .is_none_or(|l| l.is_valid(now));
                    let next = match (&e, action) {
                        _ if !still_valid => Action::Fetch,
                        (Error::LeaseGone(_) | Error::Unsupported(_), Action::Renew) => Action::Reissue,
                        // A failed rotation is tried again at the next period, not in a loop.
                        (_, Action::Rotate) => Action::Refresh,
                        _ => action,
                    };
                    let wait = backoff::retry_in(failures, rand::random(), lease_of(&held), now);
                    failures = failures.saturating_add(1);
                    let retry_in_ms = wait.as_millis() as u64;
                    if e.is_transient() {
                        tracing::warn!(secret = %self.spec.name, action = failed, error = %e, retry_in_ms, "backend call failed; retrying");
                    } else {
                        tracing::error!(secret = %self.spec.name, action = failed, error = %e, retry_in_ms, "backend call failed; retrying, but this needs a fix at the source or in the config");
                    }
                    self.store.fail(&self.spec.name, format!("{failed} failed: {e}"));
                    metrics::failure(failed, &self.spec.name);
                    self.audit(
                        EventKind::Failure {
                            action: failed.to_owned(),
                            reason: e.to_string(),
                        },
                        None,
                        None,
                    );
                    retry = Some((next, now + wait));
                }
            }
        }
    }

    /// Carries out a route's command; answers whether what is served changed.
    async fn command(&self, command: Command, held: &mut Option<Held>) -> bool {
        match command {
            Command::Revoke { lease, reply } => {
                reply.send(self.revoke(lease, held).await).ok();
                true
            }
            Command::Refresh { reply } => {
                let result = match held {
                    None => self.fetch(Action::Fetch, held).await,
                    Some(Held { lease: Some(_), .. }) => self.reissue(held).await,
                    Some(_) => self.fetch(Action::Refresh, held).await,
                };
                let served = result.is_ok();
                reply.send(result.map_err(|(_, e)| e)).ok();
                served
            }
            Command::FetchVersion {
                version_id,
                version_stage,
                reply,
            } => {
                let version = self
                    .backend
                    .fetch_version(&self.spec, version_id.as_deref(), version_stage.as_deref())
                    .await;
                reply.send(version).ok();
                false
            }
        }
    }

    async fn fetch(&self, action: Action, held: &mut Option<Held>) -> Result<(), (&'static str, Error)> {
        let label = if action == Action::Fetch { "issue" } else { "refresh" };
        let issued = self.backend.fetch(&self.spec).await.map_err(|e| (label, e))?;
        let (version, changed) = self.serve(issued, held);
        if changed || action == Action::Fetch {
            metrics::count("fetches", &self.spec.name);
            self.audit(EventKind::Issue, lease_of(held), Some(version));
            tracing::info!(secret = %self.spec.name, version, "serving");
        }
        Ok(())
    }

    async fn renew(&self, held: &mut Option<Held>) -> Result<(), (&'static str, Error)> {
        let Some(lease) = held.as_ref().and_then(|h| h.lease.clone()) else {
            return Ok(());
        };
        let renewed = self.backend.renew(&lease).await.map_err(|e| ("renew", e))?;
        if plan::is_capped(&renewed) {
            // The lease hit its max TTL: replace the credential now, while the old one still
            // has about a third of its life. The capped renewal is recorded first: the old
            // lease's real expiry is what its remaining readers (proxy sessions) and its
            // retirement go by.
            tracing::debug!(secret = %self.spec.name, "lease reached its max TTL; re-issuing");
            self.store.renewed(&self.spec.name, renewed.clone());
            if let Some(h) = held.as_mut() {
                h.lease = Some(renewed);
            }
            return self.reissue(held).await;
        }
        self.store.renewed(&self.spec.name, renewed.clone());
        if let Some(h) = held.as_mut() {
            h.lease = Some(renewed.clone());
        }
        metrics::count("renewals", &self.spec.name);
        self.audit(EventKind::Renew, Some(&renewed), None);
        Ok(())
    }

    async fn reissue(&self, held: &mut Option<Held>) -> Result<(), (&'static str, Error)> {
        let old = held.as_ref().and_then(|h| h.lease.clone());
        let old_version = self.store.served_version(&self.spec.name);
        let issued = self.backend.fetch(&self.spec).await.map_err(|e| ("reissue", e))?;
        let (version, _) = self.serve(issued, held);
        metrics::count("reissues", &self.spec.name);
        self.audit(EventKind::Reissue, lease_of(held), Some(version));
        tracing::info!(secret = %self.spec.name, version, "re-issued before expiry");
        if let Some(old) = old {
            self.retire(old, old_version.filter(|v| *v != version));
        }
        Ok(())
    }

    /// A responder's revocation, carried out as the backend says for this kind
    /// ([`Backend::revocation`]); answers what was done.
    async fn revoke(&self, lease: Option<LeaseId>, held: &mut Option<Held>) -> Revoked {
        let answer = match self.backend.revocation(&self.spec) {
            Revocation::Lease => self.revoke_lease(lease, held).await,
            Revocation::AtSource(action) => self.revoke_at_source(held, action).await,
            Revocation::Replace(action) => self.replace(held, action).await,
            Revocation::NotRevocable(why) => self.not_revocable(held, &why),
        };
        tracing::warn!(secret = %self.spec.name, action = %answer.action, revoked = answer.revoked, detail = %answer.detail, "revocation requested");
        answer
    }

    /// The lease `lease` (the served one when `None`) revoked at the issuer; when it was the
    /// served one, a fresh credential issued and served at once.
    async fn revoke_lease(&self, lease: Option<LeaseId>, held: &mut Option<Held>) -> Revoked {
        let current = lease_of(held).and_then(|l| l.id.clone());
        let Some(id) = lease.or(current.clone()) else {
            return self.not_revocable(held, "no lease is held for it");
        };
        if let Err(e) = self.backend.revoke(&id).await {
            metrics::failure("revoke", &self.spec.name);
            self.audit(
                EventKind::Failure {
                    action: "revoke".into(),
                    reason: e.to_string(),
                },
                None,
                None,
            );
            return Revoked {
                action: RevokeAction::Failed,
                revoked: false,
                lease_id: Some(id.to_string()),
                version: self.version(),
                detail: format!("revoking lease {id} failed: {e}"),
            };
        }
        metrics::count("revocations", &self.spec.name);
        self.audit.record(
            AuditEvent::new(EventKind::Revoke)
                .secret(&self.spec.name)
                .backend(&self.spec.backend)
                .lease(Some(&id)),
        );
        let mut detail = format!("lease {id} revoked at the issuer");
        let ended = self.holds.end(&self.spec.name, Which::Lease(&id), End::Revoked);
        if ended > 0 {
            detail.push_str(&format!("; {ended} proxy session(s) using it ended"));
        }
        if current.as_ref() == Some(&id) {
            match self.backend.fetch(&self.spec).await {
                Ok(issued) => {
                    let (version, _) = self.serve(issued, held);
                    metrics::count("reissues", &self.spec.name);
                    self.audit(EventKind::Reissue, lease_of(held), Some(version));
                    detail.push_str(&format!("; version {version} issued and served"));
                }
                Err(e) => {
                    self.store
                        .fail(&self.spec.name, format!("re-issue after revocation failed: {e}"));
                    detail.push_str(&format!("; re-issuing failed ({e}), retrying"));
                }
            }
        } else {
            detail.push_str(" (an earlier version; the served one is not affected)");
        }
        Revoked {
            action: RevokeAction::RevokedLease,
            revoked: true,
            lease_id: Some(id.to_string()),
            version: self.version(),
            detail,
        }
    }

    /// A credential revoked by the backend without a lease id (e.g. a certificate by its
    /// serial, a role's older sessions), then re-issued and served.
    async fn revoke_at_source(&self, held: &mut Option<Held>, action: RevokeAction) -> Revoked {
        let served = match self.store.read(self.spec.name.as_str(), self.clock.now()) {
            Ok(served) => served,
            Err(e) => return self.not_revocable(held, &format!("nothing is served to revoke: {e}")),
        };
        let what = match self.backend.revoke_issued(&self.spec, &served.data).await {
            Ok(what) => what,
            Err(e) => {
                metrics::failure("revoke", &self.spec.name);
                return Revoked {
                    action: RevokeAction::Failed,
                    revoked: false,
                    lease_id: None,
                    version: self.version(),
                    detail: format!("revoking failed: {e}"),
                };
            }
        };
        metrics::count("revocations", &self.spec.name);
        self.audit(EventKind::Revoke, None, Some(served.version));
        let ended = self
            .holds
            .end(&self.spec.name, Which::Version(served.version), End::Revoked);
        let what = match ended {
            0 => what,
            n => format!("{what}; {n} proxy session(s) using it ended"),
        };
        let detail = match self.reissue(held).await {
            Ok(()) => format!("{what}; a new one is served"),
            Err((_, e)) => format!("{what}; issuing a new one failed ({e}), retrying"),
        };
        Revoked {
            action,
            revoked: true,
            lease_id: None,
            version: self.version(),
            detail,
        }
    }

    /// A new value at the source (regenerate, RotateSecret), then served.
    async fn replace(&self, held: &mut Option<Held>, action: RevokeAction) -> Revoked {
        let before = self.store.served_version(&self.spec.name);
        match self.rotate(held).await {
            Ok(()) => {
                let ended = before.map_or(0, |v| self.holds.end(&self.spec.name, Which::Version(v), End::Revoked));
                let sessions = match ended {
                    0 => String::new(),
                    n => format!("; {n} proxy session(s) using the old value ended"),
                };
                Revoked {
                    action,
                    revoked: true,
                    lease_id: None,
                    version: self.version(),
                    detail: format!("{action} at the source; the new value is served{sessions}"),
                }
            }
            Err((_, e)) => Revoked {
                action: RevokeAction::Failed,
                revoked: false,
                lease_id: None,
                version: self.version(),
                detail: format!("{action} failed: {e}"),
            },
        }
    }

    fn not_revocable(&self, held: &Option<Held>, why: &str) -> Revoked {
        metrics::failure("revoke", &self.spec.name);
        self.audit(
            EventKind::Failure {
                action: "revoke".into(),
                reason: format!("not revocable: {why}"),
            },
            lease_of(held),
            None,
        );
        Revoked {
            action: RevokeAction::NotRevocable,
            revoked: false,
            lease_id: None,
            version: self.version(),
            detail: why.to_owned(),
        }
    }

    fn version(&self) -> Option<u64> {
        self.store
            .read(self.spec.name.as_str(), self.clock.now())
            .ok()
            .map(|s| s.version)
    }

    /// Revokes a replaced lease after a grace period, in the background — unless proxy
    /// sessions still use `version`: then it waits for them to end, up to the lease's own
    /// expiry, when the sessions end themselves and the issuer expires it (nothing to revoke).
    fn retire(&self, old: Lease, version: Option<u64>) {
        let now = self.clock.now();
        let revoke_at = plan::retire_at(&old, now);
        if revoke_at.is_none() && version.is_none_or(|v| self.holds.count(&self.spec.name, v) == 0) {
            return;
        }
        let grace = revoke_at.map(|at| at.duration_since(now).unwrap_or_default());
        let (backend, audit, name, backend_name, stop, holds, clock) = (
            self.backend.clone(),
            self.audit.clone(),
            self.spec.name.clone(),
            self.spec.backend.clone(),
            self.stop.clone(),
            self.holds.clone(),
            self.clock.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(grace.unwrap_or_default()) => {}
            }
            if let Some(version) = version {
                let left = old.remaining(clock.now());
                let released = tokio::select! {
                    _ = stop.cancelled() => return,
                    released = holds.released(&name, version, left) => released,
                };
                if !released {
                    tracing::info!(secret = %name, version, "replaced credential still used by proxy sessions until its expiry; not revoked");
                    return;
                }
            }
            if grace.is_none() || !old.is_valid(clock.now()) {
                return; // it expires before a revocation would matter
            }
            let Some(id) = old.id.as_ref() else { return };
            let kind = match backend.revoke(id).await {
                Ok(()) => {
                    metrics::count("revocations", &name);
                    EventKind::Revoke
                }
                Err(e) => {
                    metrics::failure("revoke", &name);
                    EventKind::Failure {
                        action: "revoke".into(),
                        reason: e.to_string(),
                    }
                }
            };
            audit.record(
                AuditEvent::new(kind)
                    .secret(&name)
                    .backend(&backend_name)
                    .lease(Some(id)),
            );
        });
    }

    /// Rotates at the source (`rotate_every`), then re-reads. A rotation that leaves nothing
    /// readable fails the re-read, so the last good value stays served.
    async fn rotate(&self, held: &mut Option<Held>) -> Result<(), (&'static str, Error)> {
        if let Some(h) = held.as_mut() {
            h.rotate_at = None;
            h.last_rotation = Some(self.clock.now());
        }
        self.backend.rotate(&self.spec).await.map_err(|e| ("rotate", e))?;
        metrics::count("rotations", &self.spec.name);
        self.audit(EventKind::Rotate, None, None);
        tracing::info!(secret = %self.spec.name, "rotated at the source");
        self.fetch(Action::Refresh, held).await
    }

    fn serve(&self, issued: Issued, held: &mut Option<Held>) -> (u64, bool) {
        let now = self.clock.now();
        let (lease, refresh_at) = (issued.lease.clone(), issued.refresh_at);
        let last_rotation = held.as_ref().and_then(|h| h.last_rotation);
        // Not again before a full period after our own last rotation, whatever the source says.
        let rotate_at = match (issued.rotate_at, last_rotation, self.spec.source.rotate_every()) {
            (Some(at), Some(last), Some(every)) if at <= last + every => Some(last + every),
            (at, _, _) => at,
        };
        let result = self.store.publish(&self.spec.name, issued, now);
        *held = Some(Held {
            lease,
            fetched_at: now,
            refresh_at,
            rotate_at,
            last_rotation,
        });
        result
    }

    fn audit(&self, kind: EventKind, lease: Option<&Lease>, version: Option<u64>) {
        let mut event = AuditEvent::new(kind)
            .secret(&self.spec.name)
            .backend(&self.spec.backend)
            .lease(lease.and_then(|l| l.id.as_ref()));
        event.version = version;
        self.audit.record(event);
    }
}

fn lease_of(held: &Option<Held>) -> Option<&Lease> {
    held.as_ref().and_then(|h| h.lease.as_ref())
}

/// How long a graceful stop waits for in-flight work.
pub const DRAIN: Duration = Duration::from_secs(10);
