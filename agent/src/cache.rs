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
use zeroize::Zeroizing;

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

fn time(s: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(s.max(0.0))
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
        let blob = match std::fs::read(path) {
            Ok(blob) => Some(blob),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("agent.cache: {}: cannot read: {e}", path.display()),
        };
        let mut warning = None;
        let mut restored = BTreeMap::new();
        let key = match blob.as_deref().map(|b| (b, crypto::salt_of(b))) {
            Some((blob, Ok(salt))) => {
                let key = SealingKey::derive(&passphrase, salt)?;
                match key.open(blob) {
                    Ok(plain) => match serde_json::from_slice::<BTreeMap<String, Entry>>(&plain) {
                        Ok(entries) => restored = usable(entries, now),
                        Err(e) => {
                            warning = Some(format!(
                                "{}: not a cache this agent wrote ({e}); ignored",
                                path.display()
                            ))
                        }
                    },
                    Err(e) => {
                        warning = Some(format!(
                        "{}: fails authentication ({e}: tampered, or another key); ignored, fetching fresh credentials",
                        path.display()
                    ))
                    }
                }
                if warning.is_some() {
                    SealingKey::derive_new(&passphrase)?
                } else {
                    key
                }
            }
            Some((_, Err(e))) => {
                warning = Some(format!("{}: not a sealed cache ({e}); ignored", path.display()));
                SealingKey::derive_new(&passphrase)?
            }
            None => SealingKey::derive_new(&passphrase)?,
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

/// The entries still valid at `now` (a leased one with at least a second left).
fn usable(entries: BTreeMap<String, Entry>, now: SystemTime) -> BTreeMap<SecretName, Restored> {
    entries
        .into_iter()
        .filter_map(|(name, e)| {
            let lease = e.lease.map(|l| Lease {
                id: l.id.map(LeaseId::new),
                issued_at: time(l.issued_at),
                renewed_at: time(l.renewed_at),
                expires_at: time(l.expires_at),
                ttl: Duration::from_secs_f64(l.ttl.max(0.0)),
                renewable: l.renewable,
            });
            if lease
                .as_ref()
                .is_some_and(|l| l.expires_at < now + Duration::from_secs(1))
            {
                return None;
            }
            let data = SecretData::from_json(&Zeroizing::new(e.data)).ok()?;
            let mut issued = Issued::plain(data, lease);
            issued.revision = e.revision;
            Some((
                SecretName::new(name),
                Restored {
                    version: e.version,
                    issued,
                    fetched_at: time(e.fetched_at),
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
