//! `method = "cert"`: TLS certificate login (`auth/MOUNT/login`, optionally naming the
//! certificate role). The credential is the TLS client certificate the session's client
//! presents (`client_cert`, `client_key` of the backend, read when the client is built), so
//! the body carries no secret.
//! <https://openbao.org/api-docs/auth/cert/#login-with-tls-certificate-method>

use async_trait::async_trait;
use serde::Serialize;

use super::{log_in_at, Login};
use crate::backend::vault::{Error, Session, Token};

pub(super) struct Cert {
    pub(super) mount: String,
    pub(super) name: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[async_trait]
impl Login for Cert {
    async fn log_in(&self, session: &Session) -> Result<Token, Error> {
        let name = self.name.as_deref();
        log_in_at(session, &self.mount, &Body { name }).await.map_err(|e| {
            let role = name.map(|n| format!(" as role {n:?}")).unwrap_or_default();
            super::context(e, format!("cert login{role} with the backend's client_cert"))
        })
    }
}
