//! The secret routes: `GET /v1/secrets` (the names a caller may read), `GET /v1/health`,
//! and `GET /v1/secrets/{name}[?wait=V&timeout=D]` (one value, or a long-poll for the next
//! version). The value leaves only through `secret_body`, spliced into the JSON as written.
//!
//! A value's body only changes with its version and, through `ttl_s`, each second: it is
//! rendered once per second into the room the store keeps beside the value
//! ([`crate::store::Rendered`]), and every read in that second sends the same bytes. Those
//! bytes are zeroized when the last response holding them is dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::body::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use sidekey::api::{FailingSecret, Health, LeaseInfo, SecretList, SecretSummary};
use sidekey::audit::format_time;
use sidekey::SecretName;
use zeroize::Zeroizing;

use super::respond::{self, audit_read, json, json_bytes, Answer, ApiError, Reply};
use super::Shared;
use crate::policy::{Admitted, Caller, Permit};
use crate::store::Served;

/// Longest `?timeout=` a long-poll may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// `GET /v1/secrets`: the names the caller may read, with version and expiry (no value).
pub(super) fn list(shared: &Shared, admitted: &Admitted<'_>) -> Reply {
    let now = SystemTime::now();
    let secrets = shared
        .store
        .names()
        .filter(|n| admitted.permit(n.as_str()).is_ok())
        .map(|n| {
            let served = shared.store.read(n.as_str(), now).ok();
            SecretSummary {
                name: n.to_string(),
                version: served.as_ref().map_or(0, |s| s.version),
                expires_at: served
                    .as_ref()
                    .and_then(|s| s.lease.as_ref())
                    .map(|l| format_time(l.expires_at)),
            }
        })
        .collect();
    json(StatusCode::OK, &SecretList { secrets })
}

/// `GET /v1/health`: 200 `ok`, 200 `degraded` while every secret is still served, else 503.
pub(super) fn health(shared: &Shared) -> Reply {
    let failing: Vec<FailingSecret> = shared
        .store
        .unhealthy(SystemTime::now())
        .into_iter()
        .map(|f| FailingSecret {
            name: f.name.to_string(),
            reason: f.reason,
            served: f.served,
        })
        .collect();
    // 503 only when something is not served; a failing refresh behind a still-valid value,
    // a [[file]] that could not be written, or a [[proxy]] whose database server is down, is
    // reported as degraded with 200.
    let files = shared.files.failing();
    let proxies = shared.proxies.failing();
    let (status, word) = match () {
        _ if failing.is_empty() && files.is_empty() && proxies.is_empty() => (StatusCode::OK, "ok"),
        _ if failing.iter().all(|f| f.served) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
    };
    json(
        status,
        &Health {
            status: word.to_owned(),
            failing,
            files,
            proxies,
        },
    )
}

/// `GET /v1/secrets/{name}[?wait=V&timeout=D]`
pub(super) async fn read(shared: &Shared, caller: &Caller, permit: Permit, name: &str, query: Option<&str>) -> Answer {
    let (wait, timeout) = parse_wait(query)?;
    let mut served = shared.store.read(name, SystemTime::now())?;
    if let Some(known) = wait {
        if served.version == known {
            let mut rx = shared
                .store
                .subscribe(name)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such secret"))?;
            // A stopping agent answers at once (nothing changed), so a long-poll never holds
            // up the stop; the client asks again, of the next agent.
            let changed = tokio::select! {
                changed = tokio::time::timeout(
                    timeout,
                    rx.wait_for(|slot| slot.served.as_ref().is_some_and(|s| s.version != known)),
                ) => matches!(changed, Ok(Ok(_))),
                _ = shared.stop.cancelled() => false,
            };
            if !changed {
                return Ok(respond::empty(StatusCode::NOT_MODIFIED));
            }
            served = shared.store.read(name, SystemTime::now())?;
        }
    }
    audit_read(shared, caller, "/v1/secrets/{name}", name, &served, &permit);
    Ok(secret_response(shared, name, &served))
}

/// The query of `GET /v1/secrets/{name}`: the version to wait past (`wait=V`) and for how
/// long (`timeout=D`, default 30 s, at most [`MAX_WAIT`]). Anything else answers 400.
pub fn parse_wait(query: Option<&str>) -> Result<(Option<u64>, Duration), ApiError> {
    let mut wait = None;
    let mut timeout = DEFAULT_WAIT;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "wait" => {
                wait = Some(value.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("wait={value:?} is not a version number"),
                    )
                })?)
            }
            "timeout" => {
                timeout = humantime::parse_duration(&value)
                    .map_err(|_| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            format!("timeout={value:?} is not a duration like 30s"),
                        )
                    })?
                    .min(MAX_WAIT);
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {other:?}"),
                ))
            }
        }
    }
    Ok((wait, timeout))
}

#[derive(Serialize)]
struct SecretBody<'a> {
    name: &'a str,
    version: u64,
    data: &'a RawValue,
    lease: Option<LeaseInfo>,
    fetched_at: String,
    source: &'a str,
}

fn secret_response(shared: &Shared, name: &str, served: &Served) -> Reply {
    let now = SystemTime::now();
    // The body only changes with the version and, through `ttl_s`, each second: build it once
    // per second and hand out the same bytes.
    let second = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let body = {
        let mut rendered = served.body.0.lock().expect("never poisoned");
        match &*rendered {
            Some((at, body)) if *at == second => body.clone(),
            _ => {
                let body = Arc::new(secret_body(shared, name, served, now));
                *rendered = Some((second, body.clone()));
                body
            }
        }
    };
    json_bytes(StatusCode::OK, Bytes::from_owner(RenderedBytes(body)))
}

fn secret_body(shared: &Shared, name: &str, served: &Served, now: SystemTime) -> Zeroizing<Vec<u8>> {
    // The value leaves here: spliced as raw JSON, never parsed or logged.
    let data: &RawValue = serde_json::from_str(served.data.expose_json()).expect("SecretData holds a JSON object");
    let body = SecretBody {
        name,
        version: served.version,
        data,
        lease: served.lease.as_ref().map(|l| LeaseInfo {
            id: l.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
            ttl_s: l.remaining(now).as_secs(),
            expires_at: format_time(l.expires_at),
            renewable: l.renewable,
        }),
        fetched_at: format_time(served.fetched_at),
        source: &shared
            .specs
            .get(&SecretName::new(name))
            .map(|s| format!("{}/{}", s.backend, s.source.kind_name()))
            .unwrap_or_default(),
    };
    // Sized up front, so that no grown-out-of copy of the value is left unzeroized.
    let mut out = Zeroizing::new(Vec::with_capacity(served.data.expose_json().len() + 512));
    serde_json::to_writer(&mut *out, &body).expect("API types always serialize");
    out
}

/// A rendered body shared with the response that sends it.
struct RenderedBytes(Arc<Zeroizing<Vec<u8>>>);

impl AsRef<[u8]> for RenderedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_queries_parse_or_answer_400() {
        assert_eq!(
            parse_wait(Some("wait=3&timeout=2s")).unwrap(),
            (Some(3), Duration::from_secs(2))
        );
        assert_eq!(parse_wait(None).unwrap(), (None, DEFAULT_WAIT));
        assert_eq!(parse_wait(Some("timeout=2h")).unwrap().1, MAX_WAIT);
        assert_eq!(parse_wait(Some("wait=x")).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(
            parse_wait(Some("timeout=soon")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_wait(Some("color=red")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
