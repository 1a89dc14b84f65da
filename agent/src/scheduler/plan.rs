//! The renewal schedule, as pure functions of (lease, now, settings): what the scheduler does
//! next and when. No I/O and no clock here, so every rule is unit-tested. Retry delays after
//! a failure are [`crate::backoff`]'s.
//!
//! The rules (docs/config.md, "Schedules and failures"): renew at about two thirds of the lease's current
//! window, with up to 10 % jitter earlier so a fleet does not renew in step; when a renewal
//! comes back shorter than the lease's full TTL the lease has reached its max TTL, so a new
//! credential is issued at once — the old one then still has about a third of its life, and
//! no reader is handed less. Unleased secrets are re-read every `refresh`.

use std::time::{Duration, SystemTime};

use sidekey::Lease;

use crate::backoff::renew_in;

/// What to do next with one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing valid is held: fetch (issue) now.
    Fetch,
    /// Re-read an unleased secret (KV, generated, static); serve it if it changed.
    Refresh,
    /// Extend the current lease.
    Renew,
    /// Issue a new credential, serve it, retire the old lease.
    Reissue,
    /// Rotate the secret at its source (`rotate_every`), then re-read it.
    Rotate,
}

/// What the scheduler knows about the value it serves.
#[derive(Debug, Clone)]
pub struct Held {
    /// The lease of the served credential, if it has one.
    pub lease: Option<Lease>,
    /// When the value was fetched or last re-read.
    pub fetched_at: SystemTime,
    /// The backend's own next refresh time, if it gave one.
    pub refresh_at: Option<SystemTime>,
    /// When the source is due for rotation, if it rotates.
    pub rotate_at: Option<SystemTime>,
    /// When this agent last asked the source to rotate.
    pub last_rotation: Option<SystemTime>,
}

/// The next action and when to take it. `jitter` is uniform in `[0, 1)`.
pub fn next(held: Option<&Held>, refresh: Duration, now: SystemTime, jitter: f64) -> (Action, SystemTime) {
    let Some(held) = held else { return (Action::Fetch, now) };
    match &held.lease {
        None => {
            let refresh_at = held.refresh_at.unwrap_or(held.fetched_at + refresh);
            match held.rotate_at {
                Some(rotate_at) if rotate_at <= refresh_at => (Action::Rotate, rotate_at),
                _ => (Action::Refresh, refresh_at),
            }
        }
        Some(lease) if !lease.is_valid(now) => (Action::Fetch, now),
        Some(lease) => {
            let window = lease.expires_at.duration_since(lease.renewed_at).unwrap_or_default();
            let at = lease.renewed_at + renew_in(window, jitter);
            let action = if lease.renewable && lease.id.is_some() {
                Action::Renew
            } else {
                Action::Reissue
            };
            (action, at)
        }
    }
}

/// Whether a renewal answer shows the lease has hit its max TTL: it granted less than 90 %
/// of the lease's full TTL.
pub fn is_capped(renewed: &Lease) -> bool {
    let granted = renewed
        .expires_at
        .duration_since(renewed.renewed_at)
        .unwrap_or_default();
    granted.as_secs_f64() < renewed.ttl.as_secs_f64() * 0.9
}

