//! `method = "kubernetes"`: Vault's kubernetes method (`auth/MOUNT/login` with `role` and the
//! pod's service account token, which Vault checks through the cluster's TokenReview API).
//! The token file (by default the projected one) is read at every login, as it is rotated
//! while the pod runs.
//! <https://openbao.org/api-docs/auth/kubernetes/#login>

use std::path::PathBuf;

use async_trait::async_trait;

use super::{jwt, Login};
use crate::backend::vault::{Error, Session, Token};

pub(super) struct Kubernetes {
    pub(super) mount: String,
    pub(super) role: String,
    pub(super) token_file: PathBuf,
}

#[async_trait]
impl Login for Kubernetes {
    async fn log_in(&self, session: &Session) -> Result<Token, Error> {
        jwt::log_in_with_file(session, "kubernetes", &self.mount, &self.role, &self.token_file).await
    }
}
