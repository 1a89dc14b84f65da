//! `aws.sts`: AssumeRole session credentials, served as `{access_key_id, secret_access_key,
//! session_token}` with the session's expiry as the lease; the scheduler re-assumes at about
//! two thirds of the session's life.
//! <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>

use std::time::{Duration, SystemTime};

use serde_json::{json, Map};
use sidekey::{Lease, SecretData};

use super::{classify, Aws, Error, Issued};

pub(super) async fn assume_role(
    aws: &Aws,
    role_arn: &str,
    duration: Duration,
    external_id: Option<&str>,
    session_name: &str,
) -> Result<Issued, Error> {
    let what = format!("AssumeRole {role_arn}");
    let now = SystemTime::now();
    let out = aws
        .sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX))
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| classify(&aws.name, &what, e))?;
    let creds = out
        .credentials()
        .ok_or_else(|| Error::Permanent(format!("{}: {what}: the answer has no credentials", aws.name)))?;
    let expires_at = SystemTime::try_from(*creds.expiration())
        .map_err(|_| Error::Permanent(format!("{}: {what}: unreadable expiration", aws.name)))?;
    let mut map = Map::new();
    map.insert("access_key_id".into(), json!(creds.access_key_id()));
    map.insert("secret_access_key".into(), json!(creds.secret_access_key()));
    map.insert("session_token".into(), json!(creds.session_token()));
    let ttl = expires_at.duration_since(now).unwrap_or_default();
    // Sessions are not renewable: re-assumed at ~2/3 of their life.
    Ok(Issued::plain(
        SecretData::from_map(map),
        Some(Lease::issued(None, now, ttl, false)),
    ))
}
