//! Liveness and revocation at the issuers (issue 5, items 4 and 5): `sidekey-scan --verify`
//! pairs a leaked AWS access key id with the secret access key of the same file and asks STS
//! GetCallerIdentity (true for a working pair, false for a made-up one, nothing asked without
//! --verify); `--revoke` deactivates the working key through IAM with the operator's
//! credentials and records an incident naming the user, never the secret; `--revoke=dry-run`
//! changes nothing. A leaked Vault/OpenBao token is looked up with itself and revoked with
//! itself.
//!
//! The AWS half runs against a moto of its own, with IAM authentication switched on once the
//! users exist: the stack's shared moto accepts any credentials (its default), which would make
//! a made-up key look live — and switching authentication on there would break the other tests,
//! whose fake credentials are no IAM user's. Every key is created at run time; the repository
//! holds no key-shaped literal.

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde_json::{json, Value};

use crate::support::aws::Moto;
use crate::support::scan_report as scan;
use crate::support::Stack;

/// An access key pair.
struct Key {
    id: String,
    secret: String,
}

impl Key {
    /// The key as the caller's credentials, for [`Moto::boto`].
    fn env(&self) -> [(&'static str, Option<&str>); 2] {
        [
            ("AWS_ACCESS_KEY_ID", Some(self.id.as_str())),
            ("AWS_SECRET_ACCESS_KEY", Some(self.secret.as_str())),
        ]
    }

    fn from_json(v: &Value) -> Key {
        Key {
            id: v["AccessKeyId"].as_str().unwrap().to_owned(),
            secret: v["SecretAccessKey"].as_str().unwrap().to_owned(),
        }
    }

    /// A format-valid pair that no one ever created.
    fn made_up() -> Key {
        let mut rng = rand::thread_rng();
        let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let tail: String = (0..16).map(|_| upper[rng.gen_range(0..upper.len())] as char).collect();
        Key {
            id: format!("AKIA{tail}"),
            secret: Alphanumeric.sample_string(&mut rng, 40),
        }
    }

    fn env_file(&self) -> String {
        format!(
            "# deploy settings\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\nAWS_DEFAULT_REGION=us-east-1\n",
            self.id, self.secret
        )
    }
}

/// The findings of `path` as (ruleId, verified, revoked), sorted.
fn states(report: &Value, path: &str) -> Vec<(String, String, bool)> {
    let mut out: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path)
        .map(|f| {
            (
                f["ruleId"].as_str().unwrap().to_owned(),
                f["verified"].as_str().unwrap().to_owned(),
                f["revoked"].as_bool().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pair(verified: &str, revoked: bool) -> Vec<(String, String, bool)> {
    vec![
        ("aws-access-key-id".to_owned(), verified.to_owned(), revoked),
        ("aws-secret-access-key".to_owned(), verified.to_owned(), revoked),
    ]
}

#[test]
fn a_leaked_aws_key_pair_is_verified_at_sts_and_deactivated_through_iam() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(dir.path());
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey", "iam:ListAccessKeys"], "Resource": "*"}]});
    let created: Value = serde_json::from_str(&moto.boto(
        &format!(
            "iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name=REGION)\n\
             iam.create_user(UserName='leaky')\n\
             leak = iam.create_access_key(UserName='leaky')['AccessKey']\n\
             iam.create_user(UserName='secops')\n\
             iam.put_user_policy(UserName='secops', PolicyName='respond', PolicyDocument={:?})\n\
             ops = iam.create_access_key(UserName='secops')['AccessKey']\n\
             print(json.dumps({{'leak': leak, 'ops': ops}}, default=str))",
            policy.to_string()
        ),
        &[],
    ))
    .unwrap();
    let leak = Key::from_json(&created["leak"]);
    let ops = Key::from_json(&created["ops"]);
    moto.require_auth();
    let made_up = Key::made_up();

    let repo = tempfile::tempdir().unwrap();
    for (path, key) in [("deploy/.env", &leak), ("old/.env", &made_up)] {
        std::fs::create_dir_all(repo.path().join(path).parent().unwrap()).unwrap();
        std::fs::write(repo.path().join(path), key.env_file()).unwrap();
    }
    // The operator's credentials come from the standard chain (here: the environment).
    let ops_env = [
        ("AWS_ACCESS_KEY_ID", ops.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", ops.secret.as_str()),
    ];
    let key_status = || {
        moto.boto(
            "iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name=REGION)\n\
             print(iam.list_access_keys(UserName='leaky')['AccessKeyMetadata'][0]['Status'])",
            &ops.env(),
        )
    };
    let last_used = || {
        moto.boto(
            &format!(
                "iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name=REGION)\n\
                 print(iam.get_access_key_last_used(AccessKeyId={:?})['AccessKeyLastUsed'].get('LastUsedDate'))",
                leak.id
            ),
            &ops.env(),
        )
    };
    assert_eq!(last_used(), "None");

    // (a) Without --verify nothing is asked — not even of an endpoint the SDK's own
    // environment names — and nothing is known.
    let offline = [("AWS_ENDPOINT_URL", moto.endpoint.as_str()), ops_env[0], ops_env[1]];
    let (code, report, stderr) = scan(repo.path(), &["."], &offline);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(states(&report, "deploy/.env"), pair("unknown", false), "{report:#}");
    assert_eq!(states(&report, "old/.env"), pair("unknown", false), "{report:#}");
    assert_eq!(last_used(), "None", "nothing was signed with the leaked key");

    // (b) --verify: the pair works at STS; the made-up one is refused.
    let endpoint = moto.endpoint.as_str();
    let verify = [".", "--verify", "--aws-endpoint-url", endpoint];
    let (code, report, stderr) = scan(repo.path(), &verify, &ops_env);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        states(&report, "deploy/.env"),
        pair("true", false),
        "{report:#}\n{stderr}"
    );
    assert_eq!(
        states(&report, "old/.env"),
        pair("false", false),
        "{report:#}\n{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_ne!(last_used(), "None", "STS saw the leaked key");
    for secret in [&leak.secret, &made_up.secret] {
        assert!(!report.to_string().contains(secret.as_str()), "redacted");
    }

    // (c) --revoke=dry-run only says what it would do.
    let log = repo.path().join("incidents.jsonl");
    let log_arg = log.to_str().unwrap();
    let mut dry = verify.to_vec();
    dry.extend(["--revoke=dry-run", "--incident-log", log_arg]);
    let (code, report, stderr) = scan(repo.path(), &dry, &ops_env);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(states(&report, "deploy/.env"), pair("true", false), "{report:#}");
    assert_eq!(key_status(), "Active");
    let incidents = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = incidents.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines.len(),
        2,
        "one per finding of the live pair, none for the made-up one: {incidents}"
    );
    for i in &lines {
        assert_eq!(
            (i["action"].as_str(), i["revoked"].as_bool()),
            (Some("dry_run"), Some(false)),
            "{i}"
        );
        assert!(i["detail"].as_str().unwrap().contains("leaky"), "{i}");
    }
    std::fs::remove_file(&log).unwrap();

    // --revoke: the key is deactivated in IAM, with the operator's credentials.
    let mut revoke = verify.to_vec();
    revoke.extend(["--revoke", "--incident-log", log_arg]);
    let (code, report, stderr) = scan(repo.path(), &revoke, &ops_env);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        states(&report, "deploy/.env"),
        pair("true", true),
        "{report:#}\n{stderr}"
    );
    assert_eq!(states(&report, "old/.env"), pair("false", false), "{report:#}");
    // moto's STS still accepts an Inactive key (it does not check the status), so the proof
    // is IAM's record of the key, not a failing GetCallerIdentity.
    assert_eq!(key_status(), "Inactive");
    let incidents = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = incidents.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{incidents}");
    let mut rules: Vec<&str> = lines.iter().map(|i| i["rule_id"].as_str().unwrap()).collect();
    rules.sort();
    assert_eq!(rules, ["aws-access-key-id", "aws-secret-access-key"]);
    for i in &lines {
        assert_eq!(i["action"], "deactivated_access_key", "{i}");
        assert_eq!(i["revoked"], true, "{i}");
        assert_eq!(i["principal"], "leaky", "{i}");
        assert_eq!(i["path"], "deploy/.env", "{i}");
        assert!(i["detail"].as_str().unwrap().contains("IAM user leaky"), "{i}");
    }
    for value in [&leak.id, &leak.secret, &made_up.id, &made_up.secret, &ops.secret] {
        assert!(
            !incidents.contains(value.as_str()),
            "no key in the incident log: {incidents}"
        );
        assert!(!stderr.contains(value.as_str()), "{stderr}");
    }
}

#[test]
fn a_leaked_vault_token_is_looked_up_and_revoked_with_itself() {
    let stack = Stack::get();
    let token = stack.vault_write(
        "auth/token/create",
        json!({"policies": ["default"], "ttl": "1h", "display_name": "ci-deploy"}),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let lookup = |t: &str| match ureq::get(&format!("{}/v1/auth/token/lookup-self", stack.vault_addr))
        .set("X-Vault-Token", t)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(lookup(&token), 200);
    // A made-up token of the same shape.
    let (prefix, rest) = token.split_once('.').unwrap();
    let made_up = format!(
        "{prefix}.{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), rest.len())
    );

    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("ci")).unwrap();
    std::fs::write(repo.path().join("ci/vault.env"), format!("VAULT_TOKEN={token}\n")).unwrap();
    std::fs::write(repo.path().join("ci/old.env"), format!("VAULT_TOKEN={made_up}\n")).unwrap();
    let addr = stack.vault_addr.as_str();
    let token_state = |report: &Value, path: &str| {
        let f = crate::support::one_finding(report, path);
        (
            f["verified"].as_str().unwrap().to_owned(),
            f["revoked"].as_bool().unwrap(),
        )
    };

    // Without --vault-addr nothing is asked: unknown, with a warning.
    let (code, report, stderr) = scan(repo.path(), &[".", "--verify"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(token_state(&report, "ci/vault.env"), ("unknown".to_owned(), false));
    assert!(stderr.contains("no --vault-addr"), "{stderr}");

    let verify = [".", "--verify", "--vault-addr", addr];
    let (_, report, stderr) = scan(repo.path(), &verify, &[]);
    assert_eq!(
        token_state(&report, "ci/vault.env"),
        ("true".to_owned(), false),
        "{stderr}"
    );
    assert_eq!(
        token_state(&report, "ci/old.env"),
        ("false".to_owned(), false),
        "{stderr}"
    );

    let log = repo.path().join("incidents.jsonl");
    let mut revoke = verify.to_vec();
    revoke.extend(["--revoke", "--incident-log", log.to_str().unwrap()]);
    let (_, report, stderr) = scan(repo.path(), &revoke, &[]);
    assert_eq!(
        token_state(&report, "ci/vault.env"),
        ("true".to_owned(), true),
        "{stderr}"
    );
    assert_eq!(
        token_state(&report, "ci/old.env"),
        ("false".to_owned(), false),
        "{stderr}"
    );
    assert_eq!(lookup(&token), 403, "the leaked token no longer works");
    let incidents = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = incidents.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{incidents}");
    assert_eq!(lines[0]["action"], "revoked_token");
    assert_eq!(lines[0]["path"], "ci/vault.env");
    assert!(
        lines[0]["principal"].as_str().unwrap().contains("ci-deploy"),
        "{incidents}"
    );
    assert!(!incidents.contains(&token) && !incidents.contains(rest), "{incidents}");

    // Once revoked, --verify says so.
    let (_, report, _) = scan(repo.path(), &verify, &[]);
    assert_eq!(token_state(&report, "ci/vault.env"), ("false".to_owned(), false));
}
