//! AWS-side helpers: boto3 (the real AWS SDK for Python, installed by tests/run.sh) against
//! the moto server, for arranging secrets and for acting as an AWS SDK client would.

use std::process::{Command, Output};

use super::stack::Stack;

/// Runs a Python snippet with boto3 imported and `ENDPOINT` set to moto; answers stdout.
/// The test credentials of tests/run.sh are in the environment.
pub fn boto(script: &str) -> String {
    let out = python(script, &[]);
    assert!(
        out.status.success(),
        "boto3 script failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs a boto3 snippet with extra environment (`None` removes a variable); answers the output.
pub fn python(script: &str, env: &[(&str, Option<&str>)]) -> Output {
    let prelude = format!(
        "import boto3, json, os, sys\nENDPOINT = {:?}\nREGION = 'us-east-1'\n",
        Stack::get().aws_endpoint
    );
    let mut command = Command::new("python3");
    command.arg("-c").arg(format!("{prelude}{script}"));
    for (key, value) in env {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    command.output().expect("python3 from tests/run.sh's venv")
}

/// Creates a Secrets Manager secret with a string value; answers its ARN.
pub fn create_secret(name: &str, value: &str) -> String {
    boto(&format!(
        "sm = boto3.client('secretsmanager', endpoint_url=ENDPOINT, region_name=REGION)\n\
         print(sm.create_secret(Name={name:?}, SecretString={value:?})['ARN'])"
    ))
}

/// Puts a new value (a new AWSCURRENT version); answers the version id.
pub fn put_secret(name: &str, value: &str) -> String {
    boto(&format!(
        "sm = boto3.client('secretsmanager', endpoint_url=ENDPOINT, region_name=REGION)\n\
         print(sm.put_secret_value(SecretId={name:?}, SecretString={value:?})['VersionId'])"
    ))
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
