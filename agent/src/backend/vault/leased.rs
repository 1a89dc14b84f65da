//! Leased kinds: `vault.database` (`MOUNT/creds/ROLE`), `vault.lease` (any leased read path)
//! and `vault.pki` (`MOUNT/issue/ROLE`, a certificate valid until its `expiration`), plus the
//! lease calls the scheduler makes on them.
//! <https://openbao.org/api-docs/system/leases/>

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustify::enums::RequestMethod;
use serde_json::json;
use sidekey::config::SecretSource;
use sidekey::{Lease, LeaseId, SecretData};

use super::{Envelope, Error, Issued, Session};

pub(super) async fn issue(session: &Session, source: &SecretSource) -> Result<Issued, Error> {
    let now = SystemTime::now();
    match source {
        SecretSource::VaultDatabase { mount, role } => leased(
            session,
            now,
            session
                .call(RequestMethod::GET, &format!("{mount}/creds/{role}"), None)
                .await?,
        ),
        SecretSource::VaultLease { path } => leased(session, now, session.call(RequestMethod::GET, path, None).await?),
        SecretSource::VaultPki {
            mount,
            role,
            common_name,
            alt_names,
            ttl,
        } => {
            let mut body = json!({ "common_name": common_name });
            if !alt_names.is_empty() {
                body["alt_names"] = json!(alt_names.join(","));
            }
            if let Some(ttl) = ttl {
                body["ttl"] = json!(format!("{}s", ttl.as_secs()));
            }
            let answer = session
                .call(RequestMethod::POST, &format!("{mount}/issue/{role}"), Some(body))
                .await?;
            let data = answer.data.ok_or_else(|| no_data(session))?;
            let expiration = data.get("expiration").and_then(|v| v.as_u64()).ok_or_else(|| {
                Error::Permanent(format!(
                    "{}: PKI answer for {mount}/issue/{role} has no expiration",
                    session.backend
                ))
            })?;
            let expires_at = UNIX_EPOCH + Duration::from_secs(expiration);
            let ttl = expires_at.duration_since(now).unwrap_or_default();
            // Certificates are not renewed: the scheduler re-issues at ~2/3 of their life.
            Ok(Issued::plain(
                SecretData::from_map(data),
                Some(Lease::issued(None, now, ttl, false)),
            ))
        }
        other => Err(Error::Permanent(format!(
            "kind {} is not served by a vault backend",
            other.kind_name()
        ))),
    }
}

fn leased(session: &Session, now: SystemTime, answer: Envelope) -> Result<Issued, Error> {
    let data = answer.data.ok_or_else(|| no_data(session))?;
    let lease = (!answer.lease_id.is_empty() || answer.lease_duration > 0).then(|| {
        let id = (!answer.lease_id.is_empty()).then(|| LeaseId::new(answer.lease_id));
        Lease::issued(id, now, Duration::from_secs(answer.lease_duration), answer.renewable)
    });
    Ok(Issued::plain(SecretData::from_map(data), lease))
}

fn no_data(session: &Session) -> Error {
    Error::Permanent(format!("{}: Vault answered without data", session.backend))
}

pub(super) async fn renew(session: &Session, lease: &Lease) -> Result<Lease, Error> {
    let id = lease
        .id
        .as_ref()
        .ok_or(Error::Unsupported("renewal without a lease id"))?;
    let now = SystemTime::now();
    let body = json!({ "lease_id": id.as_str(), "increment": lease.ttl.as_secs() });
    let answer = session.call(RequestMethod::PUT, "sys/leases/renew", Some(body)).await?;
    let granted = Duration::from_secs(answer.lease_duration);
    Ok(Lease {
        id: Some(id.clone()),
        issued_at: lease.issued_at,
        renewed_at: now,
        expires_at: now + granted,
        ttl: lease.ttl,
        renewable: answer.renewable,
    })
}

pub(super) async fn revoke(session: &Session, id: &LeaseId) -> Result<(), Error> {
    session
        .call(
            RequestMethod::PUT,
            "sys/leases/revoke",
            Some(json!({ "lease_id": id.as_str() })),
        )
        .await
        .map(|_| ())
}

/// Revokes the certificate in `data` by its serial number (`MOUNT/revoke`): it goes on the CRL.
/// <https://openbao.org/api-docs/secret/pki/#revoke-certificate>
pub(super) async fn revoke_certificate(
    session: &Session,
    mount: &str,
    data: &sidekey::SecretData,
) -> Result<String, Error> {
    let serial = data
        .field("serial_number")
        .ok_or_else(|| Error::Permanent("the served certificate has no serial_number".into()))?;
    let serial = serial.expose().to_owned();
    session
        .call(
            RequestMethod::POST,
            &format!("{mount}/revoke"),
            Some(json!({ "serial_number": serial })),
        )
        .await
        .map(|_| format!("certificate {serial} revoked at {mount}"))
}
