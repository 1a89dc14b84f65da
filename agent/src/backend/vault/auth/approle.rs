//! `method = "approle"`: AppRole login (`auth/MOUNT/login` with `role_id` and `secret_id`),
//! both read from their files at every login.
//!
//! With `secret_id_wrapped = true` the secret id file holds a response-wrapping token instead
//! (what a deploy pipeline hands over, so that the secret id itself is never on its disk). It
//! is looked up first (`sys/wrapping/lookup`: it must have been made by this mount's
//! `role/ROLE/secret-id`, else it is refused), then unwrapped once (`sys/wrapping/unwrap`) and
//! the secret id is kept in memory (zeroized on drop) for every later login — after a max-TTL
//! re-login the file still holds the same, now used, wrapping token, which must not be
//! unwrapped again. Only when the file holds a different wrapping token is that one
//! unwrapped. A wrapping token Vault no longer knows means someone else unwrapped it first
//! (or it expired): a loud error naming the file, retried with backoff, the agent serving on.
//! <https://openbao.org/api-docs/system/wrapping-unwrap/>

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use rustify::enums::RequestMethod;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sidekey::SecretString;

use super::{context, log_in_at, read_file, secret_body, Login};
use crate::backend::vault::{Error, Session, Token};

pub(super) struct AppRole {
    mount: String,
    role_id_file: PathBuf,
    secret_id_file: PathBuf,
    wrapped: bool,
    /// With `wrapped`: the secret id unwrapped from the file's wrapping token.
    unwrapped: Mutex<Option<Unwrapped>>,
}

/// A secret id and the SHA-256 of the wrapping token it came from (to notice a new one).
struct Unwrapped {
    wrapping_token: [u8; 32],
    secret_id: SecretString,
}

#[derive(Serialize)]
struct Body<'a> {
    role_id: &'a str,
    secret_id: &'a str,
}

#[derive(Serialize)]
struct Lookup<'a> {
    token: &'a str,
}

impl AppRole {
    pub(super) fn new(mount: String, role_id_file: PathBuf, secret_id_file: PathBuf, wrapped: bool) -> AppRole {
        AppRole {
            mount,
            role_id_file,
            secret_id_file,
            wrapped,
            unwrapped: Mutex::new(None),
        }
    }

    /// The secret id: the file's, or the one unwrapped from the file's wrapping token.
    async fn secret_id(&self, session: &Session) -> Result<SecretString, Error> {
        let from_file = read_file(session, "secret_id_file", &self.secret_id_file)?;
        if !self.wrapped {
            return Ok(from_file);
        }
        let digest: [u8; 32] = Sha256::digest(from_file.expose().as_bytes()).into();
        if let Some(kept) = self.kept().as_ref().filter(|u| u.wrapping_token == digest) {
            return Ok(kept.secret_id.clone());
        }
        let secret_id = self.unwrap(session, &from_file).await?;
        *self.kept() = Some(Unwrapped {
            wrapping_token: digest,
            secret_id: secret_id.clone(),
        });
        Ok(secret_id)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Option<Unwrapped>> {
        self.unwrapped.lock().expect("never poisoned")
    }

    /// Checks where `wrapping` comes from, then unwraps it.
    async fn unwrap(&self, session: &Session, wrapping: &SecretString) -> Result<SecretString, Error> {
        let file = self.secret_id_file.display();
        let lookup = session
            .login_call(
                RequestMethod::POST,
                "sys/wrapping/lookup",
                None,
                Some(secret_body(&Lookup {
                    token: wrapping.expose(),
                })),
            )
            .await
            .map_err(|e| self.unwrap_failed(session, e))?;
        let created_by = lookup
            .data
            .as_ref()
            .and_then(|d| d.get("creation_path"))
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_owned();
        let role_path = format!("auth/{}/role/", self.mount);
        if !(created_by.starts_with(&role_path) && created_by.ends_with("/secret-id")) {
            return Err(Error::Permanent(format!(
                "{}: auth.secret_id_file {file}: the wrapping token was made by {created_by:?}, not by \
                 {role_path}ROLE/secret-id: refused (it does not wrap a secret id of this mount)",
                session.backend
            )));
        }
        let answer = session
            .login_call(RequestMethod::POST, "sys/wrapping/unwrap", Some(wrapping), None)
            .await
            .map_err(|e| self.unwrap_failed(session, e))?;
        let mut data = answer.data.unwrap_or_default();
        let secret_id = match data.remove("secret_id") {
            Some(serde_json::Value::String(s)) => SecretString::from(s),
            _ => {
                return Err(Error::Permanent(format!(
                    "{}: auth.secret_id_file {file}: the unwrapped answer holds no secret_id",
                    session.backend
                )))
            }
        };
        let mut rest = serde_json::Value::Object(data);
        sidekey::secret::scrub(&mut rest);
        tracing::info!(
            backend = %session.backend,
            file = %file,
            "unwrapped the AppRole secret id; kept in memory for later logins (the wrapping token is now used)"
        );
        Ok(secret_id)
    }

    /// The error of a failed lookup or unwrap. Vault refusing the wrapping token means it
    /// was used or expired: said loudly, naming the file, as someone else may hold the secret id.
    fn unwrap_failed(&self, session: &Session, e: Error) -> Error {
        let file = self.secret_id_file.display();
        let refused = !e.is_transient() || e.to_string().contains("permission denied");
        if !refused {
            return context(e, format!("unwrapping the secret id of {file}"));
        }
        let loud = format!(
            "{}: auth.secret_id_file {file} holds a wrapping token Vault no longer accepts: it was \
             already unwrapped (by someone else, unless an earlier run of this agent did) or it \
             expired. A wrapped secret id is unwrapped once; write a new wrapping token to the file \
             ({e})",
            session.backend
        );
        tracing::error!(backend = %session.backend, file = %file, "{loud}");
        Error::Permanent(loud)
    }
}

#[async_trait]
impl Login for AppRole {
    async fn log_in(&self, session: &Session) -> Result<Token, Error> {
        let role_id = read_file(session, "role_id_file", &self.role_id_file)?;
        let secret_id = self.secret_id(session).await?;
        let body = Body {
            role_id: role_id.expose(),
            secret_id: secret_id.expose(),
        };
        log_in_at(session, &self.mount, &body)
            .await
            .map_err(|e| context(e, "AppRole login failed"))
    }
}
