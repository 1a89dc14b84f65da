//! Backends: where credentials come from. The scheduler drives every kind through one trait,
//! [`Backend`]: `fetch` a value (issuing a new credential for leased kinds), `renew` a lease,
//! `revoke` one. Each backend is built once from its `[backends.NAME]` table, and says for
//! each of its kinds how a leaked credential is revoked ([`Revocation`]); the scheduler
//! carries that out without knowing kinds.

pub mod aws;
pub mod local;
pub mod vault;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use sidekey::api::RevokeAction;
use sidekey::config::{BackendConfig, SecretSpec};
use sidekey::{Lease, LeaseId, SecretData, SecretString};

/// A freshly fetched value.
#[derive(Debug)]
pub struct Issued {
    /// The data to serve.
    pub data: SecretData,
    /// Its lease, for credentials that expire.
    pub lease: Option<Lease>,
    /// When to fetch again, when the backend knows better than `refresh` (e.g. a generated
    /// value's rotation time).
    pub refresh_at: Option<SystemTime>,
    /// The issuer's version id (e.g. Secrets Manager's VersionId): a new one is a new version
    /// even when the value is the same.
    pub revision: Option<String>,
    /// The issuer's own answer (e.g. GetSecretValue JSON), for compatibility routes.
    pub native: Option<SecretString>,
    /// When the source should be rotated (`rotate_every` after the current version was made).
    pub rotate_at: Option<SystemTime>,
}

impl Issued {
    /// A value with nothing but data and, optionally, a lease.
    pub fn plain(data: SecretData, lease: Option<Lease>) -> Self {
        Issued {
            data,
            lease,
            refresh_at: None,
            revision: None,
            native: None,
            rotate_at: None,
        }
    }
}

/// Why a backend call failed. Never carries a secret value or a response body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Worth retrying: the backend is unreachable, overloaded, or our session lapsed.
    #[error("{0}")]
    Transient(String),
    /// Retrying the same call will not help (bad role, refused, malformed answer).
    #[error("{0}")]
    Permanent(String),
    /// The source has nothing at that name (HTTP 404, `ResourceNotFoundException`); permanent.
    #[error("{0}")]
    NotFound(String),
    /// The lease is gone at the issuer (expired or revoked): issue a new credential.
    #[error("lease is no longer valid at the issuer: {0}")]
    LeaseGone(String),
    /// The kind does not support this operation.
    #[error("{0} is not supported for this kind")]
    Unsupported(&'static str),
}

impl Error {
    /// Whether the same call may succeed later; decided here, once.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_))
    }
}

/// How a kind's credential is revoked when a responder asks (`POST /v1/revoke`); the
/// scheduler carries it out and answers with the [`RevokeAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoke the lease at the issuer by its id ([`Backend::revoke`]), then issue and serve a
    /// fresh credential when it was the served one ([`RevokeAction::RevokedLease`]).
    Lease,
    /// Revoke the served credential at its source without a lease id
    /// ([`Backend::revoke_issued`]), then issue and serve a fresh one.
    AtSource(RevokeAction),
    /// Make a new value at the source ([`Backend::rotate`]) and serve it.
    Replace(RevokeAction),
    /// sidekey cannot revoke it; why, in words.
    NotRevocable(String),
}

impl Revocation {
    /// The answer for a kind whose source sidekey cannot revoke.
    pub fn not_at_source(spec: &SecretSpec) -> Self {
        Revocation::NotRevocable(format!(
            "sidekey cannot revoke a {} secret at its source: rotate it there",
            spec.source.kind_name()
        ))
    }
}

/// A source of credentials.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Reads the current value of `spec`, or issues a new credential for leased kinds.
    async fn fetch(&self, spec: &SecretSpec) -> Result<Issued, Error>;

    /// Reads one specific version (by id or stage), outside the schedule.
    async fn fetch_version(
        &self,
        spec: &SecretSpec,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Issued, Error> {
        let _ = (spec, version_id, version_stage);
        Err(Error::Unsupported("fetching a specific version"))
    }

    /// Rotates the secret at its source (e.g. Secrets Manager RotateSecret).
    async fn rotate(&self, spec: &SecretSpec) -> Result<(), Error> {
        let _ = spec;
        Err(Error::Unsupported("rotation"))
    }

    /// How a leaked credential of `spec` is revoked; by default it cannot be.
    fn revocation(&self, spec: &SecretSpec) -> Revocation {
        Revocation::not_at_source(spec)
    }

    /// Extends `lease` by its original TTL; answers the lease as the issuer now has it.
    async fn renew(&self, lease: &Lease) -> Result<Lease, Error> {
        let _ = lease;
        Err(Error::Unsupported("renewal"))
    }

    /// Revokes a lease at the issuer.
    async fn revoke(&self, lease: &LeaseId) -> Result<(), Error> {
        let _ = lease;
        Err(Error::Unsupported("revocation"))
    }

    /// Revokes an issued credential that has no lease (a PKI certificate, by the serial number
    /// in `data`); answers what was revoked, for the audit and the answer.
    async fn revoke_issued(&self, spec: &SecretSpec, data: &sidekey::SecretData) -> Result<String, Error> {
        let _ = (spec, data);
        Err(Error::Unsupported("revocation"))
    }

    /// Writes `data` as the current version of KV v2 `mount/path` (the fingerprint registry's
    /// publication); only the vault backend can.
    async fn write_kv(&self, mount: &str, path: &str, data: serde_json::Value) -> Result<(), Error> {
        let _ = (mount, path, data);
        Err(Error::Unsupported("KV writes"))
    }

    /// Stops background work (token renewal); called once on shutdown.
    fn shutdown(&self) {}
}

/// Builds the backend for one `[backends.NAME]` table.
pub async fn build(name: &str, config: &BackendConfig) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match config {
        BackendConfig::Vault(v) => Arc::new(vault::Vault::start(name, v)?),
        BackendConfig::Local(l) => Arc::new(local::Local::open(l)?),
        BackendConfig::Aws(a) => Arc::new(aws::Aws::connect(name, a).await),
    })
}
