//! AWS web identity, as EKS IRSA sets it up (issue 14): with `AWS_WEB_IDENTITY_TOKEN_FILE` and
//! `AWS_ROLE_ARN` and no other credentials, the standard chain exchanges the token at STS
//! (`AssumeRoleWithWebIdentity`) and both `aws.secretsmanager` and `aws.sts` secrets are served.
//! Against the moto server, which does not check the token's signature: what is proven is that
//! the agent finds, reads and uses the web identity — with the token file gone it serves
//! nothing.

use std::time::Duration;

use crate::support::aws::create_secret;
use crate::support::{unique, Agent, Stack, GRANT_SELF};

/// The agent's config: a Secrets Manager secret and an STS session, through moto.
fn config(secret_id: &str) -> String {
    format!(
        r#"[backends.aws]
type = "aws"
region = "us-east-1"
endpoint_url = {endpoint:?}

[secrets.app]
backend = "aws"
kind = "aws.secretsmanager"
secret_id = {secret_id:?}

[secrets.deploy]
backend = "aws"
kind = "aws.sts"
role_arn = "arn:aws:iam::123456789012:role/deploy"
session_name = "irsa-test"
duration = "15m"

{GRANT_SELF}"#,
        endpoint = Stack::get().aws_endpoint
    )
}

/// Only the web identity: static keys, profiles and IMDS removed. The chain's own STS call
/// (`AssumeRoleWithWebIdentity`) goes where `AWS_ENDPOINT_URL_STS` says, as in any AWS SDK; the
/// backend's `endpoint_url` is for the agent's own calls.
fn irsa_env(token_file: &str) -> Vec<(&str, Option<&str>)> {
    vec![
        ("AWS_ENDPOINT_URL_STS", Some(Stack::get().aws_endpoint.as_str())),
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_SESSION_TOKEN", None),
        ("AWS_PROFILE", None),
        ("AWS_SHARED_CREDENTIALS_FILE", Some("/nonexistent/credentials")),
        ("AWS_CONFIG_FILE", Some("/nonexistent/config")),
        ("AWS_EC2_METADATA_DISABLED", Some("true")),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", None),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", None),
        ("AWS_ROLE_ARN", Some("arn:aws:iam::123456789012:role/irsa")),
        ("AWS_ROLE_SESSION_NAME", Some("sidekey-irsa")),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", Some(token_file)),
    ]
}

#[test]
fn the_web_identity_of_the_standard_chain_serves_secrets_manager_and_sts() {
    let secret_id = unique("irsa");
    let value = unique("value");
    create_secret(&secret_id, &value);
    let agent = Agent::prepare(&config(&secret_id));
    // A projected service-account token is a JWT (made here, unsigned: moto takes any).
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"sub":"{}"}}"#, unique("sa")))
    );
    let token_file = agent.path("token");
    std::fs::write(&token_file, format!("{jwt}\n")).unwrap();
    let token_path = token_file.display().to_string();
    let agent = agent.launch_with(&irsa_env(&token_path));

    let app = agent.wait_served("app", Duration::from_secs(20));
    assert_eq!(app["data"]["value"], value.as_str());
    let deploy = agent.wait_served("deploy", Duration::from_secs(20));
    for field in ["access_key_id", "secret_access_key", "session_token"] {
        assert!(deploy["data"][field].is_string(), "{field} in {deploy}");
    }
}

#[test]
fn without_its_token_file_the_web_identity_serves_nothing() {
    let secret_id = unique("irsa");
    create_secret(&secret_id, &unique("value"));
    let agent = Agent::prepare(&config(&secret_id));
    let missing = agent.path("no-such-token").display().to_string();
    let agent = agent.launch_with(&irsa_env(&missing));
    std::thread::sleep(Duration::from_secs(3));
    let r = agent.http("/v1/secrets/app");
    assert_ne!(r.status, 200, "served without any credentials: {}", r.body);
    assert!(
        agent.stderr().contains("no credentials: ")
            && agent
                .stderr()
                .contains(&format!("token file {missing} from AWS_WEB_IDENTITY_TOKEN_FILE")),
        "the failure names the token file:\n{}",
        agent.stderr()
    );
}
