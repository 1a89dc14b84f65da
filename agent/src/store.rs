//! What the agent serves right now: per secret, the current value, its version and lease,
//! or why nothing can be served. Readers (HTTP handlers, long-polls, file delivery) see it
//! through a `tokio::sync::watch` channel per secret; only the scheduler writes.
//!
//! Invariant: a read never returns an expired credential — [`Store::read`] checks the lease
//! against the clock on every call, whatever the scheduler managed to do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hyper::body::Bytes;
use sidekey::{Lease, SecretData, SecretName, SecretString};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::backend::Issued;
use crate::fingerprints::Registry;

/// One served value.
#[derive(Debug)]
pub struct Served {
    /// Increases by one each time the served value changes.
    pub version: u64,
    /// The value.
    pub data: SecretData,
    /// Its lease, if it expires.
    pub lease: Option<Lease>,
    /// When it was fetched from its source.
    pub fetched_at: SystemTime,
    /// The issuer's version id, if it has one.
    pub revision: Option<String>,
    /// The issuer's own answer shape, for compatibility routes, as the body that sends it.
    pub native: Option<NativeBody>,
    /// Room for the response body the server renders from this value (empty in each new
    /// `Served`; what goes in it is the server's business).
    pub body: Rendered,
}

/// The issuer's own answer (e.g. GetSecretValue's JSON) as a response body: made once per
/// served value and shared by every response that sends it, without a copy; zeroized when
/// the value and the last response holding it are dropped. Never printed.
#[derive(Clone)]
pub struct NativeBody(Bytes);

impl NativeBody {
    /// A copy of `native`, the only one the responses will use.
    pub fn new(native: &SecretString) -> Self {
        NativeBody(Bytes::from_owner(Zeroizing::new(native.expose().as_bytes().to_vec())))
    }

    /// The body, for a response (the value leaves through it).
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl std::fmt::Debug for NativeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NativeBody({} bytes)", self.0.len())
    }
}

/// A response body rendered from a value and the second (since the epoch) it was rendered in.
/// It holds the value: zeroized when the last copy is dropped, never printed.
pub type RenderedBody = (u64, Arc<Zeroizing<Vec<u8>>>);

/// Room for one [`RenderedBody`]; the store only creates it empty.
#[derive(Default)]
pub struct Rendered(pub Mutex<Option<RenderedBody>>);

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered(***)")
    }
}

/// The state of one secret, as readers see it.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// The last good value, if any (possibly expired: check before serving).
    pub served: Option<Arc<Served>>,
    /// The last failure, cleared by the next success.
    pub failure: Option<String>,
}

/// Why a secret cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// No such secret is configured.
    #[error("no secret named {0:?}")]
    Unknown(String),
    /// Nothing was fetched yet.
    #[error("secret {name} is not available yet: {reason}")]
    NotYet {
        /// The secret.
        name: SecretName,
        /// The last failure, or "fetching".
        reason: String,
    },
    /// The last good value expired and no new one could be had.
    #[error("secret {name} has expired and could not be renewed: {reason}")]
    Expired {
        /// The secret.
        name: SecretName,
        /// The last failure.
        reason: String,
    },
}

/// A secret that needs attention.
#[derive(Debug, Clone)]
pub struct Failing {
    /// The secret.
    pub name: SecretName,
    /// Why.
    pub reason: String,
    /// Whether an older value is still being served.
    pub served: bool,
}

/// Every configured secret's slot.
pub struct Store {
    slots: BTreeMap<SecretName, watch::Sender<Slot>>,
    /// Fingerprints of every served version, when a fingerprint key is configured.
    fingerprints: Option<Arc<Registry>>,
    /// Woken on every publish and renewal (the encrypted cache writer waits on it).
    pub changed: tokio::sync::Notify,
    /// Bumped on every change of any slot (readiness, [`crate::ready`], waits on it).
    updates: watch::Sender<u64>,
}

impl Store {
    /// A store with one empty slot per name.
    pub fn new(names: impl IntoIterator<Item = SecretName>) -> Self {
        Store {
            slots: names
                .into_iter()
                .map(|n| (n, watch::Sender::new(Slot::default())))
                .collect(),
            fingerprints: None,
            changed: tokio::sync::Notify::new(),
            updates: watch::Sender::new(0),
        }
    }

