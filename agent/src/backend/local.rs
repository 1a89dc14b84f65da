//! The embedded `local` backend: an encrypted store file that needs no external service.
//!
//! The file is one sealed blob (see `sidekey::crypto`): AES-256-GCM under a key derived with
//! Argon2id from `key_file`, which is created (32 random bytes, hex, 0600) on first use.
//! Inside is JSON: `{"secrets": {NAME: {"data": {...}, "generated_at": UNIX_SECONDS}}}`.
//! `local.generated` values are generated here and persisted, so a restart keeps serving the
//! same value until its rotation time; `local.static` values are written by
//! `sidekey-agent store set` and picked up on the next refresh. Writers take an exclusive
//! lock on `PATH.lock` and replace the file atomically (temp file + rename).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sidekey::api::RevokeAction;
use sidekey::config::{LocalBackend, SecretSource, SecretSpec};
use sidekey::crypto::{self, SealingKey};
use sidekey::{SecretData, SecretName, SecretString};
use zeroize::Zeroizing;

use super::{Backend, Error, Issued, Revocation};

/// The embedded store.
pub struct Local {
    path: PathBuf,
    passphrase: Zeroizing<Vec<u8>>,
    /// Derived keys are cached: Argon2id is deliberately slow.
    key: Mutex<Option<SealingKey>>,
}

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    secrets: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    data: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generated_at: Option<u64>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.data.values_mut().for_each(sidekey::secret::scrub);
    }
}

impl Local {
    /// Opens the store described by `config`, creating its key file when missing.
    pub fn open(config: &LocalBackend) -> anyhow::Result<Self> {
        let passphrase = read_or_create_key(&config.key_file)?;
        Ok(Local {
            path: config.path.clone(),
            passphrase,
            key: Mutex::new(None),
        })
    }

    /// Sets the value of a `local.static` secret (used by `sidekey-agent store set`).
    pub fn set_static(&self, name: &SecretName, data: SecretData) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let mut contents = self.read()?;
        let map = match serde_json::from_str(data.expose_json())? {
            serde_json::Value::Object(map) => map,
            _ => anyhow::bail!("secret data must be a JSON object"),
        };
        contents.secrets.insert(
            name.as_str().to_owned(),
            Entry {
                data: map,
                generated_at: None,
            },
        );
        self.write(&contents)
    }

    fn generated(&self, name: &str, every: Duration, length: usize) -> anyhow::Result<Issued> {
        let _lock = self.lock()?;
        let mut contents = self.read()?;
        let now = SystemTime::now();
        if let Some(entry) = contents.secrets.get(name) {
            let at = UNIX_EPOCH + Duration::from_secs(entry.generated_at.unwrap_or(0));
            if at + every > now {
                return Ok(Issued {
                    refresh_at: Some(at + every),
                    ..Issued::plain(SecretData::from_map(entry.data.clone()), None)
                });
            }
        }
        let mut bytes = Zeroizing::new(vec![0u8; length]);
        rand::thread_rng().fill_bytes(&mut bytes);
        let value = SecretString::from(hex::encode(bytes.as_slice()));
        let data = SecretData::single("value", value);
        let map = match serde_json::from_str(data.expose_json())? {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("SecretData is always an object"),
        };
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        contents.secrets.insert(
            name.to_owned(),
            Entry {
                data: map,
                generated_at: Some(secs),
            },
        );
        self.write(&contents)?;
        Ok(Issued {
            refresh_at: Some(UNIX_EPOCH + Duration::from_secs(secs) + every),
            ..Issued::plain(data, None)
        })
    }

    fn stored(&self, name: &str) -> anyhow::Result<Option<SecretData>> {
        let contents = self.read()?;
        Ok(contents.secrets.get(name).map(|e| SecretData::from_map(e.data.clone())))
    }

    fn lock(&self) -> anyhow::Result<File> {
        let lock_path = sibling(&self.path, ".lock");
        let file = sidekey::own_files::write(&lock_path, 0o600)
            .map_err(|e| anyhow::anyhow!("{}: cannot open lock file: {e}", lock_path.display()))?;
        file.lock()
            .map_err(|e| anyhow::anyhow!("{}: cannot lock: {e}", lock_path.display()))?;
        Ok(file)
    }

    fn read(&self) -> anyhow::Result<Contents> {
        let blob = match sidekey::own_files::read(&self.path) {
            Ok(blob) => blob,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => anyhow::bail!("{}: cannot read store: {e}", self.path.display()),
        };
        let salt = crypto::salt_of(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        let mut key = self.key.lock().expect("key mutex is never poisoned");
        if key.as_ref().map(|k| k.salt()) != Some(salt) {
            *key = Some(SealingKey::derive(&self.passphrase, salt)?);
        }
        let plaintext = key
            .as_ref()
            .expect("set above")
            .open(&blob)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        serde_json::from_slice(&plaintext).map_err(|e| {
            anyhow::anyhow!(
                "{}: store content is not valid JSON (line {})",
                self.path.display(),
                e.line()
            )
        })
    }

    fn write(&self, contents: &Contents) -> anyhow::Result<()> {
        let plaintext = Zeroizing::new(serde_json::to_vec(contents)?);
        let blob = {
            let mut key = self.key.lock().expect("key mutex is never poisoned");
            if key.is_none() {
                *key = Some(SealingKey::derive_new(&self.passphrase)?);
            }
            key.as_ref().expect("set above").seal(&plaintext)
        };
        write_atomically(&self.path, &blob, 0o600)
    }
}

