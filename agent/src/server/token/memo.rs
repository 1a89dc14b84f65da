//! What token verification remembers, by the SHA-256 of a presented token (never the token):
//! which configured token a digest verified as, which digests recently matched none, and
//! which are being verified right now. argon2id is slow on purpose, so a token is verified at
//! most once: a repeat is answered from here, and a request presenting a token that another
//! request is verifying waits for that verification instead of starting its own.
//!
//! The two memories are kept apart so that neither can be flushed through the other:
//! - **accepted** holds at most one digest per configured token (only a successful
//!   verification enters it, and an argon2id hash matches one token), so no caller can
//!   evict another's entry, whatever it sends;
//! - **refused** holds at most [`REFUSED_LIMIT`] digests, each for [`REFUSED_FOR`]; when full,
//!   the oldest goes. A flood of distinct wrong tokens only evicts other wrong tokens.
//!
//! Tokens are fixed for the agent's life (the config is read once), so a remembered answer
//! never goes stale; the expiry only bounds how long a wrong token costs memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Wrong tokens remembered at most (32-byte digests: about 300 KiB with the map's overhead).
pub const REFUSED_LIMIT: usize = 4096;

/// How long a wrong token is answered from memory.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);

/// A token's SHA-256.
pub type Digest = [u8; 32];

/// The outcome of one verification: the index of the configured token it matched, if any.
pub type Outcome = Option<usize>;

/// The memory, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct Memo {
    state: Arc<Mutex<State>>,
}

struct State {
    /// Digest → index of the configured token it verified as; at most one per token.
    accepted: HashMap<Digest, usize>,
    refused: Recent,
    /// Verifications under way: their outcome, once known.
    pending: HashMap<Digest, watch::Receiver<Option<Outcome>>>,
}

/// What is known of a digest.
pub enum Lookup {
    /// It verified as configured token `.0`.
    Accepted(usize),
    /// It matched none, recently.
    Refused,
    /// Another request is verifying it; its outcome arrives here (or the channel closes when
    /// that request gave up before verifying: then ask again).
    Pending(watch::Receiver<Option<Outcome>>),
    /// Nothing: the caller now holds the claim to verify it, and settles it with the outcome.
    Claimed(Claim),
}

/// The right, and duty, to verify one digest. Dropped without [`Claim::settle`] (the request
/// was refused a place in the queue, or went away while waiting), it releases the digest so
/// that a waiting request claims it.
pub struct Claim {
    memo: Memo,
    digest: Digest,
    outcome: watch::Sender<Option<Outcome>>,
}

impl Memo {
    /// An empty memory.
    pub fn new() -> Self {
        Memo {
            state: Arc::new(Mutex::new(State {
                accepted: HashMap::new(),
                refused: Recent::new(REFUSED_LIMIT, REFUSED_FOR),
                pending: HashMap::new(),
            })),
        }
    }

