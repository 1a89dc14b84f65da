//! [`Client`](crate::Client) for synchronous programs (the CLIs, the scanner): each call runs
//! on a private current-thread tokio runtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sidekey::api::{FingerprintMatches, FingerprintSet, Health, RevokeAnswer, RevokeRequest, SecretList};

use crate::{Error, Secret};

/// A blocking client of the agent at one socket.
#[derive(Debug)]
pub struct Client {
    inner: crate::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the agent at `socket`; fails only when no runtime can be made.
    pub fn new(socket: impl Into<PathBuf>) -> std::io::Result<Self> {
        Ok(Client {
            inner: crate::Client::new(socket),
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        })
    }

    /// The same client with another per-request time limit (default 90 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.inner = self.inner.with_timeout(timeout);
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        self.inner.socket()
    }

    /// See [`crate::Client::secrets`].
    pub fn secrets(&self) -> Result<SecretList, Error> {
        self.runtime.block_on(self.inner.secrets())
    }

    /// See [`crate::Client::secret`].
    pub fn secret(&self, name: &str) -> Result<Secret, Error> {
        self.runtime.block_on(self.inner.secret(name))
    }

    /// See [`crate::Client::secret_after`].
    pub fn secret_after(&self, name: &str, version: u64, wait: Duration) -> Result<Option<Secret>, Error> {
        self.runtime.block_on(self.inner.secret_after(name, version, wait))
    }

    /// See [`crate::Client::health`].
    pub fn health(&self) -> Result<Health, Error> {
        self.runtime.block_on(self.inner.health())
    }

    /// See [`crate::Client::fingerprints`].
    pub fn fingerprints(&self) -> Result<FingerprintSet, Error> {
        self.runtime.block_on(self.inner.fingerprints())
    }

    /// See [`crate::Client::match_fingerprints`].
    pub fn match_fingerprints(&self, fingerprints: Vec<String>) -> Result<FingerprintMatches, Error> {
        self.runtime.block_on(self.inner.match_fingerprints(fingerprints))
    }

    /// See [`crate::Client::revoke`].
    pub fn revoke(&self, request: &RevokeRequest) -> Result<RevokeAnswer, Error> {
        self.runtime.block_on(self.inner.revoke(request))
    }
}
