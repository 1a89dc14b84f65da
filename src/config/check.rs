//! The errors of one config file: [`Checker`] makes them with the file's name, [`Table`] with
//! the dotted key path of the table being read (`secrets.db.ttl`). Validation
//! ([`super::validate`]) and the kind tables ([`super::kinds`]) both build on these, so neither
//! imports the other for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::Error;

/// The shortest `refresh` (every kind): a re-read is one backend request, and ten a second
/// per secret is already more than any backend wants; the tests poll at 200 ms.
pub(super) const MIN_REFRESH: Duration = Duration::from_millis(100);
/// The shortest `rotate_every`: each rotation makes a new version that is fsynced, audited and
/// (for AWS) a RotateSecret call, so `1ns` would write hundreds a second. One second is far
/// below any real rotation period and still above the tests' 2 s.
pub(super) const MIN_ROTATE_EVERY: Duration = Duration::from_secs(1);
/// The shortest lifetime asked of a backend (`vault.pki` `ttl`, `aws.sts` `duration`): the
/// agent re-issues at about two thirds of the life, so a shorter one would re-issue in a
/// loop. (The backends set their own, higher floors: STS refuses under 15 min.)
pub(super) const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Where environment variables are read from: the process's (`std::env::var`) for `run` and
/// `check`, a map in unit tests (so that no test changes the process environment).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Makes the errors of one file.
pub(super) struct Checker<'a> {
    file: &'a Path,
    /// Whether to look at this machine (files, directories, groups), or only at the text.
    host: bool,
    env: Env<'a>,
}

impl<'a> Checker<'a> {
    /// A checker that also looks at this machine when `host` (what `run` and `check` do);
    /// `check --portable` reads the text only. Either way, settings a config may leave to the
    /// environment (`VAULT_ADDR`, ...) are read from `env`.
    pub(super) fn new(file: &'a Path, host: bool, env: Env<'a>) -> Self {
        Checker { file, host, env }
    }

    /// Whether files, directories and groups named by the config are checked on this machine.
    pub(super) fn on_host(&self) -> bool {
        self.host
    }

    /// The first of `vars` set to a non-empty value: (variable, value).
    pub(super) fn env(&self, vars: &[&'static str]) -> Option<(&'static str, String)> {
        vars.iter()
            .find_map(|var| (self.env)(var).filter(|v| !v.is_empty()).map(|v| (*var, v)))
    }

    pub(super) fn invalid(&self, key: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            file: self.file.to_owned(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// A duration of at least `min` (one of the `MIN_*` floors below): anything shorter is a
    /// typo or a test value that would make the agent spin, so it is refused by name.
    pub(super) fn duration(&self, key: &str, value: &str, min: Duration) -> Result<Duration, Error> {
        let d = humantime::parse_duration(value).map_err(|e| {
            self.invalid(
                key,
                format!("invalid duration {value:?}: {e} (write e.g. \"90s\", \"15m\", \"1h\", \"30d\")"),
            )
        })?;
        if d.is_zero() {
            return Err(self.invalid(key, "duration must be greater than zero"));
        }
        if d < min {
            return Err(self.invalid(
                key,
                format!("{value} is below the minimum of {}", humantime::format_duration(min)),
            ));
        }
        Ok(d)
    }

    pub(super) fn existing_file(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        let path = PathBuf::from(value);
        if !self.host {
            return Ok(path);
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(self.invalid(key, format!("{value} is not a regular file"))),
            Err(e) => Err(self.invalid(key, format!("cannot read {value}: {e}"))),
        }
    }

    /// A PEM file holding at least one certificate (a CA bundle, a client certificate): read
    /// and parsed, so that a wrong file is named by `check`, not by the first TLS handshake.
    pub(super) fn pem_certificates(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        use rustls_pki_types::{pem::PemObject, CertificateDer};
        let path = self.existing_file(key, value)?;
        if !self.host {
            return Ok(path);
        }
        let pem = std::fs::read(&path).map_err(|e| self.invalid(key, format!("cannot read {value}: {e}")))?;
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| self.invalid(key, format!("{value} is not a PEM certificate file ({e})")))?;
            count += 1;
        }
        if count == 0 {
            return Err(self.invalid(key, format!("{value} holds no PEM certificate")));
        }
        Ok(path)
    }

    /// A PEM file holding a private key (PKCS#8, PKCS#1 or SEC1). What the parser found is
    /// never part of the message: it would be key material.
    pub(super) fn pem_private_key(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        use rustls_pki_types::{pem::PemObject, PrivateKeyDer};
        let path = self.existing_file(key, value)?;
        if !self.host {
            return Ok(path);
        }
        let pem = zeroize::Zeroizing::new(
            std::fs::read(&path).map_err(|e| self.invalid(key, format!("cannot read {value}: {e}")))?,
        );
        PrivateKeyDer::from_pem_slice(&pem).map(drop).map_err(|_| {
            self.invalid(
                key,
                format!("{value} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            )
        })?;
        Ok(path)
    }

    pub(super) fn required<'v, T>(&self, key: &str, value: &'v Option<T>, what: &str) -> Result<&'v T, Error> {
        value
            .as_ref()
            .ok_or_else(|| self.invalid(key, format!("missing: {what}")))
    }
}

/// A table being validated, by its dotted path (`secrets.db`): its keys' errors name
/// `secrets.db.KEY`.
pub(super) struct Table<'a> {
    c: &'a Checker<'a>,
    path: String,
}

