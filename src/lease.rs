//! Leases: an issuer's promise that a credential is valid until a point in time.
//!
//! Times are wall-clock [`SystemTime`]s because they are shown to callers (RFC 3339) and
//! compared with the issuer's; the scheduler turns them into sleeps.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A lease identifier (Vault `lease_id`, a certificate serial, …): safe to log and audit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(String);

impl LeaseId {
    /// Wraps an issuer's identifier.
    pub fn new(id: impl Into<String>) -> Self {
        LeaseId(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The validity of one issued credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The issuer's id; `None` for credentials without one (e.g. a PKI certificate).
    pub id: Option<LeaseId>,
    /// When the credential was first issued.
    pub issued_at: SystemTime,
    /// When the lease was last issued or renewed.
    pub renewed_at: SystemTime,
    /// When the credential stops being valid.
    pub expires_at: SystemTime,
    /// The TTL the issuer granted at issue: the credential's full life.
    pub ttl: Duration,
    /// Whether the issuer allows renewal.
    pub renewable: bool,
}

impl Lease {
    /// A lease issued at `now` for `ttl`.
    pub fn issued(id: Option<LeaseId>, now: SystemTime, ttl: Duration, renewable: bool) -> Self {
        Lease {
            id,
            issued_at: now,
            renewed_at: now,
            expires_at: now + ttl,
            ttl,
            renewable,
        }
    }

    /// Validity left at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// Whether the credential is still valid at `now`.
    pub fn is_valid(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_life_never_goes_negative() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let lease = Lease::issued(None, t0, Duration::from_secs(10), true);
        assert_eq!(lease.remaining(t0 + Duration::from_secs(4)), Duration::from_secs(6));
        assert_eq!(lease.remaining(t0 + Duration::from_secs(40)), Duration::ZERO);
        assert!(!lease.is_valid(t0 + Duration::from_secs(10)));
    }
}
