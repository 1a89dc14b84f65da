//! Drop-in AWS endpoints: `GET /secretsmanager/get` as the AWS Secrets Manager Agent answers
//! it (GetSecretValue's JSON), and `GET /v1/aws-credentials/{name}` in the container
//! credentials shape every AWS SDK reads through `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
//!
//! `/secretsmanager/get?secretId=ID` serves configured `aws.secretsmanager` secrets, matched by
//! their `secret_id` or their name, from the agent's background-refreshed value; `refreshNow=true`
//! has the secret's task re-read and serve it first; `versionId`, or a `versionStage` other
//! than the configured one, is read by the task from AWS for this request only. The route
//! never calls a backend nor writes the store: the task does both.
//! <https://github.com/aws/aws-secretsmanager-agent#retrieve-secrets>

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;
use sidekey::audit::format_time;
use sidekey::config::SecretSource;
use sidekey::SecretName;

use super::respond::{ask, audit_read, json, json_bytes, ApiError};
use super::Shared;
use crate::backend::Error;
use crate::policy::{Admitted, Caller, Permit};
use crate::scheduler::Command;
use crate::store::NativeBody;

const ROUTE: &str = "/secretsmanager/get";

/// How long a read through to AWS (`refreshNow`, another version) may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The query of `/secretsmanager/get`.
#[derive(Debug, Default, PartialEq)]
pub struct Query<'q> {
    /// `secretId`: a configured `secret_id` or secret name; never empty. Borrowed from the
    /// request unless it had to be percent-decoded.
    pub secret_id: Cow<'q, str>,
    /// `versionId`
    pub version_id: Option<String>,
    /// `versionStage`
    pub version_stage: Option<String>,
    /// `refreshNow=true`
    pub refresh_now: bool,
}

/// Parses the query of `/secretsmanager/get`; unknown parameters, a `refreshNow` other than
/// `true`/`false` and a missing `secretId` answer 400.
pub fn parse(query: Option<&str>) -> Result<Query<'_>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let mut q = Query::default();
    for (key, value) in pairs(query.unwrap_or_default()) {
        match key.as_ref() {
            "secretId" => q.secret_id = value,
            "versionId" => q.version_id = Some(value.into_owned()),
            "versionStage" => q.version_stage = Some(value.into_owned()),
            "refreshNow" => {
                q.refresh_now = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => return Err(bad(format!("refreshNow={other:?} is neither true nor false"))),
                }
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    if q.secret_id.is_empty() {
        return Err(bad("secretId is required".into()));
    }
    Ok(q)
}

/// The query's `key=value` pairs, decoded as `application/x-www-form-urlencoded` (`+` is a
/// space, `%XX` a byte, invalid UTF-8 replaced). A query with neither `+` nor `%` decodes to
/// itself: its pairs are split in place, without the decoder's per-byte pass and copies
/// (issue 18: the decoder was ~900 instructions of a cached read).
fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let plain = !query.bytes().any(|b| b == b'+' || b == b'%');
    let split = plain.then(|| {
        query.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (Cow::Borrowed(key), Cow::Borrowed(value))
        })
    });
    let decoded = (!plain).then(|| url::form_urlencoded::parse(query.as_bytes()));
    split.into_iter().flatten().chain(decoded.into_iter().flatten())
}

