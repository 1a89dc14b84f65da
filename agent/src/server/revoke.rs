//! `POST /v1/revoke`: a responder (or the scanner) names a leaked credential — by secret name,
//! fingerprint or value — and the secret's task revokes it at the issuer and serves a fresh
//! one. Only callers with `revoke = true` for that secret; a value is fingerprinted on arrival
//! and dropped, never logged.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::StatusCode;
use sidekey::api::{RevokeAction, RevokeAnswer, RevokeRequest};
use sidekey::{LeaseId, SecretName};
use zeroize::Zeroizing;

use super::respond::{ask, json, Answer, ApiError};
use super::Shared;
use crate::policy::Admitted;
use crate::scheduler::Command;

/// How long a revocation (revoke + re-issue at the issuer) may take before the caller is told.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A credential named by fingerprint or by value (zeroized on drop).
enum Lookup {
    Print(String),
    Value(Zeroizing<String>),
}

/// What to revoke, once resolved.
struct Target {
    secret: SecretName,
    lease: Option<LeaseId>,
}

/// `POST /v1/revoke`. `refuse` reports (and audits) a caller not allowed to.
pub async fn revoke(
    shared: &Shared,
    admitted: &Admitted<'_>,
    body: &Bytes,
    refuse: impl Fn(&str, String) -> ApiError,
) -> Answer {
    let request: RevokeRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be {{\"secret\": NAME}}, {{\"fingerprint\": HEX}} or {{\"value\": \"...\"}}: {}",
                sidekey::api::json_error(&e)
            ),
        )
    })?;
    let target = resolve(shared, request)?;
    if let Err(denied) = admitted.permit_revoke(target.secret.as_str()) {
        return Err(refuse(target.secret.as_str(), denied.0));
    }
    let doing = format!("the revocation of {}", target.secret);
    let done = ask(shared, &target.secret, TIMEOUT, &doing, |reply| Command::Revoke {
        lease: target.lease,
        reply,
    })
    .await?;
    let status = match done.action {
        RevokeAction::Failed => StatusCode::BAD_GATEWAY,
        _ => StatusCode::OK,
    };
    Ok(json(
        status,
        &RevokeAnswer {
            secret: target.secret.to_string(),
            action: done.action,
            revoked: done.revoked,
            lease_id: done.lease_id,
            version: done.version,
            detail: done.detail,
        },
    ))
}

/// The secret (and lease) a request names.
fn resolve(shared: &Shared, request: RevokeRequest) -> Result<Target, ApiError> {
    let print = match request {
        RevokeRequest::Secret(name) => {
            if !shared.specs.contains_key(name.as_str()) {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no secret {name:?}")));
            }
            return Ok(Target {
                secret: SecretName::new(name),
                lease: None,
            });
        }
        RevokeRequest::Fingerprint(print) => Lookup::Print(print),
        RevokeRequest::Value(value) => Lookup::Value(value),
    };
    let registry = shared.store.fingerprints().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "revoking by fingerprint or value needs agent.fingerprint_key_file in the agent's config",
        )
    })?;
    let print = match print {
        Lookup::Print(print) => print.to_ascii_lowercase(),
        Lookup::Value(value) => registry.fingerprint(value.as_bytes()),
    };
    let (_, entry) = registry.lookup([print.as_str()]).into_iter().next().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not a credential this agent issued (or its record has expired)",
        )
    })?;
    Ok(Target {
        secret: entry.secret,
        lease: entry.lease_id.map(LeaseId::new),
    })
}
