//! `aws.secretsmanager`: GetSecretValue with an explicit stage (or version id), RotateSecret.
//! A JSON object SecretString is served as a map, any other string as `{value}`, SecretBinary
//! as `{value: base64}`. The answer is also kept in GetSecretValue's own JSON shape (as the
//! AWS Secrets Manager Agent returns it) for `/secretsmanager/get`.
//! <https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Serialize;
use sidekey::{SecretData, SecretString};

use super::{classify, Aws, Error, Issued};

/// GetSecretValue's JSON, field for field (CreatedDate as fractional epoch seconds in a
/// string, as the AWS Secrets Manager Agent writes it).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Native<'a> {
    #[serde(rename = "ARN")]
    arn: Option<&'a str>,
    name: Option<&'a str>,
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_stages: Option<&'a [String]>,
    created_date: Option<String>,
}

pub(super) async fn get(
    aws: &Aws,
    secret_id: &str,
    version_id: Option<&str>,
    version_stage: Option<&str>,
    rotate_every: Option<Duration>,
) -> Result<Issued, Error> {
    let what = format!("GetSecretValue {secret_id}");
    let out = aws
        .secrets_manager
        .get_secret_value()
        .secret_id(secret_id)
        .set_version_id(version_id.map(str::to_owned))
        .set_version_stage(version_stage.map(str::to_owned))
        .send()
        .await
        .map_err(|e| classify(&aws.name, &what, e))?;

    let binary = out
        .secret_binary()
        .map(|b| SecretString::from(base64::engine::general_purpose::STANDARD.encode(b.as_ref())));
    let string = out.secret_string().map(SecretString::from);
    let data = match (&string, &binary) {
        (Some(s), _) => SecretData::from_json(s.expose()).unwrap_or_else(|_| SecretData::single("value", s.clone())),
        (None, Some(b)) => SecretData::single("value", b.clone()),
        (None, None) => {
            // What an unfinished rotation leaves behind: never serve it in place of a good value.
            return Err(Error::Permanent(format!(
                "{}: {what}: version {} of stage {} has no value (an unfinished rotation?)",
                aws.name,
                out.version_id().unwrap_or("?"),
                version_stage.unwrap_or("?")
            )));
        }
    };
    let created = out.created_date().and_then(|d| SystemTime::try_from(*d).ok());
    let native = Native {
        arn: out.arn(),
        name: out.name(),
        version_id: out.version_id(),
        secret_string: string.as_ref().map(SecretString::expose),
        secret_binary: binary.as_ref().map(SecretString::expose),
        version_stages: out.version_stages.as_deref(),
        created_date: created.map(|t| {
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            format!("{secs}")
        }),
    };
    let native = SecretString::from(serde_json::to_string(&native).expect("GetSecretValue JSON always serializes"));
    Ok(Issued {
        data,
        lease: None,
        refresh_at: None,
        revision: out.version_id().map(str::to_owned),
        native: Some(native),
        rotate_at: rotate_every.map(|every| created.unwrap_or_else(SystemTime::now) + every),
    })
}

pub(super) async fn rotate(aws: &Aws, secret_id: &str) -> Result<(), Error> {
    aws.secrets_manager
        .rotate_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify(&aws.name, &format!("RotateSecret {secret_id}"), e))
}
