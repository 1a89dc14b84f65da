//! The verification pool: a bounded, fair queue in front of argon2id.
//!
//! - **Parallel, bounded**: at most `parallel` verifications run at once (the server sizes it
//!   to half the CPUs, so serving goes on beside them).
//! - **Bounded queue**: at most `per_key` requests of one caller key, and `total` in all, are
//!   admitted (running or waiting); past that [`Gate::admit`] refuses at once ([`Full`]) and
//!   the request is answered 429 — a flood costs the agent a refusal, not a queue.
//! - **Fair**: a key must take its own turn (a semaphore of one) before it queues for the
//!   pool, so the pool's queue holds at most one request per key; tokio's semaphores are
//!   first-in first-out, so busy keys are served in turn (round-robin). A caller that shares
//!   no key with a flood waits for at most one verification per busy key, however many
//!   requests the flood sends.
//!
//! A [`Turn`] is held for the whole verification — moved into the blocking task that runs
//! argon2id — so a client that goes away mid-verification cannot free its place while the
//! CPU is still working for it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits verifications for keys of type `K` (a caller's uid, or its address).
pub struct Gate<K: Hash + Eq + Clone> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    pool: Arc<Semaphore>,
    per_key: usize,
    total: usize,
    lanes: Mutex<Lanes<K>>,
}

/// The keys with admitted requests.
struct Lanes<K> {
    by_key: HashMap<K, Lane>,
    admitted: usize,
}

/// One key's requests: how many are admitted, and whose turn it is.
struct Lane {
    turn: Arc<Semaphore>,
    admitted: usize,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// This caller already has its share admitted.
    #[error("too many token verifications for this caller at once; retry in a second")]
    Caller,
    /// The queue is full.
    #[error("too many token verifications waiting; retry in a second")]
    All,
}

/// An admitted request: a place in its key's lane, given back when dropped.
pub struct Ticket<K: Hash + Eq + Clone> {
    inner: Arc<Inner<K>>,
    key: K,
    turn: Arc<Semaphore>,
}

/// The right to run one verification now. Fields drop in order: the pool's place first, to
/// the next key in line, then this key's turn, to its next request.
pub struct Turn<K: Hash + Eq + Clone> {
    _pool: OwnedSemaphorePermit,
    _turn: OwnedSemaphorePermit,
    _ticket: Ticket<K>,
}

impl<K: Hash + Eq + Clone> Gate<K> {
    /// A pool of `parallel` runs, admitting `per_key` requests per key and `total` in all
    /// (each at least 1).
    pub fn new(parallel: usize, per_key: usize, total: usize) -> Self {
        Gate {
            inner: Arc::new(Inner {
                pool: Arc::new(Semaphore::new(parallel.max(1))),
                per_key: per_key.max(1),
                total: total.max(1),
                lanes: Mutex::new(Lanes {
                    by_key: HashMap::new(),
                    admitted: 0,
                }),
            }),
        }
    }

    /// A place in `key`'s lane, or why there is none. Never waits.
    pub fn admit(&self, key: K) -> Result<Ticket<K>, Full> {
        let mut lanes = self.inner.lanes.lock().expect("never poisoned");
        if lanes.admitted >= self.inner.total {
            return Err(Full::All);
        }
        let lane = lanes.by_key.entry(key.clone()).or_insert_with(|| Lane {
            turn: Arc::new(Semaphore::new(1)),
            admitted: 0,
        });
        if lane.admitted >= self.inner.per_key {
            return Err(Full::Caller);
        }
        lane.admitted += 1;
        let turn = lane.turn.clone();
        lanes.admitted += 1;
        Ok(Ticket {
            inner: self.inner.clone(),
            key,
            turn,
        })
    }

    /// Requests admitted now (running or waiting), for tests.
    #[cfg(test)]
    fn admitted(&self) -> usize {
        self.inner.lanes.lock().unwrap().admitted
    }
}

impl<K: Hash + Eq + Clone> Ticket<K> {
    /// Waits for this key's turn, then for a place in the pool.
    pub async fn turn(self) -> Turn<K> {
        let turn = self.turn.clone().acquire_owned().await.expect("never closed");
        let pool = self.inner.pool.clone().acquire_owned().await.expect("never closed");
        Turn {
            _pool: pool,
            _turn: turn,
            _ticket: self,
        }
    }
}

impl<K: Hash + Eq + Clone> Drop for Ticket<K> {
    fn drop(&mut self) {
        let mut lanes = self.inner.lanes.lock().expect("never poisoned");
        lanes.admitted -= 1;
        if let Some(lane) = lanes.by_key.get_mut(&self.key) {
            lane.admitted -= 1;
            if lane.admitted == 0 {
                lanes.by_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use tokio::sync::oneshot;

    use super::*;

    #[test]
    fn admission_is_bounded_per_key_and_in_all() {
        let gate = Gate::new(1, 2, 3);
        let a1 = gate.admit("a").unwrap();
        let _a2 = gate.admit("a").unwrap();
        assert_eq!(gate.admit("a").err(), Some(Full::Caller));
        let _b1 = gate.admit("b").unwrap();
        assert_eq!(gate.admit("c").err(), Some(Full::All));
        drop(a1);
        let _a3 = gate.admit("a").expect("a place comes back when its request ends");
        assert_eq!(gate.admitted(), 3);
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let gate = Gate::new(1, 2, 3);
        drop(gate.admit("a").unwrap());
        assert!(gate.inner.lanes.lock().unwrap().by_key.is_empty());
        assert_eq!(gate.admitted(), 0);
    }

    /// With one place in the pool, key `a` queues three requests before `b` and `c` queue one
    /// each: the pool serves a, b, c, a, a — one per busy key in turn — not a, a, a, b, c.
    #[tokio::test]
    async fn busy_keys_are_served_in_turn() {
        let gate = Gate::new(1, 4, 16);
        let order = Arc::new(StdMutex::new(Vec::new()));
        let mut releases = Vec::new();
        let mut tasks = Vec::new();
        for key in ["a", "a", "a", "b", "c"] {
            let ticket = gate.admit(key).unwrap();
            let (release, released) = oneshot::channel::<()>();
            releases.push(release);
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let turn = ticket.turn().await;
                order.lock().unwrap().push(key);
                let _ = released.await;
                drop(turn);
            }));
            // Let the task queue before the next request arrives.
            tokio::task::yield_now().await;
        }
        for release in releases {
            let _ = release.send(());
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a", "b", "c", "a", "a"]);
        assert_eq!(gate.admitted(), 0);
    }

    #[tokio::test]
    async fn runs_are_parallel_up_to_the_pool_size() {
        let gate = Gate::new(2, 4, 16);
        let first = gate.admit("a").unwrap().turn().await;
        let second = gate.admit("b").unwrap().turn().await;
        let third = gate.admit("c").unwrap().turn();
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut third)
                .await
                .is_err(),
            "a third run waits for a place"
        );
        drop(first);
        let _third = third.await;
        drop(second);
    }
}
