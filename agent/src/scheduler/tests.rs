//! The scheduler against a fake backend, on paused tokio time: a test sleeps a minute of
//! lease life in microseconds, and the task's clock ([`PausedClock`]) moves with it, so
//! leases really expire. The fake issues leases with a TTL and a max TTL, renews them up to
//! the max, revokes, and can be taken down and brought back; it logs every call with the
//! second it happened.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use sidekey::{SecretData, SecretName, SecretString};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::*;
use crate::backoff::MAX_BACKOFF;

const T0: Duration = Duration::from_secs(1_700_000_000);

/// The time as tokio's (paused) clock has it, from a fixed start.
struct PausedClock(Instant);

impl Clock for PausedClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + self.0.elapsed()
    }
}

impl PausedClock {
    /// Seconds since the test started.
    fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// One call the task made: when (seconds since start), what, on which lease, and whether it
/// worked.
#[derive(Debug, Clone)]
struct Call {
    at: f64,
    op: &'static str,
    lease: String,
    ok: bool,
}

/// A leased backend: each fetch issues `lease/N` for `ttl`, renewable up to `max_ttl`.
struct Fake {
    clock: Arc<PausedClock>,
    ttl: Duration,
    max_ttl: Duration,
    down: AtomicBool,
    issued: AtomicU32,
    calls: Mutex<Vec<Call>>,
}

impl Fake {
    fn log(&self, op: &'static str, lease: &str, ok: bool) {
        let at = self.clock.secs();
        self.calls.lock().unwrap().push(Call {
            at,
            op,
            lease: lease.to_owned(),
            ok,
        });
    }

