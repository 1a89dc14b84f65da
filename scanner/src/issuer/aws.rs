//! AWS, as an issuer of leaked credentials: an access key id and secret access key found in
//! the same file are paired ([`pairs`], nearest line first) and tried with STS
//! `GetCallerIdentity` through the AWS SDK ([`caller_identity`]); a live long-term key
//! (`AKIA`) is deactivated through IAM with the operator's credentials from the standard chain
//! ([`deactivate_all`]: `GetAccessKeyLastUsed` names its user, `UpdateAccessKey
//! Status=Inactive`). Temporary keys (`ASIA`) are tried only with a session token from the same
//! file, and cannot be deactivated.
//!
//! `--aws-endpoint-url` points both at an emulator or a VPC endpoint; the region comes from the
//! standard chain (default us-east-1). A leaked secret is never sent: requests are signed with
//! it. Error texts that quote the access key id are scrubbed before they are kept.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use sidekey::api::RevokeAction;

use super::{error_chain, Action, Answer};
use crate::finding::Finding;

/// The rule of AWS access key ids.
pub const AWS_KEY_ID_RULE: &str = "aws-access-key-id";
/// The rule of AWS secret access keys.
pub const AWS_SECRET_RULE: &str = "aws-secret-access-key";
/// The rule of AWS session tokens (needed with temporary `ASIA` ids).
pub const AWS_SESSION_TOKEN_RULE: &str = "aws-session-token";
/// Most secrets tried with one access key id (nearest first).
const MAX_SECRETS_PER_ID: usize = 8;
/// Region when the standard chain names none.
const DEFAULT_REGION: &str = "us-east-1";

/// An access key id and the secrets (nearest first) and session token to try it with
/// (indices into the findings).
pub struct Pair {
    /// The access key id's finding.
    pub id: usize,
    /// The secret access key findings of the same file, nearest first.
    pub secrets: Vec<usize>,
    /// The session token, for a temporary id.
    pub token: Option<usize>,
}

/// The AWS key pairs to try: per path, each id with the secrets of the same path, nearest
/// line first (at most [`MAX_SECRETS_PER_ID`]); a temporary id with the nearest session token,
/// or not at all. Broker-owned findings are not paired.
pub fn pairs(findings: &[Finding]) -> Vec<Pair> {
    #[derive(Default)]
    struct InPath {
        ids: Vec<usize>,
        secrets: Vec<usize>,
        tokens: Vec<usize>,
    }
    let mut paths: BTreeMap<&str, InPath> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if f.owned_secret.is_some() {
            continue;
        }
        if ![AWS_KEY_ID_RULE, AWS_SECRET_RULE, AWS_SESSION_TOKEN_RULE].contains(&f.rule_id.as_str()) {
            continue;
        }
        let p = paths.entry(f.path.as_str()).or_default();
        match f.rule_id.as_str() {
            AWS_KEY_ID_RULE => p.ids.push(i),
            AWS_SECRET_RULE => p.secrets.push(i),
            _ => p.tokens.push(i),
        }
    }
    let distance = |a: usize, b: usize| findings[a].line.abs_diff(findings[b].line);
    let mut pairs = Vec::new();
    for p in paths.values() {
        for &id in &p.ids {
            let temporary = findings[id].secret.expose().starts_with("ASIA");
            let token = p.tokens.iter().copied().min_by_key(|&t| distance(id, t));
            if temporary && token.is_none() {
                continue;
            }
            let mut secrets = p.secrets.clone();
            secrets.sort_by_key(|&s| (distance(id, s), s));
            secrets.truncate(MAX_SECRETS_PER_ID);
            if !secrets.is_empty() {
                pairs.push(Pair {
                    id,
                    secrets,
                    token: token.filter(|_| temporary),
                });
            }
        }
    }
    pairs
}

