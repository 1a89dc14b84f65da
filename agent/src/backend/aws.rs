//! The `aws` backend: Secrets Manager and STS through the AWS SDK for Rust. Credentials come
//! from the standard chain (environment, profile, container, IMDS); `endpoint_url` points the
//! clients at an emulator or a VPC endpoint. Kinds live in [`secrets_manager`] and [`sts`].

mod secrets_manager;
mod sts;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use sidekey::api::RevokeAction;
use sidekey::config::{AwsBackend, SecretSource, SecretSpec};

use super::{Backend, Error, Issued, Revocation};

/// An AWS backend.
pub struct Aws {
    name: String,
    secrets_manager: aws_sdk_secretsmanager::Client,
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
}

impl Aws {
    /// Loads the shared SDK config (region, endpoint, credential chain) and builds clients.
    pub async fn connect(name: &str, config: &AwsBackend) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        Aws {
            name: name.to_owned(),
            secrets_manager: aws_sdk_secretsmanager::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
        }
    }
}

#[async_trait]
impl Backend for Aws {
    async fn fetch(&self, spec: &SecretSpec) -> Result<Issued, Error> {
        match &spec.source {
            SecretSource::AwsSecretsManager {
                secret_id,
                version_stage,
                rotate_every,
            } => secrets_manager::get(self, secret_id, None, Some(version_stage), *rotate_every).await,
            SecretSource::AwsSts {
                role_arn,
                duration,
                external_id,
                session_name,
            } => sts::assume_role(self, role_arn, *duration, external_id.as_deref(), session_name).await,
            other => Err(Error::Permanent(format!(
                "kind {} is not served by an aws backend",
                other.kind_name()
            ))),
        }
    }

    /// A role's older sessions are denied; a Secrets Manager secret that this agent rotates
    /// is rotated; one rotated elsewhere is not ours to change.
    fn revocation(&self, spec: &SecretSpec) -> Revocation {
        match &spec.source {
            SecretSource::AwsSts { .. } => Revocation::AtSource(RevokeAction::RevokedSessions),
            SecretSource::AwsSecretsManager {
                rotate_every: Some(_), ..
            } => Revocation::Replace(RevokeAction::Rotated),
            _ => Revocation::not_at_source(spec),
        }
    }

    /// `aws.sts`: revokes every session of the role issued until now, the way AWS documents
    /// it (IAM console "Revoke active sessions"): an inline policy `AWSRevokeOlderSessions`
    /// denying everything to tokens with `aws:TokenIssueTime` before now. New sessions (the
    /// agent re-assumes right after) are not affected.
    async fn revoke_issued(&self, spec: &SecretSpec, data: &sidekey::SecretData) -> Result<String, Error> {
        let _ = data;
        let SecretSource::AwsSts { role_arn, .. } = &spec.source else {
            return Err(Error::Unsupported("revocation"));
        };
        let role = role_arn
            .rsplit_once(":role/")
            .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
            .ok_or_else(|| Error::Permanent(format!("{role_arn} is not a role ARN")))?;
        let now = sidekey::audit::format_time(std::time::SystemTime::now());
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": now}},
            }],
        });
        self.iam
            .put_role_policy()
            .role_name(role)
            .policy_name("AWSRevokeOlderSessions")
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("error").to_owned();
                Error::Permanent(format!(
                    "{}: IAM PutRolePolicy on {role}: {code}: {}",
                    self.name,
                    DisplayErrorContext(&e)
                ))
            })?;
        Ok(format!(
            "sessions of role {role} issued before {now} denied (inline policy AWSRevokeOlderSessions)"
        ))
    }

    async fn fetch_version(
        &self,
        spec: &SecretSpec,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Issued, Error> {
        match &spec.source {
            SecretSource::AwsSecretsManager { secret_id, .. } => {
                secrets_manager::get(self, secret_id, version_id, version_stage, None).await
            }
            _ => Err(Error::Unsupported("fetching a specific version")),
        }
    }

    async fn rotate(&self, spec: &SecretSpec) -> Result<(), Error> {
        match &spec.source {
            SecretSource::AwsSecretsManager { secret_id, .. } => secrets_manager::rotate(self, secret_id).await,
            _ => Err(Error::Unsupported("rotation")),
        }
    }
}

/// Whether `e` failed while loading credentials (before any call reached the service).
fn credentials_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Where the standard chain was told to find credentials, for an error that says none were
/// found: the web identity token file (what EKS IRSA and other OIDC federations set) is named.
fn credentials_hint() -> String {
    match std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE") {
        Some(file) => format!(
            " (web identity: token file {} from AWS_WEB_IDENTITY_TOKEN_FILE, role from AWS_ROLE_ARN; \
             its STS call goes to AWS_ENDPOINT_URL_STS when set, not to the backend's endpoint_url)",
            std::path::Path::new(&file).display()
        ),
        None => " (the standard chain: environment, profile, web identity, container, IMDS)".to_owned(),
    }
}

/// Maps an SDK error to an [`Error`]: service errors by their code, transport failures as
/// transient. Messages carry the operation, the resource and AWS's code and message only.
fn classify<E, R>(backend: &str, what: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("unknown error");
            let msg = format!("{backend}: {what}: {code}: {}", err.message().unwrap_or("no message"));
            match code {
                "ThrottlingException"
                | "Throttling"
                | "InternalServiceError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "RequestTimeout" => Error::Transient(msg),
                "ResourceNotFoundException" | "NoSuchEntity" => Error::NotFound(msg),
                _ => Error::Permanent(msg),
            }
        }
        SdkError::DispatchFailure(d) if d.as_connector_error().is_some_and(|c| credentials_failed(c)) => {
            Error::Transient(format!(
                "{backend}: {what}: no credentials: {}{}",
                DisplayErrorContext(&e),
                credentials_hint()
            ))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Transient(format!("{backend}: {what}: {}", DisplayErrorContext(&e)))
        }
        _ => Error::Permanent(format!("{backend}: {what}: {}", DisplayErrorContext(&e))),
    }
}
