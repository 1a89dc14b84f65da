//! `method = "jwt"`: JWT/OIDC login (`auth/MOUNT/login` with `role` and `jwt`). The token file
//! is read at EVERY login, never kept: projected service account tokens and CI OIDC tokens are
//! replaced while the agent runs, and the one read at start may have expired by the time the
//! agent's Vault token reaches its max TTL. Covers any issuer Vault's jwt method trusts
//! (Kubernetes service account issuers, GitHub Actions, GitLab CI, ...).
//! <https://openbao.org/api-docs/auth/jwt/#jwt-login>

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

use super::{log_in_at, read_file, Login};
use crate::backend::vault::{Error, Session, Token};

pub(super) struct Jwt {
    pub(super) mount: String,
    pub(super) role: String,
    pub(super) token_file: PathBuf,
}

#[async_trait]
impl Login for Jwt {
    async fn log_in(&self, session: &Session) -> Result<Token, Error> {
        log_in_with_file(session, "jwt", &self.mount, &self.role, &self.token_file).await
    }
}

/// The body of a jwt or kubernetes login.
#[derive(Serialize)]
struct Body<'a> {
    role: &'a str,
    jwt: &'a str,
}

/// Logs in at `auth/MOUNT/login` as `role` with the JWT read now from `token_file`; shared with
/// the kubernetes method, whose login has the same shape. Errors name the method, the role
/// and the file (Vault's own reasons never quote the JWT).
pub(super) async fn log_in_with_file(
    session: &Session,
    method: &str,
    mount: &str,
    role: &str,
    token_file: &Path,
) -> Result<Token, Error> {
    let jwt = read_file(session, "token_file", token_file)?;
    log_in_at(
        session,
        mount,
        &Body {
            role,
            jwt: jwt.expose(),
        },
    )
    .await
    .map_err(|e| {
        super::context(
            e,
            format!(
                "{method} login as role {role:?} with the token of {}",
                token_file.display()
            ),
        )
    })
}
