//! sidekey core: the types the agent and the scanner share.
//!
//! # Design overview
//! Nothing in this crate runs in the background or talks to the network; it is plain data
//! and pure logic, so both binaries (and their tests) can lean on it:
//!
//! | module          | what it holds |
//! |-----------------|---------------|
//! | [`secret`]      | [`SecretString`] and [`SecretData`]: values that zero their memory and never print |
//! | [`lease`]       | [`Lease`]: an issuer's promise of validity, and where it stands now |
//! | [`config`]      | the agent's TOML, parsed and validated into [`Config`]; errors name file, key and reason |
//! | [`crypto`]      | at-rest sealing (AES-256-GCM under an Argon2id key) and token hashes |
//! | [`fingerprint`] | leak fingerprints: HMAC-SHA256 of secret-bearing fields, shared by agent and scanner |
//! | [`audit`]       | [`AuditEvent`]: what the audit log records, with no field that could hold a value |
//! | [`api`]         | JSON shapes of the agent's HTTP API, shared by server, client and scanner |
//! | [`template`]    | `[[file]]` templates: `{{ db.password | json }}` placeholders over several secrets, bound at validation, rendered by the agent |
//!
//! ```
//! use sidekey::SecretString;
//! let password = SecretString::from("hunter2");
//! assert_eq!(format!("{password:?}"), "SecretString(***)");
//! assert_eq!(password.expose(), "hunter2");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod atomic;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod fingerprint;
pub mod lease;
pub mod own_files;
pub mod secret;
pub mod template;
pub mod vault;

pub use audit::AuditEvent;
pub use config::Config;
pub use lease::{Lease, LeaseId};
pub use secret::{SecretData, SecretName, SecretString};