impl<'a> Table<'a> {
    pub(super) fn new(c: &'a Checker<'a>, path: String) -> Self {
        Table { c, path }
    }

    pub(super) fn nested(&self, key: &str) -> Table<'a> {
        Table::new(self.c, self.key(key))
    }

    pub(super) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub(super) fn invalid(&self, key: &str, reason: impl Into<String>) -> Error {
        self.c.invalid(self.key(key), reason)
    }

    pub(super) fn required<'v, T>(&self, key: &str, value: &'v Option<T>, what: &str) -> Result<&'v T, Error> {
        self.c.required(&self.key(key), value, what)
    }

    pub(super) fn duration(&self, key: &str, value: &str, min: Duration) -> Result<Duration, Error> {
        self.c.duration(&self.key(key), value, min)
    }

    pub(super) fn duration_opt(
        &self,
        key: &str,
        value: &Option<String>,
        min: Duration,
    ) -> Result<Option<Duration>, Error> {
        value.as_deref().map(|v| self.duration(key, v, min)).transpose()
    }

    pub(super) fn existing_file(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        self.c.existing_file(&self.key(key), value)
    }

    pub(super) fn pem_certificates(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        self.c.pem_certificates(&self.key(key), value)
    }

    pub(super) fn pem_private_key(&self, key: &str, value: &str) -> Result<PathBuf, Error> {
        self.c.pem_private_key(&self.key(key), value)
    }

    /// The first of `vars` set in the environment; see [`Checker::env`].
    pub(super) fn env(&self, vars: &[&'static str]) -> Option<(&'static str, String)> {
        self.c.env(vars)
    }

    /// The dotted path of the table itself (`backends.vault`).
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// Refuses a key that is set in `raw` but is neither in `always` nor one `takes` lists:
    /// "not a key of `what` (it takes: ...)". Keys are read from `raw` through serde, under
    /// the names they are written with, in alphabetical order.
    pub(super) fn only(&self, what: &str, raw: &impl Serialize, always: &[&str], takes: &[&str]) -> Result<(), Error> {
        let set = match serde_json::to_value(raw) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("raw tables serialize to a map"),
        };
        for (key, value) in set {
            if !value.is_null() && !always.contains(&key.as_str()) && !takes.contains(&key.as_str()) {
                return Err(self.invalid(&key, format!("not a key of {what} (it takes: {})", takes.join(", "))));
            }
        }
        Ok(())
    }
}