/// When to revoke a lease that was replaced at `now`: after a grace period of a sixth of its
/// TTL (between 2 s and 60 s), for readers still finishing work with it; `None` when it
/// expires before that anyway.
pub fn retire_at(old: &Lease, now: SystemTime) -> Option<SystemTime> {
    let grace = (old.ttl / 6).clamp(Duration::from_secs(2), Duration::from_secs(60));
    (old.id.is_some() && old.remaining(now) > grace).then_some(now + grace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::LeaseId;

    fn t(s: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000) + Duration::from_secs_f64(s)
    }

    fn lease(ttl: u64, renewable: bool) -> Lease {
        Lease::issued(
            Some(LeaseId::new("db/creds/app/x")),
            t(0.0),
            Duration::from_secs(ttl),
            renewable,
        )
    }

    fn held(lease: Option<Lease>) -> Held {
        Held {
            lease,
            fetched_at: t(0.0),
            refresh_at: None,
            rotate_at: None,
            last_rotation: None,
        }
    }

    #[test]
    fn nothing_held_means_fetch_now() {
        assert_eq!(
            next(None, Duration::from_secs(60), t(5.0), 0.5),
            (Action::Fetch, t(5.0))
        );
    }

    #[test]
    fn renewable_leases_renew_at_two_thirds_with_jitter_earlier() {
        let h = held(Some(lease(30, true)));
        assert_eq!(
            next(Some(&h), Duration::from_secs(60), t(1.0), 0.0),
            (Action::Renew, t(20.0))
        );
        let (_, at) = next(Some(&h), Duration::from_secs(60), t(1.0), 0.99);
        assert!(at < t(20.0) && at >= t(18.0), "{at:?}");
    }

    #[test]
    fn certificates_are_reissued_at_two_thirds_of_their_life() {
        let cert = Lease::issued(None, t(0.0), Duration::from_secs(3600), false);
        assert_eq!(
            next(Some(&held(Some(cert))), Duration::from_secs(60), t(1.0), 0.0),
            (Action::Reissue, t(2400.0))
        );
    }

    #[test]
    fn expired_leases_are_fetched_anew() {
        let h = held(Some(lease(5, true)));
        assert_eq!(next(Some(&h), Duration::from_secs(60), t(6.0), 0.0).0, Action::Fetch);
    }

    #[test]
    fn unleased_values_refresh_on_their_period_or_the_backend_hint() {
        let mut h = held(None);
        assert_eq!(
            next(Some(&h), Duration::from_secs(30), t(1.0), 0.3),
            (Action::Refresh, t(30.0))
        );
        h.refresh_at = Some(t(7.0));
        assert_eq!(
            next(Some(&h), Duration::from_secs(30), t(1.0), 0.3),
            (Action::Refresh, t(7.0))
        );
    }

    #[test]
    fn rotation_comes_before_a_later_refresh() {
        let mut h = held(None);
        h.rotate_at = Some(t(10.0));
        assert_eq!(
            next(Some(&h), Duration::from_secs(30), t(1.0), 0.0),
            (Action::Rotate, t(10.0))
        );
        h.rotate_at = Some(t(100.0));
        assert_eq!(
            next(Some(&h), Duration::from_secs(30), t(1.0), 0.0),
            (Action::Refresh, t(30.0))
        );
    }

    #[test]
    fn a_short_renewal_means_the_max_ttl_is_near() {
        let mut l = lease(5, true);
        l.renewed_at = t(13.3);
        l.expires_at = t(15.0);
        assert!(is_capped(&l));
        l.expires_at = t(18.3);
        assert!(!is_capped(&l));
    }

    #[test]
    fn a_reader_never_gets_less_than_a_third_of_a_ttl_across_a_max_ttl_cycle() {
        // ttl 5 s, max ttl 15 s: simulate renewals and the re-issue they lead to.
        let max = t(15.0);
        let mut l = lease(5, true);
        loop {
            let (action, at) = next(Some(&held(Some(l.clone()))), Duration::from_secs(60), l.renewed_at, 0.0);
            assert_eq!(action, Action::Renew);
            let mut renewed = l.clone();
            renewed.renewed_at = at;
            renewed.expires_at = (at + Duration::from_secs(5)).min(max);
            if is_capped(&renewed) {
                // Re-issue now: what the old credential has left is what a last reader got.
                assert!(l.remaining(at) >= Duration::from_secs(5) / 3 - Duration::from_millis(1));
                break;
            }
            l = renewed;
        }
    }

    #[test]
    fn old_leases_are_revoked_after_grace_only_when_they_would_outlive_it() {
        assert_eq!(retire_at(&lease(3600, true), t(10.0)), Some(t(70.0)));
        assert_eq!(retire_at(&lease(12, true), t(8.0)), Some(t(10.0)));
        assert_eq!(retire_at(&lease(5, true), t(3.4)), None);
    }
}