/// A current-thread runtime for the AWS SDK: made only when there is something to ask.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The SDK's shared config: region from the standard chain (default us-east-1), the endpoint
/// override, bounded timeouts, and — for `operator` — the standard credential chain; else no
/// credentials (each call brings the leaked ones).
pub(crate) async fn sdk_config(endpoint: Option<&str>, operator: bool) -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    if !operator {
        loader = loader.no_credentials();
    }
    loader.load().await
}

/// STS `GetCallerIdentity` signed with a leaked key pair.
pub async fn caller_identity(base: &SdkConfig, id: &Finding, secret: &Finding, token: Option<&Finding>) -> Answer {
    let credentials = aws_sdk_sts::config::Credentials::new(
        id.secret.expose(),
        secret.secret.expose(),
        token.map(|t| t.secret.expose().to_owned()),
        None,
        "sidekey-scan-leaked",
    );
    let config = aws_sdk_sts::config::Builder::from(base)
        .credentials_provider(credentials)
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    match sts.get_caller_identity().send().await {
        Ok(out) => Answer::Live {
            who: out.arn().map(str::to_owned),
            accessor: None,
        },
        Err(e) => aws_error(&e, "STS"),
    }
}

/// An AWS error as an answer: the issuer refusing the credential is `Dead`; `AccessDenied`
/// means the request was authenticated (only not allowed), so the key works: `Live`; anything
/// else (network, throttling, server errors) cannot tell.
fn aws_error<E>(e: &SdkError<E>, service: &str) -> Answer
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match service_error(e) {
        Some((code, message)) => match code.as_str() {
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "InvalidAccessKeyId"
            | "UnrecognizedClientException"
            | "AuthFailure"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidToken" => Answer::Dead,
            "AccessDenied" | "AccessDeniedException" => Answer::Live {
                who: None,
                accessor: None,
            },
            _ => Answer::Unknown(format!("{service} answered {code}: {message}")),
        },
        None => Answer::Unknown(format!("{service}: {}", error_chain(e))),
    }
}

/// An AWS service's error answer as (code, message); `None` when there was no answer (network,
/// timeout). The code is the SDK's, else read from the raw body: moto writes query-protocol
/// errors as `<ErrorResponse><Errors><Error>`, where the SDK's parser finds none.
pub(crate) fn service_error<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<(String, String)> {
    let SdkError::ServiceError(ctx) = e else { return None };
    let body = ctx
        .raw()
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let element = |tag: &str| {
        let (_, rest) = body.split_once(&format!("<{tag}>"))?;
        let (text, _) = rest.split_once(&format!("</{tag}>"))?;
        Some(text.trim().to_owned())
    };
    let code = ctx
        .err()
        .code()
        .map(str::to_owned)
        .or_else(|| element("Code"))
        .unwrap_or_else(|| format!("HTTP {}", ctx.raw().status().as_u16()));
    let message = ctx
        .err()
        .message()
        .map(str::to_owned)
        .or_else(|| element("Message"))
        .unwrap_or_else(|| "no message".to_owned());
    Some((code, message))
}

/// What `--revoke` would do with the live access key `id` of `user` (as STS named it); no
/// call is made.
pub fn dry_run(id: &str, user: Option<String>) -> Action {
    if !long_term(id) {
        return temporary(user);
    }
    let whose = match &user {
        Some(u) => format!("IAM user {u}"),
        None => "its IAM user (GetAccessKeyLastUsed)".to_owned(),
    };
    Action::new(
        RevokeAction::DryRun,
        false,
        user,
        format!("would deactivate the access key of {whose} (UpdateAccessKey Status=Inactive)"),
    )
}

/// Whether an access key id is a long-term IAM user key, which IAM can deactivate.
fn long_term(id: &str) -> bool {
    id.starts_with("AKIA")
}

/// Temporary credentials: not deactivatable through IAM.
fn temporary(user: Option<String>) -> Action {
    Action::new(
        RevokeAction::NotRevocable,
        false,
        user,
        "temporary AWS credentials: IAM cannot deactivate them; they expire on their own, or revoke the \
         role's active sessions"
            .to_owned(),
    )
}