    /// What is known of `digest` at `now`; when nothing, the caller gets the [`Claim`] on it.
    pub fn lookup(&self, digest: Digest, now: Instant) -> Lookup {
        let mut state = self.lock();
        if let Some(&index) = state.accepted.get(&digest) {
            return Lookup::Accepted(index);
        }
        if state.refused.contains(&digest, now) {
            return Lookup::Refused;
        }
        if let Some(pending) = state.pending.get(&digest) {
            return Lookup::Pending(pending.clone());
        }
        let (outcome, pending) = watch::channel(None);
        state.pending.insert(digest, pending);
        Lookup::Claimed(Claim {
            memo: self.clone(),
            digest,
            outcome,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("never poisoned")
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (state.accepted.len(), state.refused.len(), state.pending.len())
    }
}

impl Claim {
    /// Remembers `outcome` (at `now`) and hands it to every request waiting on this digest.
    pub fn settle(self, outcome: Outcome, now: Instant) {
        let mut state = self.memo.lock();
        match outcome {
            Some(index) => {
                // One digest per configured token, whatever happens: a bound nobody can push.
                state.accepted.retain(|_, i| *i != index);
                state.accepted.insert(self.digest, index);
            }
            None => state.refused.insert(self.digest, now),
        }
        state.pending.remove(&self.digest);
        drop(state);
        let _ = self.outcome.send(Some(outcome));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Settled: already removed (and remembered). Not settled: waiters see the channel
        // close and ask again.
        self.memo.lock().pending.remove(&self.digest);
    }
}

/// Digests remembered for a while: at most `limit`, each for `ttl`, the oldest evicted first.
struct Recent {
    limit: usize,
    ttl: Duration,
    /// Insertion order (insertion times never decrease along it).
    order: VecDeque<(Digest, Instant)>,
    /// The same digests, for lookups.
    at: HashMap<Digest, Instant>,
}

impl Recent {
    fn new(limit: usize, ttl: Duration) -> Self {
        Recent {
            limit,
            ttl,
            order: VecDeque::new(),
            at: HashMap::new(),
        }
    }

    fn contains(&self, digest: &Digest, now: Instant) -> bool {
        self.at
            .get(digest)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
    }

    fn insert(&mut self, digest: Digest, now: Instant) {
        if self.contains(&digest, now) {
            return;
        }
        // Expired entries are all at the front (an expired `digest` among them), then the
        // oldest goes while full.
        while let Some(&(old, at)) = self.order.front() {
            if now.saturating_duration_since(at) < self.ttl && self.order.len() < self.limit {
                break;
            }
            self.order.pop_front();
            self.at.remove(&old);
        }
        self.order.push_back((digest, now));
        self.at.insert(digest, now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> Digest {
        let mut digest = [0; 32];
        digest[..4].copy_from_slice(&n.to_be_bytes());
        digest
    }

    fn claim(memo: &Memo, digest: Digest) -> Claim {
        match memo.lookup(digest, Instant::now()) {
            Lookup::Claimed(claim) => claim,
            _ => panic!("expected a claim"),
        }
    }

    #[test]
    fn wrong_tokens_are_remembered_for_a_while_and_the_oldest_go_first() {
        let t0 = Instant::now();
        let mut recent = Recent::new(3, Duration::from_secs(60));
        for n in 0..3 {
            recent.insert(d(n), t0);
        }
        assert!((0..3).all(|n| recent.contains(&d(n), t0)));
        recent.insert(d(3), t0 + Duration::from_secs(1));
        assert!(!recent.contains(&d(0), t0), "the oldest is evicted when full");
        assert!(recent.contains(&d(3), t0 + Duration::from_secs(1)));
        assert_eq!(recent.len(), 3);

        let later = t0 + Duration::from_secs(60);
        assert!(!recent.contains(&d(1), later), "expired after the ttl");
        assert!(recent.contains(&d(3), later));
        recent.insert(d(1), later);
        assert!(
            recent.contains(&d(1), later),
            "an expired digest can be remembered again"
        );
        assert_eq!(recent.len(), 2, "expired entries are dropped on insert");
    }

    #[test]
    fn a_flood_of_wrong_tokens_never_evicts_an_accepted_one() {
        let memo = Memo::new();
        let now = Instant::now();
        claim(&memo, d(1)).settle(Some(0), now);
        for n in 100..100 + 2 * REFUSED_LIMIT as u32 {
            claim(&memo, d(n)).settle(None, now);
        }
        assert!(matches!(memo.lookup(d(1), now), Lookup::Accepted(0)));
        assert_eq!(memo.sizes(), (1, REFUSED_LIMIT, 0));
        let last = 100 + 2 * REFUSED_LIMIT as u32 - 1;
        assert!(matches!(memo.lookup(d(last), now), Lookup::Refused));
    }

    #[test]
    fn at_most_one_digest_is_remembered_per_configured_token() {
        let memo = Memo::new();
        let now = Instant::now();
        claim(&memo, d(1)).settle(Some(0), now);
        claim(&memo, d(2)).settle(Some(1), now);
        claim(&memo, d(3)).settle(Some(0), now);
        assert_eq!(memo.sizes().0, 2);
        assert!(matches!(memo.lookup(d(3), now), Lookup::Accepted(0)));
        assert!(matches!(memo.lookup(d(2), now), Lookup::Accepted(1)));
        assert!(matches!(memo.lookup(d(1), now), Lookup::Claimed(_)));
    }

    #[tokio::test]
    async fn a_token_being_verified_is_waited_for_not_verified_twice() {
        let memo = Memo::new();
        let now = Instant::now();
        let first = claim(&memo, d(7));
        let Lookup::Pending(mut waiting) = memo.lookup(d(7), now) else {
            panic!("expected pending");
        };
        first.settle(None, now);
        let outcome = *waiting.wait_for(Option::is_some).await.unwrap();
        assert_eq!(outcome, Some(None));
        assert!(matches!(memo.lookup(d(7), now), Lookup::Refused));

        // A claim given up (its request refused or gone) releases the digest: waiters ask
        // again and one of them claims it.
        let abandoned = claim(&memo, d(8));
        let Lookup::Pending(mut waiting) = memo.lookup(d(8), now) else {
            panic!("expected pending");
        };
        drop(abandoned);
        assert!(waiting.wait_for(Option::is_some).await.is_err());
        assert!(matches!(memo.lookup(d(8), now), Lookup::Claimed(_)));
        assert_eq!(memo.sizes().2, 0, "nothing pending once every claim is gone");
    }
}
