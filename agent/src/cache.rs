//! The encrypted cache (`cache`, `cache_key_file`): every served value with its lease and
//! version, sealed with AES-256-GCM under a key derived by Argon2id from the key file, written
//! atomically (0600) within a moment of every change. At start, every cached credential that is
//! still valid is served at once — the same lease, no new one issued — and its task resumes
//! renewing it, even while the backend is unreachable. A cache that fails authentication
//! (tampered, another key) is reported and ignored; fresh credentials are fetched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sidekey::crypto::{self, SealingKey};
use sidekey::{Lease, LeaseId, SecretData, SecretName};
use tokio_util::sync::CancellationToken;
use zeroize::{Zeroize, Zeroizing};

use crate::backend::Issued;
use crate::store::Store;

/// Changes within this long are written together.
const SETTLE: Duration = Duration::from_millis(100);

/// One cached value (the file is a JSON map of these by secret name, sealed).
#[derive(Serialize, Deserialize)]
struct Entry {
    version: u64,
    data: String,
    revision: Option<String>,
    fetched_at: f64,
    lease: Option<CachedLease>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
struct CachedLease {
    id: Option<String>,
    issued_at: f64,
    renewed_at: f64,
    expires_at: f64,
    ttl: f64,
    renewable: bool,
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// Seconds from the epoch to year 10000: later times cannot be written in RFC 3339 (the API's
/// `expires_at`), and a cache this agent wrote never holds one.
const MAX_SECS: f64 = 253_402_300_800.0;

/// A duration in seconds as the cache holds it; `None` past [`MAX_SECS`] (the plaintext is
/// authenticated, yet `Duration::from_secs_f64` would panic on 1e300).
fn seconds(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s.max(0.0))
        .ok()
        .filter(|d| d.as_secs_f64() < MAX_SECS)
}

fn time(s: f64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(seconds(s)?)
}

/// A value restored from the cache.
pub struct Restored {
    /// Its served version.
    pub version: u64,
    /// The value and its lease.
    pub issued: Issued,
    /// When it was fetched.
    pub fetched_at: SystemTime,
}

/// The cache file and its key.
pub struct Cache {
    path: PathBuf,
    key: SealingKey,
}

impl Cache {
    /// Opens the cache: reads what is in it (values still valid at `now`) and keeps the key
    /// for writing. A cache that cannot be read or fails authentication is reported in the
    /// answer's warning and ignored.
    pub fn open(
        path: &Path,
        key_file: &Path,
        now: SystemTime,
    ) -> anyhow::Result<(Cache, BTreeMap<SecretName, Restored>, Option<String>)> {
        let bytes = std::fs::read(key_file)
            .map_err(|e| anyhow::anyhow!("agent.cache_key_file: {}: cannot read: {e}", key_file.display()))?;
        let passphrase = crypto::passphrase_from_file_bytes(bytes);
        // The agent's own file: not through a symlink, never a FIFO or device, read capped.
        let blob = match sidekey::own_files::read(path) {
            Ok(blob) => Some(blob),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("agent.cache: {}: cannot read: {e}", path.display()),
        };
        let mut warning = None;
        let mut restored = BTreeMap::new();
        let key = match blob.as_deref() {
            None => SealingKey::derive_new(&passphrase)?,
            Some(blob) => match crypto::salt_of(blob) {
                Ok(salt) => {
                    let key = SealingKey::derive(&passphrase, salt)?;
                    match decode(&key, blob, now) {
                        Ok(entries) => {
                            restored = entries;
                            key
                        }
                        Err(e) => {
                            warning = Some(format!("{}: {e}", path.display()));
                            SealingKey::derive_new(&passphrase)?
                        }
                    }
                }
                Err(e) => {
                    warning = Some(format!("{}: not a sealed cache ({e}); ignored", path.display()));
                    SealingKey::derive_new(&passphrase)?
                }
            },
        };
        Ok((
            Cache {
                path: path.to_owned(),
                key,
            },
            restored,
            warning,
        ))
    }

