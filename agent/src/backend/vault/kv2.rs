//! `vault.kv2`: the map at `MOUNT/data/PATH` of a KV version 2 engine. Not leased; the
//! scheduler re-reads it every `refresh` and serves a new version only when the map changed.
//! <https://openbao.org/api-docs/secret/kv/kv-v2/#read-secret-version>

use rustify::enums::RequestMethod;
use sidekey::SecretData;

use super::{Error, Issued, Session};

pub(super) async fn read(session: &Session, mount: &str, path: &str) -> Result<Issued, Error> {
    let answer = session
        .call(RequestMethod::GET, &format!("{mount}/data/{path}"), None)
        .await
        .map_err(|e| match e {
            Error::NotFound(m) => Error::NotFound(format!("{m} (no KV v2 secret at {mount}/{path})")),
            other => other,
        })?;
    let mut outer = answer.data.unwrap_or_default();
    match outer.remove("data") {
        Some(serde_json::Value::Object(map)) => Ok(Issued::plain(SecretData::from_map(map), None)),
        _ => Err(Error::Permanent(format!(
            "{}: {mount}/{path} has no current version (deleted?)",
            session.backend
        ))),
    }
}

/// Writes `data` as a new version of `mount/data/path`.
/// <https://openbao.org/api-docs/secret/kv/kv-v2/#create-update-secret>
pub(super) async fn write(session: &Session, mount: &str, path: &str, data: serde_json::Value) -> Result<(), Error> {
    session
        .call(
            RequestMethod::POST,
            &format!("{mount}/data/{path}"),
            Some(serde_json::json!({ "data": data })),
        )
        .await
        .map(|_| ())
}