#[async_trait]
impl Backend for Local {
    async fn fetch(&self, spec: &SecretSpec) -> Result<Issued, Error> {
        // A small local file and (on first use) one Argon2id derivation: blocking work, done
        // where it does not stall the async workers.
        let name = spec.name.as_str();
        tokio::task::block_in_place(|| match &spec.source {
            SecretSource::LocalGenerated { rotate_every, length } => self
                .generated(name, *rotate_every, *length)
                .map_err(|e| Error::Permanent(e.to_string())),
            SecretSource::LocalStatic => match self.stored(name) {
                Ok(Some(data)) => Ok(Issued::plain(data, None)),
                Ok(None) => Err(Error::Permanent(format!(
                    "no value set for {name}: run `sidekey-agent store set --config FILE {name}`"
                ))),
                Err(e) => Err(Error::Permanent(e.to_string())),
            },
            other => Err(Error::Permanent(format!(
                "kind {} is not served by a local backend",
                other.kind_name()
            ))),
        })
    }

    /// A generated value is regenerated; a static one is the operator's to change.
    fn revocation(&self, spec: &SecretSpec) -> Revocation {
        match &spec.source {
            SecretSource::LocalGenerated { .. } => Revocation::Replace(RevokeAction::Regenerated),
            _ => Revocation::not_at_source(spec),
        }
    }

    /// `local.generated`: a new value now (a leak response), whatever its schedule.
    async fn rotate(&self, spec: &SecretSpec) -> Result<(), Error> {
        match &spec.source {
            SecretSource::LocalGenerated { length, .. } => tokio::task::block_in_place(|| {
                self.generated(spec.name.as_str(), Duration::ZERO, *length)
                    .map(|_| ())
                    .map_err(|e| Error::Permanent(e.to_string()))
            }),
            _ => Err(Error::Unsupported("rotation")),
        }
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` via a temp file in the same directory and a rename, so readers see
/// the old or the new file, never half of one. The file is created with `mode`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    sidekey::atomic::write_atomically(path, bytes, mode)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))
}

/// Reads a key file, or creates it (32 random bytes as hex, mode 0600) when missing.
fn read_or_create_key(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(crypto::passphrase_from_file_bytes(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("{}: cannot read key file: {e}", path.display()),
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(raw.as_mut());
    let text = Zeroizing::new(format!("{}\n", hex::encode(raw.as_ref())));
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()));
    match created {
        Ok(()) => {}
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => anyhow::bail!("{}: cannot create key file: {e}", path.display()),
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: cannot read key file: {e}", path.display()))?;
    Ok(crypto::passphrase_from_file_bytes(bytes))
}