    /// Writes what `store` serves now.
    pub fn save(&self, store: &Store) -> anyhow::Result<()> {
        let entries: BTreeMap<String, Entry> = store
            .snapshot()
            .into_iter()
            .map(|(name, s)| {
                let lease = s.lease.as_ref().map(|l| CachedLease {
                    id: l.id.as_ref().map(|i| i.to_string()),
                    issued_at: secs(l.issued_at),
                    renewed_at: secs(l.renewed_at),
                    expires_at: secs(l.expires_at),
                    ttl: l.ttl.as_secs_f64(),
                    renewable: l.renewable,
                });
                let entry = Entry {
                    version: s.version,
                    data: s.data.expose_json().to_owned(),
                    revision: s.revision.clone(),
                    fetched_at: secs(s.fetched_at),
                    lease,
                };
                (name.to_string(), entry)
            })
            .collect();
        let plain = Zeroizing::new(serde_json::to_vec(&entries)?);
        let blob = self.key.seal(&plain);
        crate::backend::local::write_atomically(&self.path, &blob, 0o600)
    }
}

/// Why a cache file's content was not restored (reported, then ignored).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob does not open with the key: modified, or sealed under another key file.
    #[error("fails authentication ({0}: tampered, or another key); ignored, fetching fresh credentials")]
    Authentication(#[source] crypto::Error),
    /// It opens, but is not the JSON this agent writes.
    #[error("not a cache this agent wrote ({0}); ignored")]
    Content(#[source] serde_json::Error),
}

/// Opens the sealed cache `blob` with `key` (derived for the blob's salt) and answers the
/// entries still valid at `now`.
pub fn decode(key: &SealingKey, blob: &[u8], now: SystemTime) -> Result<BTreeMap<SecretName, Restored>, Error> {
    let plain = key.open(blob).map_err(Error::Authentication)?;
    decode_plain(&plain, now)
}

/// The entries of an opened cache still valid at `now`. Pure, so it is fuzzed
/// (`fuzz/fuzz_targets/cache_decoder.rs`), though only this agent's key can seal its input.
pub fn decode_plain(plain: &[u8], now: SystemTime) -> Result<BTreeMap<SecretName, Restored>, Error> {
    let entries = serde_json::from_slice::<BTreeMap<String, Entry>>(plain).map_err(Error::Content)?;
    Ok(usable(entries, now))
}

/// The entries still valid at `now` (a leased one with at least a second left).
fn usable(entries: BTreeMap<String, Entry>, now: SystemTime) -> BTreeMap<SecretName, Restored> {
    entries
        .into_iter()
        .filter_map(|(name, mut e)| {
            // An entry with a time out of range is dropped, as one whose value does not parse.
            let lease = match e.lease.take() {
                Some(l) => Some(Lease {
                    id: l.id.map(LeaseId::new),
                    issued_at: time(l.issued_at)?,
                    renewed_at: time(l.renewed_at)?,
                    expires_at: time(l.expires_at)?,
                    ttl: seconds(l.ttl)?,
                    renewable: l.renewable,
                }),
                None => None,
            };
            if lease
                .as_ref()
                .is_some_and(|l| l.expires_at < now + Duration::from_secs(1))
            {
                return None;
            }
            let data = SecretData::from_json(&e.data).ok()?;
            let mut issued = Issued::plain(data, lease);
            issued.revision = e.revision.take();
            Some((
                SecretName::new(name),
                Restored {
                    version: e.version,
                    issued,
                    fetched_at: time(e.fetched_at)?,
                },
            ))
        })
        .collect()
}

/// Writes the cache within [`SETTLE`] of every change until `stop`, and once more at the end.
pub async fn run(cache: Cache, store: Arc<Store>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = store.changed.notified() => {}
        }
        tokio::time::sleep(SETTLE).await;
        if let Err(e) = tokio::task::block_in_place(|| cache.save(&store)) {
            tracing::warn!(error = %e, "writing the encrypted cache failed; retrying at the next change");
        }
    }
    if let Err(e) = cache.save(&store) {
        tracing::warn!(error = %e, "writing the encrypted cache at the stop failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fetched_at: &str, expires_at: &str, ttl: &str) -> Vec<u8> {
        format!(
            r#"{{"db":{{"version":2,"data":"{{\"user\":\"app\"}}","revision":null,"fetched_at":{fetched_at},
            "lease":{{"id":"l-1","issued_at":1000,"renewed_at":1000,"expires_at":{expires_at},"ttl":{ttl},"renewable":true}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn valid_entries_are_restored_and_expired_ones_dropped() {
        let now = UNIX_EPOCH + Duration::from_secs(2000);
        let restored = decode_plain(&entry("1000.5", "5000", "4000"), now).unwrap();
        assert_eq!(restored[&SecretName::new("db")].version, 2);
        assert!(decode_plain(&entry("1000.5", "2000.5", "4000"), now)
            .unwrap()
            .is_empty());
        assert!(matches!(decode_plain(b"[]", now), Err(Error::Content(_))));
    }

    /// Found by `fuzz/fuzz_targets/cache_decoder.rs` (issue 6): a time or TTL too large for a
    /// `Duration` or `SystemTime` panicked instead of dropping the entry.
    #[test]
    fn issue_6_times_out_of_range_drop_the_entry_instead_of_panicking() {
        let now = UNIX_EPOCH + Duration::from_secs(2000);
        for (fetched_at, expires_at, ttl) in [
            ("1e300", "5000", "4000"),
            ("1000", "1e19", "4000"),
            ("1000", "5000", "1.8e19"),
            ("1000", "253402300800", "4000"),
        ] {
            let restored = decode_plain(&entry(fetched_at, expires_at, ttl), now).unwrap();
            assert!(restored.is_empty(), "{fetched_at} {expires_at} {ttl}");
        }
        // Negative times read as the epoch, as before.
        assert_eq!(decode_plain(&entry("-5", "5000", "-1"), now).unwrap().len(), 1);
    }
}
