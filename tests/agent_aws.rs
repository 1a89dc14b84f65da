//! AWS as AWS users consume it: Secrets Manager secrets served and refreshed, STS sessions
//! through the container-credentials endpoint for any AWS SDK, the AWS Secrets Manager Agent's
//! `/secretsmanager/get` on a token-guarded loopback listener, and a broken rotation that
//! never replaces the last good value. Against the moto server.

use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::aws::{boto, create_secret, free_port, put_secret, python};
use crate::support::{bin, eventually, http, unique, Agent, Stack};

/// `[agent]` with a TCP listener on `port` (`tokens`: the TOML of `[agent] tokens`, if any)
/// and the moto-backed `aws` backend.
fn tcp_agent(port: u16, tokens: &str) -> String {
    format!(
        "[agent]\nsocket = \"@DIR@/agent.sock\"\naudit_log = \"@DIR@/audit.jsonl\"\ntcp = \"127.0.0.1:{port}\"\n{tokens}\n\n{}",
        aws_backend()
    )
}

fn aws_backend() -> String {
    format!(
        "[backends.aws]\ntype = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = {:?}\n",
        Stack::get().aws_endpoint
    )
}

/// A token and its argon2id hash, made with `sidekey-agent hash-token` as a user would.
fn token_pair() -> (String, String) {
    use std::io::Write;
    let token = unique("tok");
    let mut child = Command::new(bin("sidekey-agent"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(token.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    (token, String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// `GET path` on a TCP listener with extra headers.
fn tcp_get(port: u16, path: &str, headers: &[(&str, &str)]) -> http::Response {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    http::Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

#[test]
fn a_secrets_manager_secret_is_served_and_a_new_version_arrives_within_one_refresh() {
    let name = unique("prod/stripe");
    let first = unique("sk_live_v1");
    create_secret(&name, &format!(r#"{{"api_key": "{first}", "account": "acct_1"}}"#));
    let agent = Agent::start(&format!(
        "{}\n[secrets.stripe]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = {name:?}\nrefresh = \"500ms\"\n\n{}",
        aws_backend(),
        crate::support::GRANT_SELF
    ));
    let v1 = agent.wait_served("stripe", Duration::from_secs(20));
    assert_eq!(
        v1["data"]["api_key"],
        first.as_str(),
        "a JSON SecretString is served as a map"
    );
    assert_eq!(v1["data"]["account"], "acct_1");
    assert_eq!(v1["source"], "aws/aws.secretsmanager");
    let version = v1["version"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        agent.get("stripe")["version"],
        version,
        "no new version while VersionId is unchanged"
    );

    let socket = agent.socket.clone();
    let poll = std::thread::spawn(move || {
        http::get(&socket, &format!("/v1/secrets/stripe?wait={version}&timeout=20s")).unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let second = unique("sk_live_v2");
    put_secret(&name, &format!(r#"{{"api_key": "{second}", "account": "acct_1"}}"#));
    // From when the new version exists at moto: the put itself (a boto3 process) is not the
    // agent's time, and under load its start alone took over a second.
    let put_at = SystemTime::now();
    let answer = poll.join().unwrap();
    let lag = put_at.elapsed().unwrap();
    assert_eq!(answer.status, 200);
    let v2 = answer.json();
    assert_eq!(v2["data"]["api_key"], second.as_str());
    assert_eq!(v2["version"], version + 1);
    println!("new value served {lag:?} after PutSecretValue (refresh = 500ms)");
    assert!(
        lag < Duration::from_secs(2),
        "served within one refresh (plus the call): {lag:?}"
    );

    // A plain string is served as {value}.
    put_secret(&name, "not json at all");
    let v3 = eventually(Duration::from_secs(5), "plain string version", || {
        let v = agent.get("stripe");
        (v["version"] == version + 2).then_some(v)
    });
    assert_eq!(v3["data"]["value"], "not json at all");
    agent.assert_never_leaked(&[first, second]);
}

#[test]
fn a_binary_secret_is_served_as_base64() {
    let name = unique("prod/blob");
    boto(&format!(
        "sm = boto3.client('secretsmanager', endpoint_url=ENDPOINT, region_name=REGION)\n\
         sm.create_secret(Name={name:?}, SecretBinary=bytes(range(256)))"
    ));
    let agent = Agent::start(&format!(
        "{}\n[secrets.blob]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = {name:?}\n\n{}",
        aws_backend(),
        crate::support::GRANT_SELF
    ));
    let served = agent.wait_served("blob", Duration::from_secs(20));
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(served["data"]["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, (0..=255u8).collect::<Vec<u8>>());
}

#[test]
fn an_aws_sdk_reads_sts_credentials_from_the_agent_and_they_are_replaced_before_expiry() {
    let port = free_port();
    let (token, hash) = token_pair();
    let agent = Agent::start(&format!(
        r#"{head}
[secrets.deploy]
backend = "aws"
kind = "aws.sts"
role_arn = "arn:aws:iam::123456789012:role/deploy"
session_name = "sidekey-test"
duration = "12s"

[[access]]
token = "deploy"
secrets = ["deploy"]
"#,
        head = tcp_agent(port, &format!("tokens = {{ deploy = \"{hash}\" }}"))
    ));
    let url = format!("http://127.0.0.1:{port}/v1/aws-credentials/deploy");
    let first = eventually(Duration::from_secs(20), "credentials served", || {
        let r = tcp_get(port, "/v1/aws-credentials/deploy", &[("Authorization", &token)]);
        (r.status == 200).then(|| r.json())
    });
    for field in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(first[field].is_string(), "{field} in {first}");
    }

    // boto3 configured with nothing but the container-credentials variables.
    let script = "sts = boto3.client('sts', endpoint_url=ENDPOINT, region_name=REGION)\n\
                  print(sts.get_caller_identity()['Arn'])";
    let out = python(
        script,
        &[
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("AWS_SESSION_TOKEN", None),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", Some(&url)),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", Some(&token)),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let arn = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(arn, "arn:aws:sts::123456789012:assumed-role/deploy/sidekey-test");

    // Replaced at about two thirds of the 12 s session, well before it expires.
    let expires = humantime::parse_rfc3339(first["Expiration"].as_str().unwrap()).unwrap();
    let second = eventually(Duration::from_secs(15), "replacement credentials", || {
        let r = tcp_get(
            port,
            "/v1/aws-credentials/deploy",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        (r.status == 200 && r.json()["AccessKeyId"] != first["AccessKeyId"]).then(|| r.json())
    });
    let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
    println!("replaced with {left:?} of the old session left");
    assert!(
        left >= Duration::from_secs(2),
        "replaced before expiry with time to spare: {left:?}"
    );
    assert_ne!(second["SecretAccessKey"], first["SecretAccessKey"]);
    agent.assert_never_leaked(&[
        first["SecretAccessKey"].as_str().unwrap().to_owned(),
        first["Token"].as_str().unwrap().to_owned(),
        second["SecretAccessKey"].as_str().unwrap().to_owned(),
        token,
    ]);
}

#[test]
fn requests_without_the_right_token_or_forwarded_or_ungranted_are_refused_and_audited() {
    let port = free_port();
    let (token, hash) = token_pair();
    let name = unique("svc/db");
    create_secret(&name, r#"{"password": "p-0001-refusals"}"#);
    let agent = Agent::start(&format!(
        r#"{head}
[secrets.db]
backend = "aws"
kind = "aws.secretsmanager"
secret_id = "{name}"

[[access]]
token = "app"
secrets = ["db"]
"#,
        head = tcp_agent(port, &format!("tokens = {{ app = \"{hash}\" }}"))
    ));
    eventually(Duration::from_secs(20), "served", || {
        (tcp_get(port, "/v1/secrets/db", &[("Authorization", &format!("Bearer {token}"))]).status == 200).then_some(())
    });
    let bearer = format!("Bearer {token}");
    let refused = |what: &str, headers: &[(&str, &str)], status: u16| {
        let r = tcp_get(port, "/v1/secrets/db", headers);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(r.json()["error"].is_string());
    };
    refused("no token", &[], 401);
    refused("wrong token", &[("Authorization", "Bearer not-the-token")], 401);
    refused(
        "forwarded",
        &[("Authorization", &bearer), ("X-Forwarded-For", "10.0.0.1")],
        403,
    );
    // The Unix socket peer (this test's uid) has no rule: refused.
    assert_eq!(agent.http("/v1/secrets/db").status, 403);
    // The right token, bare as AWS SDKs send it, is accepted.
    assert_eq!(
        tcp_get(port, "/v1/secrets/db", &[("Authorization", &token)]).status,
        200
    );

    std::thread::sleep(Duration::from_millis(400));
    let refusals: Vec<_> = agent.audit().into_iter().filter(|e| e["event"] == "refusal").collect();
    assert!(refusals.len() >= 4, "{refusals:?}");
    assert!(refusals
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("token is required")));
    assert!(refusals
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("matches none")));
    assert!(refusals
        .iter()
        .any(|e| e["reason"].as_str().unwrap().contains("Forwarded")));
    assert!(refusals.iter().any(|e| e["peer"]["uid"].is_number()));
    assert!(refusals
        .iter()
        .all(|e| e.get("remote").is_none() || e["remote"].as_str().unwrap().starts_with("127.0.0.1:")));
    agent.assert_never_leaked(&["p-0001-refusals".into(), token]);
}

#[test]
fn the_aws_agents_documented_curl_examples_work_unchanged() {
    let port = free_port();
    let name = unique("prod/api");
    let value = unique("curl-value");
    create_secret(&name, &value);
    let agent = Agent::prepare(&format!(
        r#"{head}
[secrets.api]
backend = "aws"
kind = "aws.secretsmanager"
secret_id = "{name}"

[[access]]
token = "aws"
secrets = ["api"]
"#,
        head = tcp_agent(port, "")
    ));
    // As the AWS agent's install script does: the SSRF token in a file, AWS_TOKEN naming it.
    let token_file = agent.path("awssmatoken");
    std::fs::write(&token_file, unique("ssrf")).unwrap();
    let agent = agent.launch_with_env(&[("AWS_TOKEN", &format!("file://{}", token_file.display()))]);

    let curl = |query: &str| {
        let script = format!(
            "curl -s -H \"X-Aws-Parameters-Secrets-Token: $(<{file})\" 'http://localhost:{port}/secretsmanager/get?{query}'; echo",
            file = token_file.display()
        );
        let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let body = eventually(Duration::from_secs(20), "curl answer", || {
        let b = curl(&format!("secretId={name}"));
        b.contains("SecretString").then_some(b)
    });
    let answer: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(answer["Name"], name.as_str());
    assert_eq!(answer["SecretString"], value.as_str());
    assert_eq!(answer["VersionStages"][0], "AWSCURRENT");
    assert!(answer["ARN"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:us-east-1:"));
    assert!(answer["VersionId"].is_string() && answer["CreatedDate"].is_string());

    // refreshNow=true reads through to AWS at once.
    let newer = unique("curl-value-2");
    put_secret(&name, &newer);
    let refreshed: serde_json::Value =
        serde_json::from_str(curl(&format!("secretId={name}&refreshNow=true")).trim()).unwrap();
    assert_eq!(refreshed["SecretString"], newer.as_str());
    // versionStage=AWSPREVIOUS is read for this request only.
    let previous: serde_json::Value =
        serde_json::from_str(curl(&format!("secretId={name}&versionStage=AWSPREVIOUS")).trim()).unwrap();
    assert_eq!(previous["SecretString"], value.as_str());
    // Without the header: refused.
    let r = tcp_get(port, &format!("/secretsmanager/get?secretId={name}"), &[]);
    assert_eq!(r.status, 401);
    agent.assert_never_leaked(&[value, newer]);
}

#[test]
fn a_rotation_that_breaks_awscurrent_keeps_the_last_good_value_served() {
    let name = unique("prod/rotating");
    let good = unique("good-value");
    create_secret(&name, &format!(r#"{{"password": "{good}"}}"#));
    let agent = Agent::start(&format!(
        "{}\n[secrets.rotating]\nbackend = \"aws\"\nkind = \"aws.secretsmanager\"\nsecret_id = {name:?}\nrefresh = \"500ms\"\nrotate_every = \"3s\"\n\n{}",
        aws_backend(),
        crate::support::GRANT_SELF
    ));
    let served = agent.wait_served("rotating", Duration::from_secs(20));
    assert_eq!(served["data"]["password"], good.as_str());
    // moto's RotateSecret with no Lambda leaves AWSCURRENT without a value.
    let health = eventually(Duration::from_secs(15), "health degraded after the rotation", || {
        let h = agent.http("/v1/health");
        h.body.contains("rotating").then_some(h)
    });
    assert_eq!(health.status, 200, "still served, so 200: {}", health.body);
    let body = health.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["failing"][0]["served"], true);
    let again = agent.get("rotating");
    assert_eq!(again["data"]["password"], good.as_str(), "never an empty secret");
    assert_eq!(again["version"], served["version"]);
    let current = boto(&format!(
        "sm = boto3.client('secretsmanager', endpoint_url=ENDPOINT, region_name=REGION)\n\
         try:\n    sm.get_secret_value(SecretId={name:?}, VersionStage='AWSCURRENT'); print('readable')\n\
         except Exception as e:\n    print('unreadable')"
    ));
    assert_eq!(current, "unreadable", "moto really left AWSCURRENT broken");
    std::thread::sleep(Duration::from_millis(400));
    let audit = agent.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "rotate" && e["secret"] == "rotating"),
        "{audit:?}"
    );
    assert!(audit
        .iter()
        .any(|e| e["event"] == "failure" && e["secret"] == "rotating"));
    let metrics = agent.http("/metrics").body;
    assert!(
        metrics.contains("sidekey_rotations_total{secret=\"rotating\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidekey_failures_total{secret=\"rotating\""),
        "{metrics}"
    );
    agent.assert_never_leaked(&[good]);
}