/// Deactivates each long-term key `(id, user as STS named it)` through IAM (at `endpoint`)
/// with the operator's credentials; a temporary one is `not_revocable`. One action per key.
pub fn deactivate_all(keys: &[(&str, Option<String>)], endpoint: Option<&str>) -> Vec<Action> {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            return keys
                .iter()
                .map(|_| {
                    Action::new(
                        RevokeAction::Failed,
                        false,
                        None,
                        format!("no runtime for the AWS SDK: {e}"),
                    )
                })
                .collect()
        }
    };
    runtime.block_on(async {
        let config = sdk_config(endpoint, true).await;
        let iam = aws_sdk_iam::Client::new(&config);
        let mut out = Vec::new();
        for (id, user) in keys {
            out.push(if long_term(id) {
                deactivate(&iam, id).await
            } else {
                temporary(user.clone())
            });
        }
        out
    })
}

/// `GetAccessKeyLastUsed` (whose key) then `UpdateAccessKey Status=Inactive`.
async fn deactivate(iam: &aws_sdk_iam::Client, id: &str) -> Action {
    let hide = |text: String| text.replace(id, "the key");
    let user = match iam.get_access_key_last_used().access_key_id(id).send().await {
        Ok(out) => match out.user_name() {
            Some(u) => u.to_owned(),
            None => {
                return Action::new(
                    RevokeAction::Failed,
                    false,
                    None,
                    "IAM GetAccessKeyLastUsed named no user (a root key?): deactivate it by hand".to_owned(),
                )
            }
        },
        Err(e) => {
            return Action::new(
                RevokeAction::Failed,
                false,
                None,
                hide(format!("IAM GetAccessKeyLastUsed: {}", iam_error(&e))),
            )
        }
    };
    match iam
        .update_access_key()
        .user_name(&user)
        .access_key_id(id)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
    {
        Ok(_) => Action::new(
            RevokeAction::DeactivatedAccessKey,
            true,
            Some(user.clone()),
            format!("deactivated the access key of IAM user {user} (UpdateAccessKey Status=Inactive)"),
        ),
        Err(e) => Action::new(
            RevokeAction::Failed,
            false,
            Some(user.clone()),
            hide(format!("IAM UpdateAccessKey for user {user}: {}", iam_error(&e))),
        ),
    }
}

/// An IAM error in words: the service's code and message, or why it could not be reached.
fn iam_error<E>(e: &aws_sdk_iam::error::SdkError<E>) -> String
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match service_error(e) {
        Some((code, message)) => format!("{code}: {message}"),
        None => error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::finding::test_finding as finding;

    #[test]
    fn ids_are_paired_with_the_secrets_of_their_file_nearest_first() {
        let findings = vec![
            finding(AWS_KEY_ID_RULE, "cloud", "a/.env", 10, "AKIA-one"),
            finding(AWS_SECRET_RULE, "cloud", "a/.env", 30, "far"),
            finding(AWS_SECRET_RULE, "cloud", "a/.env", 11, "near"),
            finding(AWS_SECRET_RULE, "cloud", "b/.env", 10, "other file"),
            finding(AWS_KEY_ID_RULE, "cloud", "c/.env", 1, "ASIA-no-token"),
            finding(AWS_SECRET_RULE, "cloud", "c/.env", 2, "s"),
            finding(AWS_KEY_ID_RULE, "cloud", "d/.env", 1, "AKIA-alone"),
        ];
        let pairs = pairs(&findings);
        assert_eq!(
            pairs.len(),
            1,
            "a temporary id needs a token; a lone id has nothing to pair"
        );
        assert_eq!(
            (pairs[0].id, pairs[0].secrets.clone(), pairs[0].token),
            (0, vec![2, 1], None)
        );
    }
}