    /// The same store, recording each new version's fingerprints in `registry`.
    pub fn with_fingerprints(mut self, registry: Arc<Registry>) -> Self {
        self.fingerprints = Some(registry);
        self
    }

    /// The fingerprint registry, if fingerprints are on.
    pub fn fingerprints(&self) -> Option<&Registry> {
        self.fingerprints.as_deref()
    }

    /// The same, shared (for the publisher).
    pub fn fingerprint_registry(&self) -> Option<Arc<Registry>> {
        self.fingerprints.clone()
    }

    /// A receiver that wakes on every change of any secret: a value served or restored, a
    /// renewal, a failure.
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    fn updated(&self) {
        self.updates.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &SecretName> {
        self.slots.keys()
    }

    /// Serves a fetched value: a new version when its data or the issuer's version id differ
    /// from what is served, else the same version with the new lease and fetch time. Answers
    /// the version and whether it changed.
    pub fn publish(&self, name: &SecretName, issued: Issued, fetched_at: SystemTime) -> (u64, bool) {
        let mut result = (0, false);
        self.slot(name).send_modify(|slot| {
            let (version, changed) = match &slot.served {
                Some(old) if old.data == issued.data && old.revision == issued.revision => (old.version, false),
                Some(old) => (old.version + 1, true),
                None => (1, true),
            };
            slot.served = Some(self.served(name, version, changed, issued, fetched_at));
            slot.failure = None;
            result = (version, changed);
        });
        self.changed.notify_one();
        self.updated();
        result
    }

    /// Serves a value restored from the encrypted cache, with the version it had.
    pub fn restore(&self, name: &SecretName, version: u64, issued: Issued, fetched_at: SystemTime) {
        self.slot(name)
            .send_modify(|slot| slot.served = Some(self.served(name, version, true, issued, fetched_at)));
        self.updated();
    }

    /// Version `version` of `name` as served; a new version's fingerprints are recorded.
    fn served(
        &self,
        name: &SecretName,
        version: u64,
        new: bool,
        issued: Issued,
        fetched_at: SystemTime,
    ) -> Arc<Served> {
        let Issued {
            data,
            lease,
            revision,
            native,
            ..
        } = issued;
        if let (true, Some(registry)) = (new, &self.fingerprints) {
            registry.record(name, version, &data, lease.as_ref(), fetched_at);
        }
        Arc::new(Served {
            version,
            data,
            lease,
            fetched_at,
            revision,
            native: native.as_ref().map(NativeBody::new),
            body: Rendered::default(),
        })
    }

    /// Every served value, by name (for the encrypted cache).
    pub fn snapshot(&self) -> Vec<(SecretName, Arc<Served>)> {
        self.slots
            .iter()
            .filter_map(|(name, slot)| slot.borrow().served.clone().map(|s| (name.clone(), s)))
            .collect()
    }

    /// Records a renewal: same value and version, new lease.
    pub fn renewed(&self, name: &SecretName, lease: Lease) {
        self.slot(name).send_if_modified(|slot| {
            if let Some(old) = &slot.served {
                if let Some(registry) = &self.fingerprints {
                    registry.renewed(name, old.version, &lease);
                }
                slot.served = Some(Arc::new(Served {
                    version: old.version,
                    data: old.data.clone(),
                    lease: Some(lease),
                    fetched_at: old.fetched_at,
                    revision: old.revision.clone(),
                    native: old.native.clone(),
                    body: Rendered::default(),
                }));
            }
            slot.failure = None;
            false // same version: long-polls need not wake
        });
        self.changed.notify_one();
        self.updated();
    }

    /// Records a failure; the last good value stays served while it is valid.
    pub fn fail(&self, name: &SecretName, reason: String) {
        self.slot(name).send_if_modified(|slot| {
            slot.failure = Some(reason);
            false
        });
        self.updated();
    }

    /// The value to serve now, or why there is none.
    pub fn read(&self, name: &str, now: SystemTime) -> Result<Arc<Served>, Unavailable> {
        let (name, sender) = self
            .slots
            .get_key_value(name)
            .ok_or_else(|| Unavailable::Unknown(name.to_owned()))?;
        let slot = sender.borrow();
        let reason = || slot.failure.clone().unwrap_or_else(|| "fetching".to_owned());
        match &slot.served {
            None => Err(Unavailable::NotYet {
                name: name.clone(),
                reason: reason(),
            }),
            Some(s) if s.lease.as_ref().is_some_and(|l| !l.is_valid(now)) => Err(Unavailable::Expired {
                name: name.clone(),
                reason: reason(),
            }),
            Some(s) => Ok(s.clone()),
        }
    }

    /// The version last served for `name`, expired or not (the scheduler's view of what it
    /// replaces).
    pub fn served_version(&self, name: &SecretName) -> Option<u64> {
        self.slots.get(name)?.borrow().served.as_ref().map(|s| s.version)
    }

    /// The version last served for `name` and when its lease expires, expired or not (a
    /// proxy session follows the renewals of the version it logged in with).
    pub fn served_expiry(&self, name: &str) -> Option<(u64, Option<SystemTime>)> {
        let slot = self.slots.get(name)?.borrow();
        let served = slot.served.as_ref()?;
        Some((served.version, served.lease.as_ref().map(|l| l.expires_at)))
    }

    /// A receiver that wakes whenever the served version of `name` changes.
    pub fn subscribe(&self, name: &str) -> Option<watch::Receiver<Slot>> {
        self.slots.get(name).map(|s| s.subscribe())
    }

    /// Secrets that cannot be served now, or whose last refresh failed while an older value
    /// is still served, with the reason.
    pub fn unhealthy(&self, now: SystemTime) -> Vec<Failing> {
        self.slots
            .iter()
            .filter_map(|(name, slot)| match self.read(name.as_str(), now) {
                Err(e) => Some(Failing {
                    name: name.clone(),
                    reason: e.to_string(),
                    served: false,
                }),
                Ok(_) => slot.borrow().failure.clone().map(|reason| Failing {
                    name: name.clone(),
                    reason,
                    served: true,
                }),
            })
            .collect()
    }

    fn slot(&self, name: &SecretName) -> &watch::Sender<Slot> {
        self.slots
            .get(name)
            .expect("the scheduler only writes configured secrets")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::SecretString;
    use std::time::Duration;

    fn data(v: &str) -> Issued {
        Issued::plain(SecretData::single("password", SecretString::from(v)), None)
    }

    #[test]
    fn the_version_only_moves_when_the_value_changes() {
        let store = Store::new([SecretName::new("api")]);
        let name = SecretName::new("api");
        let now = SystemTime::now();
        assert_eq!(store.publish(&name, data("a"), now), (1, true));
        assert_eq!(store.publish(&name, data("a"), now), (1, false));
        assert_eq!(store.publish(&name, data("b"), now), (2, true));
        assert_eq!(store.read("api", now).unwrap().version, 2);
        // A new issuer version id is a new version, even with the same value.
        let same_value_new_id = Issued {
            revision: Some("v2".into()),
            ..data("b")
        };
        assert_eq!(store.publish(&name, same_value_new_id, now), (3, true));
    }

    #[test]
    fn expired_credentials_are_never_served() {
        let store = Store::new([SecretName::new("db")]);
        let name = SecretName::new("db");
        let now = SystemTime::now();
        let lease = Lease::issued(None, now, Duration::from_secs(5), true);
        store.publish(
            &name,
            Issued {
                lease: Some(lease),
                ..data("a")
            },
            now,
        );
        store.fail(&name, "vault down".into());
        assert!(store.read("db", now + Duration::from_secs(4)).is_ok());
        let failing = store.unhealthy(now + Duration::from_secs(4));
        assert!(failing[0].served && failing[0].reason == "vault down");
        let err = store.read("db", now + Duration::from_secs(6)).unwrap_err();
        assert!(matches!(err, Unavailable::Expired { .. }));
        assert!(err.to_string().contains("vault down"));
        assert!(!store.unhealthy(now + Duration::from_secs(6))[0].served);
    }

    #[test]
    fn unknown_and_unfetched_secrets_say_why() {
        let store = Store::new([SecretName::new("db")]);
        assert!(matches!(
            store.read("nope", SystemTime::now()),
            Err(Unavailable::Unknown(_))
        ));
        assert!(matches!(
            store.read("db", SystemTime::now()),
            Err(Unavailable::NotYet { .. })
        ));
    }
}
