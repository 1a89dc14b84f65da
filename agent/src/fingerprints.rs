//! The fingerprint registry: for every version the agent serves, the HMAC of each
//! secret-bearing field (never the value) with the secret's name, backend, lease id and
//! validity. Entries stay while the credential can still be valid, plus a grace period, so a
//! leak found an hour after a rotation is still known as the broker's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sidekey::api::{RegistryEntry, RegistrySnapshot};
use sidekey::fingerprint::FingerprintKey;
use sidekey::{Lease, SecretData, SecretName};

/// How long an entry outlives its credential's expiry (leased) or its replacement (values
/// without a lease, which stay valid at their source until someone changes them there).
const GRACE: Duration = Duration::from_secs(24 * 3600);

/// What the registry knows of one fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The secret's name.
    pub secret: SecretName,
    /// Its backend.
    pub backend: String,
    /// The field the value was in.
    pub field: String,
    /// The served version it belonged to.
    pub version: u64,
    /// The issuer's lease id, if any.
    pub lease_id: Option<String>,
    /// When the credential stops being valid (leased secrets).
    pub valid_until: Option<SystemTime>,
    /// When a newer version replaced it.
    pub replaced_at: Option<SystemTime>,
    /// The value's length in bytes.
    pub length: usize,
}

impl Entry {
    /// Until when the entry is kept.
    fn keep_until(&self) -> Option<SystemTime> {
        match (self.valid_until, self.replaced_at) {
            (Some(until), _) => Some(until + GRACE),
            (None, Some(replaced)) => Some(replaced + GRACE),
            (None, None) => None,
        }
    }
}

/// Fingerprints of served credentials.
#[derive(Debug)]
pub struct Registry {
    key: FingerprintKey,
    backends: BTreeMap<SecretName, String>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Woken on every change (the publisher waits on it).
    pub changed: tokio::sync::Notify,
}

impl Registry {
    /// A registry keyed with `key`; `backends` names each secret's backend.
    pub fn new(key: FingerprintKey, backends: BTreeMap<SecretName, String>) -> Self {
        Registry {
            key,
            backends,
            entries: Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Records version `version` of `name` (its earlier versions are marked replaced), and
    /// drops entries past their keep time.
    pub fn record(&self, name: &SecretName, version: u64, data: &SecretData, lease: Option<&Lease>, now: SystemTime) {
        let prints = self.key.fingerprints(data);
        let mut entries = self.entries.lock().expect("never poisoned");
        for entry in entries.values_mut() {
            if entry.secret == *name && entry.version < version && entry.replaced_at.is_none() {
                entry.replaced_at = Some(now);
            }
        }
        for (field, print, length) in prints {
            entries.insert(
                print,
                Entry {
                    secret: name.clone(),
                    backend: self.backends.get(name).cloned().unwrap_or_default(),
                    field,
                    version,
                    lease_id: lease.and_then(|l| l.id.as_ref()).map(|id| id.to_string()),
                    valid_until: lease.map(|l| l.expires_at),
                    replaced_at: None,
                    length,
                },
            );
        }
        entries.retain(|_, e| e.keep_until().is_none_or(|t| t > now));
        drop(entries);
        self.changed.notify_one();
    }

    /// A renewal of version `version` of `name`: its entries are valid until the new expiry.
    pub fn renewed(&self, name: &SecretName, version: u64, lease: &Lease) {
        let mut entries = self.entries.lock().expect("never poisoned");
        for entry in entries.values_mut() {
            if entry.secret == *name && entry.version == version {
                entry.valid_until = Some(lease.expires_at);
            }
        }
    }

    /// The registry as published for scanners elsewhere: fingerprint → secret, backend,
    /// field, version, lease id, validity. No value.
    pub fn snapshot(&self) -> RegistrySnapshot {
        let entries = self.entries.lock().expect("never poisoned");
        RegistrySnapshot {
            agent: None,
            published_at: None,
            fingerprints: entries
                .iter()
                .map(|(print, e)| {
                    let entry = RegistryEntry {
                        secret: e.secret.to_string(),
                        backend: e.backend.clone(),
                        field: e.field.clone(),
                        version: e.version,
                        lease_id: e.lease_id.clone(),
                        valid_until: e.valid_until.map(sidekey::audit::format_time),
                        replaced: e.replaced_at.is_some(),
                        length: Some(e.length),
                    };
                    (print.clone(), entry)
                })
                .collect(),
        }
    }

    /// The fingerprint of `value` under this registry's key.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        self.key.fingerprint(value)
    }

    /// The entries of `prints` that are the broker's.
    pub fn lookup<'p>(&self, prints: impl IntoIterator<Item = &'p str>) -> Vec<(String, Entry)> {
        let entries = self.entries.lock().expect("never poisoned");
        prints
            .into_iter()
            .filter_map(|p| {
                entries
                    .get(&p.to_ascii_lowercase())
                    .map(|e| (p.to_ascii_lowercase(), e.clone()))
            })
            .collect()
    }

    /// Every fingerprint with its secret's name and value length, for the secrets `visible`
    /// admits.
    pub fn all(&self, visible: impl Fn(&SecretName) -> bool) -> Vec<(String, SecretName, usize)> {
        let entries = self.entries.lock().expect("never poisoned");
        let mut all: Vec<_> = entries
            .iter()
            .filter(|(_, e)| visible(&e.secret))
            .map(|(p, e)| (p.clone(), e.secret.clone(), e.length))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_kept_while_valid_plus_grace_and_found_by_fingerprint() {
        let key = FingerprintKey::from_bytes(b"test-key");
        let name = SecretName::new("db");
        let registry = Registry::new(key.clone(), [(name.clone(), "vault".to_owned())].into());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let one = SecretData::from_json(r#"{"username":"u-1","password":"first-password-1"}"#).unwrap();
        let two = SecretData::from_json(r#"{"username":"u-2","password":"second-password-2"}"#).unwrap();
        let lease = Lease::issued(
            Some(sidekey::LeaseId::new("db/creds/1")),
            now,
            Duration::from_secs(60),
            true,
        );
        registry.record(&name, 1, &one, Some(&lease), now);
        registry.record(&name, 2, &two, None, now + Duration::from_secs(30));

        let first = key.fingerprint(b"first-password-1");
        let found = registry.lookup([first.as_str(), "00ff"]);
        assert_eq!(found.len(), 1);
        let entry = &found[0].1;
        assert_eq!(
            (entry.secret.as_str(), entry.backend.as_str(), entry.field.as_str()),
            ("db", "vault", "password")
        );
        assert_eq!(entry.lease_id.as_deref(), Some("db/creds/1"));
        assert_eq!(entry.replaced_at, Some(now + Duration::from_secs(30)));
        assert!(
            registry.lookup([key.fingerprint(b"u-1").as_str()]).is_empty(),
            "user names are not fingerprinted"
        );

        // Past expiry plus grace, the first version is dropped; the second (no lease, not
        // replaced) stays.
        let unrelated = SecretData::from_json(r#"{"token":"unrelated-token-3"}"#).unwrap();
        registry.record(
            &SecretName::new("other"),
            1,
            &unrelated,
            None,
            now + GRACE + Duration::from_secs(61),
        );
        assert!(registry.lookup([first.as_str()]).is_empty());
        assert_eq!(
            registry.lookup([key.fingerprint(b"second-password-2").as_str()]).len(),
            1
        );
        assert_eq!(registry.all(|n| n.as_str() == "db").len(), 1);
    }
}
