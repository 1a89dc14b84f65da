//! A Vault outage (issue 6, item 2), against a private OpenBao dev server this test stops and
//! starts: while it is down the credential still valid keeps being served and health says
//! degraded with the reason; when it is back, the agent has a working credential again within
//! 10 s; a credential that expires during an outage is answered 503, never served expired.
//! The same for AWS, against a moto of the test's own: a Secrets Manager value and an STS
//! session.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::aws::{free_port, Moto};
use crate::support::{eventually, Agent, Stack};

/// A throw-away `bao server -dev` on `port` with root token `root`.
pub(crate) struct Bao {
    child: Child,
}

impl Bao {
    pub(crate) fn start(port: u16, token: &str) -> Bao {
        let bin = std::env::var("SIDEKEY_TEST_BAO_BIN").expect("tests/run.sh sets SIDEKEY_TEST_BAO_BIN");
        let child = Command::new(bin)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={token}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/v1/sys/health");
        eventually(Duration::from_secs(20), "the private OpenBao up", || {
            ureq::get(&url).call().ok().filter(|r| r.status() == 200).map(|_| ())
        });
        Bao { child }
    }

    pub(crate) fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Waits until health says degraded, and checks it is because of `name`, still served (200).
/// Answers the failing entry.
fn degraded_but_served(agent: &Agent, name: &str, within: Duration) -> serde_json::Value {
    let health = eventually(within, "health degraded", || {
        let r = agent.http("/v1/health");
        (r.json()["status"] == "degraded").then_some(r)
    });
    assert_eq!(health.status, 200, "still served: {}", health.body);
    let failing = health.json()["failing"][0].clone();
    assert_eq!(
        (failing["name"].as_str(), failing["served"].as_bool()),
        (Some(name), Some(true)),
        "{}",
        health.body
    );
    failing
}

#[test]
fn an_outage_keeps_valid_credentials_served_and_never_expired_ones() {
    let port = free_port();
    let token = format!("root-{}", crate::support::unique("t"));
    let shared = Stack::get();
    let private = Stack {
        vault_addr: format!("http://127.0.0.1:{port}"),
        vault_token: token.clone(),
        ..shared.clone()
    };
    let mount = "db-outage";
    let bao = Bao::start(port, &token);
    private.database_engine_at(mount, "9s", "1h");
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\naddress = \"http://127.0.0.1:{port}\"\nauth = {{ method = \"token\", token_file = \"@DIR@/private-token\" }}\n\n\
         [secrets.db]\nbackend = \"vault\"\nkind = \"vault.database\"\nmount = \"{mount}\"\nrole = \"app\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\"]\n"
    );
    let agent = Agent::start_with_files(&config, &[("private-token", &token)]);
    let first = agent.wait_served("db", Duration::from_secs(20));

    // Down: the same credential is served; health turns degraded once a renewal fails.
    bao.kill();
    let failing = degraded_but_served(&agent, "db", Duration::from_secs(12));
    assert!(failing["reason"].as_str().unwrap().contains("renew"), "{failing}");
    assert_eq!(
        agent.get("db")["version"],
        first["version"],
        "the valid credential is still served"
    );

    // Back before it expires (a dev server starts empty: the engine is set up again, the old
    // lease is unknown there): within 10 s a working credential is served again.
    let bao = Bao::start(port, &token);
    let back = Instant::now();
    private.database_engine_at(mount, "9s", "1h");
    let fresh = eventually(
        Duration::from_secs(10),
        "a credential from the returned OpenBao",
        || {
            let r = agent.http("/v1/secrets/db");
            (r.status == 200 && r.json()["version"] != first["version"]).then(|| r.json())
        },
    );
    println!(
        "outage: a new credential served {:?} after OpenBao returned",
        back.elapsed()
    );
    let (user, password) = (
        fresh["data"]["username"].as_str().unwrap(),
        fresh["data"]["password"].as_str().unwrap(),
    );
    shared.pg_login(user, password).expect("the new credential logs in");
    eventually(Duration::from_secs(10), "health ok again", || {
        (agent.http("/v1/health").json()["status"] == "ok").then_some(())
    });

    // Down for longer than the credential lives: never served expired.
    bao.kill();
    let expires = humantime::parse_rfc3339(fresh["lease"]["expires_at"].as_str().unwrap()).unwrap();
    std::thread::sleep(
        expires.duration_since(std::time::SystemTime::now()).unwrap_or_default() + Duration::from_millis(1500),
    ); // expires_at is whole seconds
    let r = agent.http("/v1/secrets/db");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(agent.http("/v1/health").status, 503);
}

#[test]
fn an_aws_outage_keeps_valid_credentials_served_and_never_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut moto = Moto::start(dir.path());
    let create = |moto: &Moto, value: &str| {
        moto.boto(
            &format!(
                "sm = boto3.client('secretsmanager', endpoint_url=ENDPOINT, region_name=REGION)\n\
                 sm.create_secret(Name='app/db', SecretString=json.dumps({{'password': {value:?}}}))"
            ),
            &[],
        )
    };
    create(&moto, &crate::support::unique("pw"));
    let config = format!(
        "[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = {:?}\n\n\
         [secrets.db]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = \"app/db\"\nrefresh = \"1s\"\n\n\
         [secrets.deploy]\nbackend = \"aws\"\nkind = \"aws.sts\"\nrole_arn = \"arn:aws:iam::123456789012:role/deploy\"\nduration = \"12s\"\n\n\
         [[access]]\nuid = \"self\"\nsecrets = [\"db\", \"deploy\"]\n",
        moto.endpoint
    );
    let agent = Agent::start(&config);
    let db = agent.wait_served("db", Duration::from_secs(20));
    let deploy = agent.wait_served("deploy", Duration::from_secs(20));

    // Down: both are still served; health names the secret whose refresh fails.
    moto.stop();
    degraded_but_served(&agent, "db", Duration::from_secs(10));
    assert_eq!(agent.get("db")["data"], db["data"]);

    // The STS session ends during the outage: answered 503, never served expired, while the
    // Secrets Manager value (it has no end) is still served.
    let current = agent.get("deploy");
    assert_eq!(
        current["version"], deploy["version"],
        "no new session while AWS is down"
    );
    let expires = humantime::parse_rfc3339(current["lease"]["expires_at"].as_str().unwrap()).unwrap();
    std::thread::sleep(
        expires.duration_since(std::time::SystemTime::now()).unwrap_or_default() + Duration::from_millis(1500),
    );
    let r = agent.http("/v1/secrets/deploy");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(agent.http("/v1/secrets/db").status, 200);

    // Back (moto starts empty: the secret is created again, with a new value): within 10 s
    // both are served fresh.
    let moto = Moto::start_on(dir.path(), moto.port());
    let back = Instant::now();
    let new_password = crate::support::unique("pw");
    create(&moto, &new_password);
    eventually(Duration::from_secs(10), "fresh values after AWS returned", || {
        let db = agent.http("/v1/secrets/db");
        let deploy = agent.http("/v1/secrets/deploy");
        (db.status == 200 && db.json()["data"]["password"] == new_password.as_str() && deploy.status == 200)
            .then_some(())
    });
    println!(
        "aws outage: fresh values served {:?} after moto returned",
        back.elapsed()
    );
    eventually(Duration::from_secs(10), "health ok again", || {
        (agent.http("/v1/health").json()["status"] == "ok").then_some(())
    });
}
