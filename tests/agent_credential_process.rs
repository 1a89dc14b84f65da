//! `sidekey-agent aws-credential-process` (issue 15): an `aws.sts` session from a real agent
//! (AssumeRole against moto) used by boto3 and by the AWS CLI configured with nothing but a
//! profile whose `credential_process` runs the real binary — no key in the environment, an
//! empty shared credentials file.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::support::aws::python;
use crate::support::{bin, Agent, Stack, GRANT_SELF, LOCAL_DEV};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/deploy";
const ASSUMED: &str = "arn:aws:sts::123456789012:assumed-role/deploy/sidekey-cp";

fn sts_agent() -> Agent {
    Agent::start(&format!(
        "[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = {:?}\n\n\
         [secrets.deploy]\nbackend = \"aws\"\nkind = \"aws.sts\"\nrole_arn = {ROLE_ARN:?}\nsession_name = \"sidekey-cp\"\n\n\
         [secrets.s]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n\n{LOCAL_DEV}\n{GRANT_SELF}",
        Stack::get().aws_endpoint
    ))
}

/// The environment of an AWS client that has only the profile `sidekey` to go by: a config
/// file whose profile runs `credential_process`, an empty credentials file, no key variables.
fn profile_only(agent: &Agent) -> Vec<(String, Option<String>)> {
    let config = agent.path("aws-config");
    let credentials = agent.path("aws-credentials");
    fs::write(
        &config,
        format!(
            "[profile sidekey]\nregion = us-east-1\ncredential_process = {} aws-credential-process deploy --socket {}\n",
            bin("sidekey-agent").display(),
            agent.socket.display()
        ),
    )
    .unwrap();
    fs::write(&credentials, "").unwrap();
    let set = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
    let mut env = vec![
        set("AWS_CONFIG_FILE", config.to_str().unwrap()),
        set("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        set("AWS_PROFILE", "sidekey"),
        set("AWS_ENDPOINT_URL", &Stack::get().aws_endpoint),
    ];
    for unset in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "SIDEKEY_SOCKET",
    ] {
        env.push((unset.to_owned(), None));
    }
    env
}

#[test]
fn boto3_and_the_aws_cli_use_the_agents_sts_session_through_credential_process() {
    let agent = sts_agent();
    let served = agent.wait_served("deploy", Duration::from_secs(20));

    // What the command prints: AWS's shape, with the session the agent serves.
    let out = agent.cli(&["aws-credential-process", "deploy"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["Version"], 1);
    assert_eq!(printed["AccessKeyId"], served["data"]["access_key_id"]);
    assert_eq!(printed["SecretAccessKey"], served["data"]["secret_access_key"]);
    assert_eq!(printed["SessionToken"], served["data"]["session_token"]);
    assert_eq!(printed["Expiration"], served["lease"]["expires_at"]);
    humantime::parse_rfc3339(printed["Expiration"].as_str().unwrap()).expect("RFC 3339");

    let env = profile_only(&agent);
    let env_refs: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();

    // boto3, with no endpoint or key in the code: all from the profile and AWS_ENDPOINT_URL.
    let boto = python(
        "print(boto3.Session().client('sts').get_caller_identity()['Arn'])",
        &env_refs,
    );
    assert!(
        boto.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&boto.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&boto.stdout).trim(), ASSUMED);

    // The AWS CLI (tests/stack/requirements.txt), the same way.
    let mut aws = Command::new("aws");
    aws.args(["sts", "get-caller-identity", "--output", "json"]);
    for (key, value) in &env {
        match value {
            Some(v) => aws.env(key, v),
            None => aws.env_remove(key),
        };
    }
    let cli = aws.output().expect("aws (awscli) from tests/run.sh's venv on PATH");
    assert!(cli.status.success(), "aws: {}", String::from_utf8_lossy(&cli.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(identity["Arn"], ASSUMED);

    // Without the profile the same clients have no credentials: the test can fail.
    let mut none = env_refs.clone();
    none.retain(|(k, _)| *k != "AWS_PROFILE");
    none.push(("AWS_CONFIG_FILE", Some("/dev/null")));
    let without = python(
        "print(boto3.Session().client('sts').get_caller_identity()['Arn'])",
        &none,
    );
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("NoCredentialsError"));
}

#[test]
fn a_secret_that_is_not_an_sts_session_is_refused_naming_the_missing_fields() {
    let agent = sts_agent();
    agent.wait_served("s", Duration::from_secs(20));
    let out = agent.cli(&["aws-credential-process", "s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(
            "s is not an aws.sts secret (source dev/local.generated): its data lacks access_key_id, \
             secret_access_key, session_token (it has: value)"
        ),
        "{stderr}"
    );

    let out = agent.cli(&["aws-credential-process", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret named \"nope\""));

    let gone = agent.path("gone.sock");
    let out = agent.cli(&["aws-credential-process", "deploy", "--socket", gone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(gone.to_str().unwrap()));
}
