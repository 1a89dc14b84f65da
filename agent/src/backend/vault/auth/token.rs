//! `method = "token"`: a token made elsewhere, read from `token_file` at every login. Its TTL
//! and renewability come from `auth/token/lookup-self`; when it can no longer be renewed the
//! file is read again (whoever provisions it is expected to have replaced it by then).
//! <https://openbao.org/api-docs/auth/token/#lookup-a-token-self>

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use rustify::enums::RequestMethod;

use super::{read_file, Login};
use crate::backend::vault::{Error, Session, Token};

pub(super) struct TokenFile {
    pub(super) token_file: PathBuf,
}

#[async_trait]
impl Login for TokenFile {
    async fn log_in(&self, session: &Session) -> Result<Token, Error> {
        let value = read_file(session, "token_file", &self.token_file)?;
        let lookup = session
            .login_call(RequestMethod::GET, "auth/token/lookup-self", Some(&value), None)
            .await
            .map_err(|e| super::context(e, format!("the token of {}", self.token_file.display())))?;
        let data = lookup.data.unwrap_or_default();
        Ok(Token {
            value,
            ttl: Duration::from_secs(data.get("ttl").and_then(|v| v.as_u64()).unwrap_or(0)),
            renewable: data.get("renewable").and_then(|v| v.as_bool()).unwrap_or(false),
        })
    }
}
