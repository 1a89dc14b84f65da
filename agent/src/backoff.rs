//! When a loop that keeps something alive tries again: after a failure (capped, jittered
//! exponential backoff) and before a lease or token runs out (at about two thirds of its
//! window). Pure functions of (attempt, lease, now, jitter); the scheduler's secret tasks and
//! the vault backend's login loop share them, so neither imports the other.
//!
//! Invariants: no wait between retries exceeds [`MAX_BACKOFF`], so a backend that comes back
//! is used again within 8 s; while a credential is still valid a retry comes within a third
//! of what is left of it.

use std::time::{Duration, SystemTime};

use sidekey::Lease;

/// The longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Delay before retry number `attempt` (0-based): 1 s doubling to an 8 s cap, scaled by
/// 50–100 % with `jitter` (uniform in `[0, 1)`).
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << attempt.min(5));
    base.min(MAX_BACKOFF).mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Retry delay while `lease` (the served credential's, if any) may still be valid: never
/// sleep past a third of what is left, so a failing renewal is retried several times before
/// the credential expires.
pub fn retry_in(attempt: u32, jitter: f64, lease: Option<&Lease>, now: SystemTime) -> Duration {
    let wait = backoff(attempt, jitter);
    match lease {
        Some(lease) if lease.is_valid(now) => wait.min(lease.remaining(now) / 3).max(Duration::from_millis(100)),
        _ => wait,
    }
}

/// When to renew something valid for `window`: about two thirds of it, up to 10 % earlier
/// by `jitter` so a fleet does not renew in step.
pub fn renew_in(window: Duration, jitter: f64) -> Duration {
    window.mul_f64(2.0 / 3.0 * (1.0 - 0.1 * jitter.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::LeaseId;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(0, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn retries_come_well_before_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lease = Lease::issued(Some(LeaseId::new("db/creds/app/x")), t0, Duration::from_secs(30), true);
        let now = t0 + Duration::from_secs(27);
        assert_eq!(retry_in(10, 1.0, Some(&lease), now), Duration::from_secs(1));
        assert_eq!(retry_in(10, 1.0, None, now), MAX_BACKOFF);
    }

    #[test]
    fn renewal_comes_at_two_thirds_up_to_ten_percent_earlier() {
        assert_eq!(renew_in(Duration::from_secs(30), 0.0), Duration::from_secs(20));
        assert_eq!(renew_in(Duration::from_secs(30), 1.0), Duration::from_secs(18));
    }
}
