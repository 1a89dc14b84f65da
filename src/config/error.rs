//! Config errors: each names the file, the key path (`secrets.db.ttl`) and the reason, so
//! `sidekey-agent check` can print one line a user can act on.

use std::path::PathBuf;

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read at all. The I/O error is the source, not part of this
    /// message (printed with `{:#}`, as `sidekey-agent` does, the cause appears once).
    #[error("{file}: cannot read config")]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("{file}: {key}: {reason}")]
    Parse {
        /// The config file.
        file: PathBuf,
        /// Dotted key path, or `(top level)`.
        key: String,
        /// What is wrong, with the line when known.
        reason: String,
    },
    /// The TOML is well-formed but a value is not acceptable.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// Dotted key path.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The dotted key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::Read { .. } => None,
            Error::Parse { key, .. } | Error::Invalid { key, .. } => Some(key),
        }
    }
}