    fn check_up(&self, op: &'static str, lease: &str) -> Result<(), Error> {
        let up = !self.down.load(Ordering::SeqCst);
        self.log(op, lease, up);
        up.then_some(()).ok_or_else(|| Error::Transient("fake is down".into()))
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The times of the calls `op` that answered `ok`.
    fn times(&self, op: &str, ok: bool) -> Vec<f64> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.op == op && c.ok == ok)
            .map(|c| c.at)
            .collect()
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Backend for Fake {
    async fn fetch(&self, _: &SecretSpec) -> Result<Issued, Error> {
        self.check_up("fetch", "")?;
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let id = LeaseId::new(format!("lease/{n}"));
        let lease = Lease::issued(Some(id), self.clock.now(), self.ttl, true);
        let data = SecretData::single("password", SecretString::from(format!("v{n}")));
        Ok(Issued::plain(data, Some(lease)))
    }

    async fn fetch_version(&self, _: &SecretSpec, id: Option<&str>, _: Option<&str>) -> Result<Issued, Error> {
        self.check_up("fetch_version", id.unwrap_or_default())?;
        let data = SecretData::single("password", SecretString::from("old"));
        Ok(Issued::plain(data, None))
    }

    fn revocation(&self, _: &SecretSpec) -> Revocation {
        Revocation::Lease
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, Error> {
        let id = lease.id.as_ref().expect("fake leases have ids");
        self.check_up("renew", id.as_str())?;
        let now = self.clock.now();
        let max = lease.issued_at + self.max_ttl;
        Ok(Lease {
            renewed_at: now,
            expires_at: (now + lease.ttl).min(max),
            ..lease.clone()
        })
    }

    async fn revoke(&self, lease: &LeaseId) -> Result<(), Error> {
        self.check_up("revoke", lease.as_str())
    }
}

/// A running task for secret `db` on a [`Fake`].
struct Harness {
    clock: Arc<PausedClock>,
    fake: Arc<Fake>,
    store: Arc<Store>,
    commands: mpsc::Sender<Command>,
    stop: CancellationToken,
    holds: Arc<Holds>,
    task: JoinHandle<Option<Lease>>,
}

impl Harness {
    fn start(ttl: u64, max_ttl: u64) -> Harness {
        let clock = Arc::new(PausedClock(Instant::now()));
        let fake = Arc::new(Fake {
            clock: clock.clone(),
            ttl: Duration::from_secs(ttl),
            max_ttl: Duration::from_secs(max_ttl),
            down: AtomicBool::new(false),
            issued: AtomicU32::new(0),
            calls: Mutex::new(Vec::new()),
        });
        let name = SecretName::new("db");
        let store = Arc::new(Store::new([name.clone()]));
        // Audit lines to stderr, which the test harness captures.
        let (audit, _writer) = AuditLog::open(None).unwrap();
        let (commands, receiver) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let holds = Arc::new(Holds::default());
        let task = Task {
            spec: SecretSpec {
                name,
                backend: "fake".into(),
                source: sidekey::config::SecretSource::VaultLease {
                    path: "fake/creds/app".into(),
                },
                refresh: Duration::from_secs(60),
            },
            backend: fake.clone(),
            store: store.clone(),
            audit,
            stop: stop.clone(),
            commands: receiver,
            held: None,
            clock: clock.clone(),
            holds: holds.clone(),
        };
        Harness {
            clock,
            fake,
            store,
            commands,
            stop,
            holds,
            task: tokio::spawn(task.run()),
        }
    }

    /// Sleeps until `secs` seconds after the start.
    async fn at(&self, secs: f64) {
        let elapsed = self.clock.secs();
        assert!(secs >= elapsed, "the test is already at {elapsed} s");
        sleep(Duration::from_secs_f64(secs - elapsed)).await;
    }

    fn served(&self) -> Result<Arc<crate::store::Served>, crate::store::Unavailable> {
        self.store.read("db", self.clock.now())
    }

    fn served_lease(&self) -> String {
        let served = self.served().unwrap();
        served.lease.as_ref().unwrap().id.as_ref().unwrap().to_string()
    }

    async fn send<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.unwrap();
        answer.await.unwrap()
    }

    async fn stop(self) -> Option<Lease> {
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn leases_are_renewed_at_about_two_thirds_of_their_ttl() {
    let h = Harness::start(30, 3600);
    h.at(50.0).await;
    assert_eq!(h.fake.times("fetch", true), [0.0]);
    let renewals = h.fake.times("renew", true);
    assert_eq!(renewals.len(), 2, "{:?}", h.fake.calls());
    // 2/3 of 30 s, up to 10 % earlier.
    assert!((18.0..=20.0).contains(&renewals[0]), "{renewals:?}");
    assert!((18.0..=20.0).contains(&(renewals[1] - renewals[0])), "{renewals:?}");
    let served = h.served().unwrap();
    assert_eq!(served.version, 1, "a renewal keeps the version");
    assert!(served.lease.as_ref().unwrap().remaining(h.clock.now()) > Duration::from_secs(10));
    let held = h.stop().await.unwrap();
    assert_eq!(held.id.unwrap().as_str(), "lease/1");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_capped_at_the_max_ttl_leads_to_a_new_credential_and_the_old_lease_is_retired() {
    // ttl 30 s, max 50 s: the second renewal (at ~38 s) is granted only ~12 s.
    let h = Harness::start(30, 50);
    h.at(47.0).await;
    let fetches = h.fake.times("fetch", true);
    let renewals = h.fake.times("renew", true);
    assert_eq!(fetches.len(), 2, "{:?}", h.fake.calls());
    assert_eq!(renewals.len(), 2, "{:?}", h.fake.calls());
    assert_eq!(fetches[1], renewals[1], "re-issued right after the capped renewal");
    assert_eq!(h.served().unwrap().version, 2);
    assert_eq!(h.served_lease(), "lease/2");
    // The old credential had ~10 s left (a third of its TTL); it is revoked after a grace of
    // a sixth of its TTL, for readers still using it.
    let revoke = h.fake.calls().into_iter().find(|c| c.op == "revoke").unwrap();
    assert_eq!(revoke.lease, "lease/1");
    assert!((revoke.at - fetches[1] - 5.0).abs() < 0.01, "{revoke:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_up_to_the_cap_and_the_next_success_clears_them() {
    let h = Harness::start(60, 3600);
    h.at(1.0).await;
    h.fake.set_down(true);
    h.at(50.0).await;
    let failed = h.fake.times("renew", false);
    assert!(failed.len() >= 4, "{failed:?}");
    assert!((36.0..=40.0).contains(&failed[0]), "first renewal at 2/3: {failed:?}");
    let gaps: Vec<f64> = failed.windows(2).map(|w| w[1] - w[0]).collect();
    assert!((0.5..=1.0).contains(&gaps[0]), "{gaps:?}");
    assert!((1.0..=2.0).contains(&gaps[1]), "{gaps:?}");
    assert!(
        gaps.iter().all(|g| (0.1..=MAX_BACKOFF.as_secs_f64()).contains(g)),
        "{gaps:?}"
    );
    // Meanwhile the value is served, and health says what fails.
    assert_eq!(h.served().unwrap().version, 1);
    let failing = h.store.unhealthy(h.clock.now());
    assert!(failing[0].served && failing[0].reason.contains("renew failed: fake is down"));

    // Back up: the next retry (within a third of the ~10 s left) renews.
    h.fake.set_down(false);
    h.at(55.0).await;
    let renewed = h.fake.times("renew", true);
    assert_eq!(renewed.len(), 1, "{:?}", h.fake.calls());
    assert!(renewed[0] - 50.0 <= 10.0 / 3.0 + 0.01, "{renewed:?}");
    assert!(h.store.unhealthy(h.clock.now()).is_empty());
    let served = h.served().unwrap();
    assert_eq!(served.version, 1, "renewed, not replaced");
    assert!(served.lease.as_ref().unwrap().remaining(h.clock.now()) > Duration::from_secs(50));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_revocation_revokes_the_served_lease_and_serves_a_fresh_credential_at_once() {
    let h = Harness::start(30, 3600);
    h.at(5.0).await;
    let done = h.send(|reply| Command::Revoke { lease: None, reply }).await;
    assert_eq!(done.action, RevokeAction::RevokedLease);
    assert!(done.revoked);
    assert_eq!(done.lease_id.as_deref(), Some("lease/1"));
    assert_eq!(done.version, Some(2));
    assert!(done.detail.contains("version 2 issued and served"), "{}", done.detail);
    let calls = h.fake.calls();
    let ops: Vec<_> = calls.iter().map(|c| (c.op, c.lease.as_str())).collect();
    assert_eq!(ops, [("fetch", ""), ("revoke", "lease/1"), ("fetch", "")]);
    assert!(calls[1..].iter().all(|c| c.at == 5.0), "{calls:?}");
    assert_eq!(h.served_lease(), "lease/2");
    // The schedule goes on from the new lease: renewed at ~2/3 of its TTL from 5 s.
    h.at(30.0).await;
    let renewed = h.fake.calls().into_iter().find(|c| c.op == "renew").unwrap();
    assert_eq!(renewed.lease, "lease/2");
    assert!((23.0..=25.0).contains(&renewed.at), "{renewed:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn in_an_outage_the_last_good_value_is_served_while_valid_then_refused() {
    let h = Harness::start(30, 3600);
    h.at(1.0).await;
    h.fake.set_down(true);
    h.at(29.5).await;
    assert_eq!(h.served().unwrap().version, 1, "still valid: served");
    h.at(30.5).await;
    let refused = h.served().unwrap_err();
    assert!(
        matches!(refused, crate::store::Unavailable::Expired { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("fake is down"), "{refused}");
    // The renewals were retried ever closer together as the lease ran out.
    let failed = h.fake.times("renew", false);
    assert!(
        failed.len() >= 8 && failed.iter().filter(|&&t| t > 29.0).count() >= 3,
        "{failed:?}"
    );
    // Once it expired, the task fetches anew, trying no slower than the backoff cap.
    h.fake.set_down(false);
    h.at(30.5 + MAX_BACKOFF.as_secs_f64()).await;
    assert_eq!(h.fake.times("fetch", true).len(), 2, "{:?}", h.fake.calls());
    assert_eq!(h.served().unwrap().version, 2);
    assert_eq!(h.served_lease(), "lease/2");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn routes_commands_refresh_through_the_task_and_read_other_versions_without_serving_them() {
    let h = Harness::start(30, 3600);
    h.at(2.0).await;
    // Refresh: a leased credential is re-issued and served; the old lease is retired.
    h.send(|reply| Command::Refresh { reply }).await.unwrap();
    assert_eq!(h.served().unwrap().version, 2);
    assert_eq!(h.served_lease(), "lease/2");
    // Another version: answered, never served.
    let old = h
        .send(|reply| Command::FetchVersion {
            version_id: Some("v0".into()),
            version_stage: None,
            reply,
        })
        .await
        .unwrap();
    assert_eq!(old.data.field("password").unwrap().expose(), "old");
    assert_eq!(h.served().unwrap().version, 2);
    // A failed refresh answers the error and changes nothing served.
    h.fake.set_down(true);
    let err = h.send(|reply| Command::Refresh { reply }).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(h.served_lease(), "lease/2");
    assert!(h.store.unhealthy(h.clock.now()).is_empty());
    h.fake.set_down(false);
    h.at(10.0).await;
    let revoked = h.fake.calls().into_iter().find(|c| c.op == "revoke").unwrap();
    assert_eq!((revoked.lease.as_str(), revoked.at), ("lease/1", 7.0));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_replaced_lease_a_session_holds_is_not_revoked_before_its_expiry() {
    // ttl 30 s, max 50 s: re-issued at ~38 s; lease/1 expires at 50 s.
    let h = Harness::start(30, 50);
    h.at(1.0).await;
    let served = h.served().unwrap();
    let hold = h.holds.hold(
        &SecretName::new("db"),
        served.version,
        served.lease.as_ref().and_then(|l| l.id.as_ref()),
    );
    h.at(49.0).await;
    assert_eq!(
        h.served_lease(),
        "lease/2",
        "new readers get the new credential at once"
    );
    assert!(
        h.fake.calls().iter().all(|c| c.op != "revoke"),
        "held: not revoked after the grace: {:?}",
        h.fake.calls()
    );
    // Past its expiry it is never revoked either: the issuer expires it.
    h.at(60.0).await;
    assert!(h.fake.calls().iter().all(|c| c.op != "revoke"), "{:?}", h.fake.calls());
    drop(hold);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_replaced_lease_is_revoked_as_soon_as_its_last_session_ends() {
    let h = Harness::start(30, 50);
    h.at(1.0).await;
    let hold = h.holds.hold(&SecretName::new("db"), 1, Some(&LeaseId::new("lease/1")));
    h.at(45.0).await;
    assert!(h.fake.calls().iter().all(|c| c.op != "revoke"));
    drop(hold);
    h.at(45.5).await;
    let revoke = h.fake.calls().into_iter().find(|c| c.op == "revoke").unwrap();
    assert_eq!((revoke.lease.as_str(), revoke.at), ("lease/1", 45.0));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_revocation_ends_the_sessions_of_the_revoked_credential_only() {
    let h = Harness::start(30, 3600);
    h.at(1.0).await;
    let mut hold = h.holds.hold(&SecretName::new("db"), 1, Some(&LeaseId::new("lease/1")));
    let done = h.send(|reply| Command::Revoke { lease: None, reply }).await;
    assert!(
        done.detail.contains("1 proxy session(s) using it ended"),
        "{}",
        done.detail
    );
    assert_eq!(hold.ended().await, End::Revoked);
    let mut new = h.holds.hold(&SecretName::new("db"), 2, Some(&LeaseId::new("lease/2")));
    let pending = tokio::time::timeout(Duration::from_secs(1), new.ended()).await;
    assert!(pending.is_err(), "the fresh credential's sessions go on");
    h.stop().await;
}
