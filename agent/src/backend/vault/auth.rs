//! How the agent logs in to Vault: one module per `auth.method`, each a [`Login`] built from
//! its config entry by [`method`]. The login loop ([`super::login`]) calls whichever the
//! config names and never looks inside, so a new method is one file here, one arm in
//! [`method`] and one entry in the core's `config::kinds::AUTH_METHODS`.
//!
//! What every method shares lives here: reading a credential file (trimmed, zeroized, errors
//! naming the config key and the file) and `POST auth/MOUNT/login` with a body serialized
//! straight into zeroizing memory. Login calls never make the session react to their answer
//! (a refused login is not a lapsed token): the loop backs off instead.

mod approle;
mod cert;
mod jwt;
mod kubernetes;
mod token;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rustify::enums::RequestMethod;
use serde::Serialize;
use sidekey::config::VaultAuth;
use sidekey::SecretString;
use zeroize::Zeroizing;

use super::{Error, Session, Token};

/// One way of logging in.
#[async_trait]
pub(super) trait Login: Send + Sync {
    /// Logs in once and answers the token the session then calls with.
    async fn log_in(&self, session: &Session) -> Result<Token, Error>;
}

/// The [`Login`] of the configured method.
pub(super) fn method(auth: &VaultAuth) -> Box<dyn Login> {
    match auth.clone() {
        VaultAuth::Token { token_file } => Box::new(token::TokenFile { token_file }),
        VaultAuth::AppRole {
            mount,
            role_id_file,
            secret_id_file,
            secret_id_wrapped,
        } => Box::new(approle::AppRole::new(
            mount,
            role_id_file,
            secret_id_file,
            secret_id_wrapped,
        )),
        VaultAuth::Jwt {
            mount,
            role,
            token_file,
        } => Box::new(jwt::Jwt {
            mount,
            role,
            token_file,
        }),
        VaultAuth::Kubernetes {
            mount,
            role,
            token_file,
        } => Box::new(kubernetes::Kubernetes {
            mount,
            role,
            token_file,
        }),
        VaultAuth::Cert { mount, name } => Box::new(cert::Cert { mount, name }),
    }
}

/// The credential in the file at `auth.KEY` (a token, a JWT, an id): read now, without one
/// trailing newline and surrounding whitespace. A missing, unreadable, empty or non-UTF-8
/// file is an error naming the key and the file, never what the file holds.
pub(super) fn read_file(session: &Session, key: &str, path: &Path) -> Result<SecretString, Error> {
    let failed = |why: String| Error::Permanent(format!("{}: auth.{key} {}: {why}", session.backend, path.display()));
    let bytes = std::fs::read(path).map_err(|e| failed(format!("cannot read: {e}")))?;
    let bytes = sidekey::crypto::passphrase_from_file_bytes(bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| failed("not UTF-8 text".to_owned()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(failed("empty".to_owned()));
    }
    Ok(SecretString::from(text))
}

/// `POST auth/MOUNT/login` with `body` and no token; the token Vault answers.
pub(super) async fn log_in_at(session: &Session, mount: &str, body: &impl Serialize) -> Result<Token, Error> {
    let path = format!("auth/{mount}/login");
    let answer = session
        .login_call(RequestMethod::POST, &path, None, Some(secret_body(body)))
        .await?;
    let auth = answer
        .auth
        .ok_or_else(|| Error::Permanent(format!("{}: {path} answered without a token", session.backend)))?;
    Ok(Token {
        value: SecretString::from(auth.client_token),
        ttl: Duration::from_secs(auth.lease_duration),
        renewable: auth.renewable,
    })
}

/// `value` as JSON in zeroizing memory, sized up front so that no copy is left behind by a
/// growing buffer (a JWT is a few kilobytes at most).
pub(super) fn secret_body(value: &impl Serialize) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::with_capacity(16 * 1024));
    serde_json::to_writer(&mut *body, value).expect("a struct of strings serializes");
    body
}

/// `e` with `what` before its message, of the same kind.
pub(super) fn context(e: Error, what: impl std::fmt::Display) -> Error {
    match e {
        Error::Transient(m) => Error::Transient(format!("{what}: {m}")),
        Error::Permanent(m) => Error::Permanent(format!("{what}: {m}")),
        Error::NotFound(m) => Error::NotFound(format!("{what}: {m}")),
        Error::LeaseGone(m) => Error::LeaseGone(format!("{what}: {m}")),
        Error::Unsupported(op) => Error::Unsupported(op),
    }
}
