//! Who still uses a served version of a secret after the read that handed it out: a proxy
//! session logged in upstream with a credential holds a [`Hold`] on its (secret, version) for
//! as long as it runs. The scheduler asks before revoking a replaced lease
//! ([`Holds::released`]: wait until no session holds it, up to the lease's expiry) and tells
//! the holders of a revoked credential to end ([`Holds::end`]).
//!
//! This is the whole seam between the scheduler and the proxy: the scheduler knows no session
//! and no protocol, the proxy never writes the store. A session ends itself when its own
//! credential expires (it watches the store for the lease); the scheduler only defers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey::{LeaseId, SecretName};
use tokio::sync::{watch, Notify};

/// Why holders are told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The credential was revoked (a leak response): end at once.
    Revoked,
}

/// Which holders [`Holds::end`] is about.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// Those of one served version.
    Version(u64),
    /// Those of the version with this lease.
    Lease(&'a LeaseId),
}

/// The holds of every secret.
#[derive(Default)]
pub struct Holds {
    inner: Mutex<Inner>,
    /// Woken whenever a hold is dropped.
    released: Notify,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<(SecretName, u64), Entry>,
    /// Versions told to end recently: a session that logs in with one a moment after the
    /// revocation is ended as it takes its hold.
    ended: VecDeque<(SecretName, u64, Option<LeaseId>, End)>,
}

struct Entry {
    count: usize,
    lease: Option<LeaseId>,
    end: watch::Sender<Option<End>>,
}

/// How many ended versions are remembered (a few per secret is plenty: they matter only for
/// the milliseconds between a read and a hold).
const ENDED_KEPT: usize = 64;

/// One user of a served version, until dropped.
pub struct Hold {
    holds: Arc<Holds>,
    key: (SecretName, u64),
    end: watch::Receiver<Option<End>>,
}

impl Holds {
    /// A hold on `version` of `name` (whose lease is `lease`, if it has one).
    pub fn hold(self: &Arc<Self>, name: &SecretName, version: u64, lease: Option<&LeaseId>) -> Hold {
        let mut inner = self.inner.lock().expect("holds lock");
        let already = inner
            .ended
            .iter()
            .find(|(n, v, l, _)| n == name && (*v == version || (l.is_some() && l.as_ref() == lease)))
            .map(|e| e.3);
        let entry = inner.entries.entry((name.clone(), version)).or_insert_with(|| Entry {
            count: 0,
            lease: lease.cloned(),
            end: watch::Sender::new(None),
        });
        entry.count += 1;
        if let Some(end) = already {
            entry.end.send_replace(Some(end));
        }
        Hold {
            holds: self.clone(),
            key: (name.clone(), version),
            end: entry.end.subscribe(),
        }
    }

    /// How many hold `version` of `name`.
    pub fn count(&self, name: &SecretName, version: u64) -> usize {
        let inner = self.inner.lock().expect("holds lock");
        inner.entries.get(&(name.clone(), version)).map_or(0, |e| e.count)
    }

    /// Waits until nothing holds `version` of `name`, for at most `within`; answers whether it
    /// was released (false: still held at the end).
    pub async fn released(&self, name: &SecretName, version: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count(name, version) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count(name, version) == 0;
            }
        }
    }

    /// Tells the holders of `which` version of `name` to end; answers how many there were.
    /// Remembered for a while, so a hold taken on it just after is ended too.
    pub fn end(&self, name: &SecretName, which: Which<'_>, why: End) -> usize {
        let mut inner = self.inner.lock().expect("holds lock");
        let mut told = 0;
        let mut version = None;
        let mut lease = None;
        for ((n, v), entry) in inner.entries.iter() {
            let matches = n == name
                && match which {
                    Which::Version(w) => *v == w,
                    Which::Lease(id) => entry.lease.as_ref() == Some(id),
                };
            if matches {
                entry.end.send_replace(Some(why));
                told += entry.count;
                version = Some(*v);
                lease = entry.lease.clone();
            }
        }
        let (version, lease) = match which {
            Which::Version(v) => (v, lease),
            Which::Lease(id) => (version.unwrap_or(u64::MAX), Some(id.clone())),
        };
        inner.ended.push_back((name.clone(), version, lease, why));
        if inner.ended.len() > ENDED_KEPT {
            inner.ended.pop_front();
        }
        told
    }
}

impl Hold {
    /// Resolves when the holder is told to end, with why.
    pub async fn ended(&mut self) -> End {
        let end = self.end.wait_for(Option::is_some).await.map(|end| *end);
        match end {
            Ok(Some(end)) => end,
            // The sender lives in the entry while this hold exists.
            _ => std::future::pending().await,
        }
    }

    /// The version held.
    pub fn version(&self) -> u64 {
        self.key.1
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut inner = self.holds.inner.lock().expect("holds lock");
        if let Some(entry) = inner.entries.get_mut(&self.key) {
            entry.count -= 1;
            if entry.count == 0 {
                inner.entries.remove(&self.key);
            }
        }
        drop(inner);
        self.holds.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> SecretName {
        SecretName::new("db")
    }

    #[tokio::test(start_paused = true)]
    async fn released_waits_for_the_last_hold_or_the_deadline() {
        let holds = Arc::new(Holds::default());
        assert!(
            holds.released(&db(), 1, Duration::from_secs(5)).await,
            "nothing holds it"
        );
        let a = holds.hold(&db(), 1, None);
        let b = holds.hold(&db(), 1, None);
        let other = holds.hold(&db(), 2, None);
        assert_eq!(holds.count(&db(), 1), 2);
        let started = tokio::time::Instant::now();
        assert!(!holds.released(&db(), 1, Duration::from_secs(5)).await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let waiter = {
            let holds = holds.clone();
            tokio::spawn(async move { holds.released(&db(), 1, Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(a);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished(), "one hold is left");
        drop(b);
        assert!(waiter.await.unwrap());
        assert_eq!(holds.count(&db(), 2), 1, "another version is not affected");
        drop(other);
    }

    #[tokio::test]
    async fn end_reaches_the_holders_of_that_version_or_lease_only() {
        let holds = Arc::new(Holds::default());
        let lease = LeaseId::new("database/creds/app/1");
        let mut old = holds.hold(&db(), 1, Some(&lease));
        let mut new = holds.hold(&db(), 2, Some(&LeaseId::new("database/creds/app/2")));
        assert_eq!(holds.end(&db(), Which::Lease(&lease), End::Revoked), 1);
        assert_eq!(old.ended().await, End::Revoked);
        let pending = tokio::time::timeout(Duration::from_millis(50), new.ended()).await;
        assert!(pending.is_err(), "version 2 was not revoked");
        // A hold taken on a revoked version just after the revocation ends at once.
        let mut late = holds.hold(&db(), 1, Some(&lease));
        assert_eq!(late.ended().await, End::Revoked);
        assert_eq!(holds.end(&db(), Which::Version(2), End::Revoked), 1);
        assert_eq!(new.ended().await, End::Revoked);
    }
}
