//! AWS-side helpers: boto3 (the real AWS SDK for Python, installed by tests/run.sh) against
//! the moto server, for arranging secrets and for acting as an AWS SDK client would.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::eventually;
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

/// A moto server of a test's own (the stack's shared one must not be stopped or have IAM
/// authentication switched on), stopped when dropped.
pub struct Moto {
    child: Option<Child>,
    port: u16,
    pub endpoint: String,
}

impl Moto {
    /// Starts one on a free port, logging to `dir/moto.log`.
    pub fn start(dir: &Path) -> Moto {
        Moto::start_on(dir, free_port())
    }

    /// Starts one on `port` (a restarted moto starts empty).
    pub fn start_on(dir: &Path, port: u16) -> Moto {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("moto.log"))
            .unwrap();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("moto_server from tests/run.sh's venv on PATH");
        let moto = Moto {
            child: Some(child),
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        eventually(Duration::from_secs(30), "moto answering", || {
            ureq::get(&format!("{}/moto-api/", moto.endpoint)).call().ok()
        });
        moto
    }

    /// Its port, to start another on after [`Moto::stop`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A boto3 snippet against this moto, with `env` added (e.g. the caller's credentials;
    /// else the stack's fake operator credentials); answers its stdout.
    pub fn boto(&self, script: &str, env: &[(&str, Option<&str>)]) -> String {
        let script = format!("ENDPOINT = {:?}\n{script}", self.endpoint);
        let out = python(&script, env);
        assert!(
            out.status.success(),
            "boto3 script failed:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// From now on every request must be signed by an IAM user's key (and allowed by its policy).
    pub fn require_auth(&self) {
        let r = ureq::post(&format!("{}/moto-api/reset-auth", self.endpoint))
            .send_string("0")
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
