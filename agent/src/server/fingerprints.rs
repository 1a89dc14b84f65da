//! `GET /v1/fingerprints` and `POST /v1/fingerprints/match`: which leaked strings are the
//! broker's. Fingerprints in, names and lease ids out — never a value. A caller sees only the
//! secrets its `[[access]]` rules grant; every request is audited with how many matched.

use hyper::body::Bytes;
use hyper::StatusCode;
use sidekey::api::{FingerprintMatch, FingerprintMatches, FingerprintOwner, FingerprintQuery, FingerprintSet};
use sidekey::audit::{format_time, EventKind};

use super::respond::{json, requested, Answer, ApiError};
use super::Shared;
use crate::fingerprints::Registry;
use crate::policy::{Admitted, Caller};

/// Most fingerprints one match request may carry.
const MAX_ASKED: usize = 100_000;

fn registry(shared: &Shared) -> Result<&Registry, ApiError> {
    shared.store.fingerprints().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "fingerprints are off: set agent.fingerprint_key_file in the agent's config",
        )
    })
}

fn audit(shared: &Shared, caller: &Caller, route: &str, asked: usize, matched: usize) {
    let mut event = requested(EventKind::Match { asked }, caller, route);
    event.count = Some(matched as u64);
    shared.audit.record(event);
}

/// `GET /v1/fingerprints`
pub fn all(shared: &Shared, caller: &Caller, admitted: &Admitted<'_>) -> Answer {
    let all = registry(shared)?.all(|name| admitted.permit(name.as_str()).is_ok());
    audit(shared, caller, "/v1/fingerprints", 0, all.len());
    let fingerprints = all
        .into_iter()
        .map(|(fingerprint, secret, length)| FingerprintOwner {
            fingerprint,
            secret: secret.to_string(),
            length: Some(length),
        })
        .collect();
    Ok(json(StatusCode::OK, &FingerprintSet { fingerprints }))
}

/// `POST /v1/fingerprints/match` with `{"fingerprints": [HEX, ...]}`
pub fn matches(shared: &Shared, caller: &Caller, admitted: &Admitted<'_>, body: &Bytes) -> Answer {
    let registry = registry(shared)?;
    let query: FingerprintQuery = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"fingerprints\": [HEX, ...]}}: {e}"),
        )
    })?;
    if query.fingerprints.len() > MAX_ASKED {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_ASKED} fingerprints per request"),
        ));
    }
    if let Some(bad) = query
        .fingerprints
        .iter()
        .find(|f| f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "not a fingerprint (64 hex digits): {:?}",
                bad.chars().take(80).collect::<String>()
            ),
        ));
    }
    let matches: Vec<FingerprintMatch> = registry
        .lookup(query.fingerprints.iter().map(String::as_str))
        .into_iter()
        .filter(|(_, e)| admitted.permit(e.secret.as_str()).is_ok())
        .map(|(fingerprint, e)| FingerprintMatch {
            fingerprint,
            secret: e.secret.to_string(),
            field: e.field,
            backend: e.backend,
            version: e.version,
            lease_id: e.lease_id,
            valid_until: e.valid_until.map(format_time),
            replaced: e.replaced_at.is_some(),
        })
        .collect();
    audit(
        shared,
        caller,
        "/v1/fingerprints/match",
        query.fingerprints.len(),
        matches.len(),
    );
    Ok(json(StatusCode::OK, &FingerprintMatches { matches }))
}