/// `GET /secretsmanager/get?secretId=ID[&versionStage=S][&versionId=V][&refreshNow=true]`
pub async fn get_secret_value(
    shared: &Shared,
    caller: &Caller,
    admitted: &Admitted<'_>,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let q = parse(query)?;
    let spec = shared
        .specs
        .values()
        .find(|s| {
            matches!(&s.source, SecretSource::AwsSecretsManager { secret_id, .. } if *secret_id == q.secret_id)
                || s.name.as_str() == q.secret_id
        })
        .filter(|s| matches!(s.source, SecretSource::AwsSecretsManager { .. }))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no aws.secretsmanager secret with secret_id or name {:?} is configured",
                    q.secret_id
                ),
            )
        })?;
    let permit = admitted
        .permit(spec.name.as_str())
        .map_err(|denied| ApiError::new(StatusCode::FORBIDDEN, denied.0))?;
    let SecretSource::AwsSecretsManager { version_stage, .. } = &spec.source else {
        unreachable!("filtered above")
    };

    // Another version than the one kept fresh: read by the secret's task for this request
    // only, never served.
    if q.version_id.is_some() || q.version_stage.as_deref().is_some_and(|s| s != version_stage) {
        let issued = ask(
            shared,
            &spec.name,
            TIMEOUT,
            &format!("reading {} from AWS", spec.name),
            |reply| Command::FetchVersion {
                version_id: q.version_id.clone(),
                version_stage: q.version_stage.clone(),
                reply,
            },
        )
        .await?
        .map_err(backend_error)?;
        // Version 0: not a version this agent serves.
        shared.audit.read(crate::audit_log::ReadOf {
            secret: spec.name.as_str(),
            version: 0,
            lease_id: None,
            peer: caller.peer,
            remote: caller.remote,
            token: caller.token.as_deref(),
            route: ROUTE,
            rule: permit.rule,
        });
        return native(issued.native.as_ref().map(NativeBody::new).as_ref());
    }
    if q.refresh_now {
        ask(
            shared,
            &spec.name,
            TIMEOUT,
            &format!("reading {} from AWS", spec.name),
            |reply| Command::Refresh { reply },
        )
        .await?
        .map_err(backend_error)?;
    }
    let served = shared.store.read(spec.name.as_str(), SystemTime::now())?;
    audit_read(shared, caller, ROUTE, spec.name.as_str(), &served, &permit);
    native(served.native.as_ref())
}

/// The value leaves here, in GetSecretValue's own JSON.
fn native(body: Option<&NativeBody>) -> Result<Response<Full<Bytes>>, ApiError> {
    let body = body.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no GetSecretValue answer is held for this secret",
        )
    })?;
    Ok(json_bytes(StatusCode::OK, body.bytes()))
}

fn backend_error(e: Error) -> ApiError {
    let status = if e.is_transient() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.to_string())
}

/// The container-credentials shape (ECS task role endpoint).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
}

/// `GET /v1/aws-credentials/{name}` for `aws.sts` secrets.
pub fn credentials(
    shared: &Shared,
    caller: &Caller,
    permit: Permit,
    name: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let spec = shared
        .specs
        .get(&SecretName::new(name))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no secret named {name:?}")))?;
    if !matches!(spec.source, SecretSource::AwsSts { .. }) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "{name} is of kind {}; only aws.sts secrets are served as AWS credentials",
                spec.source.kind_name()
            ),
        ));
    }
    let served = shared.store.read(name, SystemTime::now())?;
    let field = |f: &str| {
        served
            .data
            .field(f)
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{name} has no {f}")))
    };
    let (key, secret, token) = (
        field("access_key_id")?,
        field("secret_access_key")?,
        field("session_token")?,
    );
    let expiration = served
        .lease
        .as_ref()
        .map(|l| format_time(l.expires_at))
        .unwrap_or_default();
    audit_read(shared, caller, "/v1/aws-credentials/{name}", name, &served, &permit);
    // The value leaves here.
    Ok(json(
        StatusCode::OK,
        &ContainerCredentials {
            access_key_id: key.expose(),
            secret_access_key: secret.expose(),
            token: token.expose(),
            expiration,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place split and the decoder agree on every query the split takes.
    #[test]
    fn plain_queries_split_as_the_decoder_does() {
        for query in [
            "",
            "secretId=bench",
            "secretId=a&versionStage=AWSCURRENT&refreshNow=false",
            "&&secretId=a&&",
            "secretId",
            "secretId=",
            "=x",
            "a=b=c&d",
            "secretId=caf\u{e9}&x=\u{1F600}",
            "secretId=a+b",
            "secretId=a%2Fb&v=%zz",
        ] {
            let ours: Vec<_> = pairs(query).collect();
            let theirs: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).collect();
            assert_eq!(ours, theirs, "{query:?}");
        }
    }

    #[test]
    fn queries_parse_like_the_aws_agent_or_answer_400() {
        let q = parse(Some("secretId=prod%2Fstripe&versionStage=AWSPREVIOUS&refreshNow=true")).unwrap();
        assert_eq!(q.secret_id, "prod/stripe");
        assert_eq!(q.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert!(q.refresh_now);
        for bad in [
            None,
            Some("versionId=x"),
            Some("secretId=a&refreshNow=yes"),
            Some("secretId=a&color=red"),
        ] {
            assert_eq!(parse(bad).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
