//! The Vault/OpenBao login methods and the backend's TLS and routing (issue 14), against real
//! OpenBao servers: `jwt` (the token file read again at every login), `kubernetes`, `cert`
//! over TLS with `tls_server_name` and a `namespace`, AppRole with a response-wrapped secret
//! id, and `VAULT_ADDR`/`VAULT_CACERT`/`VAULT_NAMESPACE` (and `BAO_*`) when the config leaves
//! them out. Every key pair, certificate and JWT is made by the test.
//!
//! One stand-in, and only one: this machine has no Kubernetes, so the kubernetes test serves
//! the TokenReview API itself (over TLS, with a CA the test made, given to OpenBao as
//! `kubernetes_ca_cert`). OpenBao's real kubernetes auth method calls it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::tls::{Ca, JwtIssuer, TlsBao};
use crate::support::{bin, eventually, unique, Agent, Stack, GRANT_SELF};

/// A KV v2 secret `app/api` on the shared OpenBao and a policy reading it. Answers (mount,
/// policy, value).
fn kv_secret(stack: &Stack) -> (String, String, String) {
    let kv = stack.kv2_engine();
    let value = unique("value-of-api");
    stack.vault_write(&format!("{kv}/data/app/api"), json!({ "data": { "key": value } }));
    let policy = unique("policy");
    stack.vault_write(
        &format!("sys/policies/acl/{policy}"),
        json!({ "policy": format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}") }),
    );
    (kv, policy, value)
}

/// `[secrets.api]`, the KV secret re-read every 250 ms (so every lapse of the agent's token
/// would show as a failed read), granted to the agent's own uid.
fn api_secret(kv: &str) -> String {
    format!("[secrets.api]\nbackend = \"vault\"\nkind = \"vault.kv2\"\nmount = \"{kv}\"\npath = \"app/api\"\nrefresh = \"250ms\"\n\n{GRANT_SELF}")
}

/// Replaces `path` the way the kubelet and CI runners do: a new file renamed over the old.
fn replace_file(path: &Path, content: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Successful logins so far (the login loop's line; "not logged in to Vault" in a failed
/// read's reason does not count).
fn logins(agent: &Agent) -> usize {
    agent.stderr().matches(" logged in to Vault backend=").count()
}

fn failed_logins(agent: &Agent) -> usize {
    agent.stderr().matches("Vault login failed").count()
}

fn failures(agent: &Agent) -> usize {
    agent.audit().iter().filter(|e| e["event"] == "failure").count()
}

const ISSUER: &str = "https://oidc.sidekey.test";
const SUBJECT: &str = "repo:sidekey/app:ref:refs/heads/main";
const AUDIENCE: &str = "sidekey-test";

/// A jwt auth mount on the shared OpenBao trusting `issuer`'s key, with role `app` whose
/// tokens live `ttl` and at most `max_ttl`, and no leeway on `exp` (so an expired JWT is
/// refused at once). Answers the mount.
fn jwt_auth(stack: &Stack, issuer: &JwtIssuer, policy: &str, ttl: &str, max_ttl: &str) -> String {
    let mount = unique("jwt");
    stack.vault_write(&format!("sys/auth/{mount}"), json!({ "type": "jwt" }));
    stack.vault_write(
        &format!("auth/{mount}/config"),
        json!({ "jwt_validation_pubkeys": [issuer.public_pem()], "bound_issuer": ISSUER }),
    );
    stack.vault_write(
        &format!("auth/{mount}/role/app"),
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_subject": SUBJECT,
            "bound_audiences": [AUDIENCE], "token_policies": [policy],
            "token_ttl": ttl, "token_max_ttl": max_ttl,
            "expiration_leeway": -1, "clock_skew_leeway": -1, "not_before_leeway": -1,
        }),
    );
    mount
}

fn ci_jwt(issuer: &JwtIssuer, life: Duration) -> String {
    issuer.sign(json!({ "iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE }), life)
}

fn jwt_backend(mount: &str) -> String {
    format!("[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = {{ method = \"jwt\", role = \"app\", mount = \"{mount}\", token_file = \"@DIR@/jwt\" }}\n")
}

#[test]
fn jwt_login_reads_the_token_file_again_at_every_login() {
    let stack = Stack::get();
    let (kv, policy, value) = kv_secret(stack);
    let issuer = JwtIssuer::new();
    // Vault tokens of 3 s, renewable to 5 s: a fresh login about every 4 s.
    let mount = jwt_auth(stack, &issuer, &policy, "3s", "5s");
    // The first JWT expires 6 to 7 s from now (whole seconds), like a short-lived CI token.
    let first = ci_jwt(&issuer, Duration::from_secs(7));
    let first_expired = Instant::now() + Duration::from_secs(7);
    let agent = Agent::start_with_files(
        &format!("{}\n{}", jwt_backend(&mount), api_secret(&kv)),
        &[("jwt", &first)],
    );
    assert_eq!(agent.wait_served("api", Duration::from_secs(15))["data"]["key"], value);

    // The issuer hands out a new JWT while the agent runs; the old one then expires.
    std::thread::sleep(Duration::from_secs(2));
    let second = ci_jwt(&issuer, Duration::from_secs(300));
    replace_file(&agent.path("jwt"), &format!("{second}\n"));

    let started = Instant::now();
    let mut logins_at_expiry = None;
    let mut reads = 0;
    while started.elapsed() < Duration::from_secs(16) {
        let r = agent.http("/v1/secrets/api");
        assert_eq!(r.status, 200, "at {:?}: {}", started.elapsed(), r.body);
        reads += 1;
        if logins_at_expiry.is_none() && Instant::now() > first_expired + Duration::from_millis(500) {
            logins_at_expiry = Some(logins(&agent));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (at_expiry, total) = (logins_at_expiry.unwrap(), logins(&agent));
    assert!(
        total >= at_expiry + 2,
        "fresh logins after the first JWT expired ({at_expiry} before, {total} in all):\n{}",
        agent.stderr()
    );
    assert_eq!(failed_logins(&agent), 0, "no login failed:\n{}", agent.stderr());
    assert_eq!(
        failures(&agent),
        0,
        "no read of the secret failed across {total} logins"
    );
    assert!(reads > 60);

    // Had the agent kept the JWT it read at start, its logins would now be refused.
    let with_first = stack.vault_call(
        "POST",
        &format!("auth/{mount}/login"),
        Some(json!({ "role": "app", "jwt": first })),
    );
    let refused = with_first.expect_err("the first JWT has expired");
    assert!(refused.contains("expired"), "{refused}");
    agent.assert_never_leaked(&[first, second]);
}

#[test]
fn a_jwt_file_that_disappears_or_turns_to_garbage_fails_logins_with_backoff_while_serving_goes_on() {
    let stack = Stack::get();
    let (kv, policy, value) = kv_secret(stack);
    let issuer = JwtIssuer::new();
    let mount = jwt_auth(stack, &issuer, &policy, "2s", "3s");
    let jwt = ci_jwt(&issuer, Duration::from_secs(300));
    let agent = Agent::start_with_files(
        &format!("{}\n{}", jwt_backend(&mount), api_secret(&kv)),
        &[("jwt", &jwt)],
    );
    agent.wait_served("api", Duration::from_secs(15));
    let file = agent.path("jwt").display().to_string();

    std::fs::remove_file(agent.path("jwt")).unwrap();
    eventually(
        Duration::from_secs(10),
        "a failed login naming the missing file",
        || {
            agent
                .stderr()
                .contains(&format!("auth.token_file {file}: cannot read"))
                .then_some(())
        },
    );
    assert_eq!(agent.get("api")["data"]["key"], value, "the value is still served");

    std::fs::write(agent.path("jwt"), "this is not a JWT\n").unwrap();
    eventually(Duration::from_secs(15), "Vault's refusal naming the file", || {
        agent
            .stderr()
            .contains(&format!("jwt login as role \"app\" with the token of {file}"))
            .then_some(())
    });
    // Retried with backoff (1 s doubling to 8 s), not in a loop.
    let before = failed_logins(&agent);
    std::thread::sleep(Duration::from_secs(9));
    let during = failed_logins(&agent) - before;
    assert!(
        (1..=6).contains(&during),
        "{during} failed logins in 9 s:\n{}",
        agent.stderr()
    );
    assert_eq!(agent.get("api")["data"]["key"], value, "still served");

    replace_file(&agent.path("jwt"), &ci_jwt(&issuer, Duration::from_secs(300)));
    let logged_in = logins(&agent);
    // The next login is at most 8 s away, and so is the next read of the failing secret.
    eventually(Duration::from_secs(25), "a login with the new file", || {
        (logins(&agent) > logged_in && agent.http("/v1/health").status == 200).then_some(())
    });
    agent.assert_never_leaked(&[jwt]);
}

/// The TokenReview API of a Kubernetes API server, served by the test over TLS (the one
/// stand-in of the suite: there is no Kubernetes here). Answers `authenticated` for the tokens
/// in `accepted`, as service account `default/app`, and records every token it is asked about.
struct TokenReview {
    port: u16,
    accepted: Arc<Mutex<Vec<String>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

const SA_UID: &str = "5c1f0e4e-0000-4000-8000-51de4e7a9b01";

impl TokenReview {
    fn start(ca: &Ca) -> TokenReview {
        use rustls::pki_types::pem::PemObject;
        let server = ca.server(&["127.0.0.1"]);
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(server.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let review = TokenReview {
            port: listener.local_addr().unwrap().port(),
            accepted: Arc::default(),
            asked: Arc::default(),
        };
        let (accepted, asked) = (review.accepted.clone(), review.asked.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, accepted, asked) = (config.clone(), accepted.clone(), asked.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let _ = serve_one(rustls::StreamOwned::new(conn, tcp), &accepted, &asked);
                });
            }
        });
        review
    }
}

/// Reads one HTTP request (`POST .../tokenreviews`) and answers it, closing the connection.
fn serve_one(
    stream: rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    accepted: &Mutex<Vec<String>>,
    asked: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let token = review["spec"]["token"].as_str().unwrap_or_default().to_owned();
    let authenticated = accepted.lock().unwrap().contains(&token);
    asked.lock().unwrap().push(token);
    let status = if authenticated {
        json!({
            "authenticated": true,
            "user": {
                "username": "system:serviceaccount:default:app",
                "uid": SA_UID,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
            },
            "audiences": review["spec"]["audiences"],
        })
    } else {
        json!({ "authenticated": false, "error": "token not valid (stand-in)" })
    };
    let answer =
        json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status }).to_string();
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()?;
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(())
}

/// A projected-style service account token for `default/app` (signed by a key the test made;
/// OpenBao's kubernetes method does not check the signature itself, the TokenReview does).
fn service_account_token(issuer: &JwtIssuer) -> String {
    issuer.sign(
        json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:default:app",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/service-account.name": "app",
            "kubernetes.io/serviceaccount/service-account.uid": SA_UID,
            "jti": unique("jti"),
        }),
        Duration::from_secs(600),
    )
}

#[test]
fn kubernetes_login_goes_through_token_review_and_re_login_reads_the_rotated_token() {
    let stack = Stack::get();
    let (kv, policy, value) = kv_secret(stack);
    let ca = Ca::new("sidekey test kubernetes CA");
    let review = TokenReview::start(&ca);
    let mount = unique("kubernetes");
    stack.vault_write(&format!("sys/auth/{mount}"), json!({ "type": "kubernetes" }));
    stack.vault_write(
        &format!("auth/{mount}/config"),
        json!({
            "kubernetes_host": format!("https://127.0.0.1:{}", review.port),
            "kubernetes_ca_cert": ca.pem(),
            "disable_local_ca_jwt": true,
        }),
    );
    stack.vault_write(
        &format!("auth/{mount}/role/app"),
        json!({
            "bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"],
            "token_policies": [policy], "token_ttl": "3s", "token_max_ttl": "5s",
        }),
    );
    let issuer = JwtIssuer::new();
    let first = service_account_token(&issuer);
    review.accepted.lock().unwrap().push(first.clone());
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = {{ method = \"kubernetes\", role = \"app\", mount = \"{mount}\", token_file = \"@DIR@/sa-token\" }}\n\n{}",
        api_secret(&kv)
    );
    let agent = Agent::start_with_files(&config, &[("sa-token", &first)]);
    assert_eq!(agent.wait_served("api", Duration::from_secs(15))["data"]["key"], value);
    assert!(
        review.asked.lock().unwrap().contains(&first),
        "OpenBao asked the TokenReview API"
    );

    // The kubelet rotates the projected token; the cluster no longer accepts the old one.
    let second = service_account_token(&issuer);
    *review.accepted.lock().unwrap() = vec![second.clone()];
    replace_file(&agent.path("sa-token"), &second);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        assert_eq!(agent.http("/v1/secrets/api").status, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        review.asked.lock().unwrap().contains(&second),
        "a re-login sent the rotated token:\n{}",
        agent.stderr()
    );
    assert_eq!(failed_logins(&agent), 0, "{}", agent.stderr());
    assert_eq!(failures(&agent), 0);
    assert!(logins(&agent) >= 3, "{}", agent.stderr());
    agent.assert_never_leaked(&[first, second]);
}

/// A TLS OpenBao whose certificate names `bao.test.internal` and `localhost` (not
/// 127.0.0.1), with namespace `team` holding a cert auth mount (role `agent`, trusting the
/// test's client CA) and a KV secret. Answers (bao, client CA, KV mount, value).
fn tls_bao_with_cert_auth(dir: &Path) -> (TlsBao, Ca, String, String) {
    let server_ca = Ca::new("sidekey test server CA");
    let bao = TlsBao::start(dir, &server_ca.server(&["bao.test.internal", "localhost"]));
    std::fs::write(dir.join("vault-ca.pem"), server_ca.pem()).unwrap();
    let client_ca = Ca::new("sidekey test client CA");
    let ns = Some("team");
    bao.write("sys/namespaces/team", json!({}), None);
    let kv = unique("kv");
    bao.write(
        &format!("sys/mounts/{kv}"),
        json!({ "type": "kv", "options": { "version": "2" } }),
        ns,
    );
    let value = unique("value-in-team");
    bao.write(&format!("{kv}/data/app/api"), json!({ "data": { "key": value } }), ns);
    bao.write(
        "sys/policies/acl/read-api",
        json!({ "policy": format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}") }),
        ns,
    );
    bao.write("sys/auth/cert", json!({ "type": "cert" }), ns);
    bao.write(
        "auth/cert/certs/agent",
        json!({ "certificate": client_ca.pem(), "token_policies": ["read-api"], "token_ttl": "3s", "token_max_ttl": "5s" }),
        ns,
    );
    (bao, client_ca, kv, value)
}

/// Writes a client certificate and key for the agent into its directory.
fn client_files(agent: &Agent, client_ca: &Ca) {
    let client = client_ca.client("sidekey-agent");
    std::fs::write(agent.path("client.pem"), client.cert).unwrap();
    std::fs::write(agent.path("client.key"), client.key).unwrap();
}

#[test]
fn cert_login_over_tls_with_a_server_name_and_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let (bao, client_ca, kv, value) = tls_bao_with_cert_auth(dir.path());
    let ca = dir.path().join("vault-ca.pem").display().to_string();
    let backend = |extra: &str| {
        format!(
            "[backends.vault]\ntype = \"vault\"\naddress = \"https://127.0.0.1:{}\"\nca_cert = \"{ca}\"\n\
             client_cert = \"@DIR@/client.pem\"\nclient_key = \"@DIR@/client.key\"\n{extra}\
             auth = {{ method = \"cert\", name = \"agent\" }}\n\n{}",
            bao.https_port,
            api_secret(&kv)
        )
    };
    let start = |config: &str| {
        let agent = Agent::prepare(config);
        client_files(&agent, &client_ca);
        agent.launch()
    };

    let agent = start(&backend(
        "tls_server_name = \"bao.test.internal\"\nnamespace = \"team\"\n",
    ));
    assert_eq!(agent.wait_served("api", Duration::from_secs(15))["data"]["key"], value);
    // Tokens of 3 s (5 s at most): the certificate logs in again and again.
    std::thread::sleep(Duration::from_secs(8));
    assert!(logins(&agent) >= 2, "{}", agent.stderr());
    assert_eq!((failed_logins(&agent), failures(&agent)), (0, 0), "{}", agent.stderr());
    assert_eq!(agent.http("/v1/health").status, 200);

    // Without tls_server_name the certificate (not issued for 127.0.0.1) is refused; without
    // the namespace the cert mount is not found: each setting is what made it work.
    let no_name = start(&backend("namespace = \"team\"\n"));
    eventually(Duration::from_secs(15), "a refused certificate", || {
        let stderr = no_name.stderr();
        (stderr.contains("Vault login failed") && stderr.to_lowercase().contains("certificate")).then_some(())
    });
    let no_namespace = start(&backend("tls_server_name = \"bao.test.internal\"\n"));
    eventually(Duration::from_secs(15), "a login refused outside the namespace", || {
        let stderr = no_namespace.stderr();
        (stderr.contains("Vault login failed") && stderr.contains("auth/cert/login")).then_some(())
    });
    assert_eq!(no_name.http("/v1/secrets/api").status, 503);
    assert_eq!(no_namespace.http("/v1/secrets/api").status, 503);
}

#[test]
fn address_ca_and_namespace_come_from_vault_or_bao_variables_when_the_config_leaves_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let (bao, client_ca, kv, value) = tls_bao_with_cert_auth(dir.path());
    let ca = dir.path().join("vault-ca.pem").display().to_string();
    let addr = format!("https://localhost:{}", bao.https_port);
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\nclient_cert = \"@DIR@/client.pem\"\nclient_key = \"@DIR@/client.key\"\n\
         auth = {{ method = \"cert\", name = \"agent\" }}\n\n{}",
        api_secret(&kv)
    );
    for prefix in ["VAULT", "BAO"] {
        let env = [
            (format!("{prefix}_ADDR"), addr.clone()),
            (format!("{prefix}_CACERT"), ca.clone()),
            (format!("{prefix}_NAMESPACE"), "team".to_owned()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let agent = Agent::prepare(&config);
        client_files(&agent, &client_ca);

        // check says where each setting came from.
        let out = std::process::Command::new(bin("sidekey-agent"))
            .args(["check", "--config", "agent.toml"])
            .current_dir(agent.dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in [
            format!("backends.vault.address from {prefix}_ADDR: {addr}"),
            format!("backends.vault.ca_cert from {prefix}_CACERT: {ca}"),
            format!("backends.vault.namespace from {prefix}_NAMESPACE: team"),
        ] {
            assert!(stdout.contains(&line), "{line:?} in:\n{stdout}");
        }

        let agent = agent.launch_with_env(&env);
        assert_eq!(agent.wait_served("api", Duration::from_secs(15))["data"]["key"], value);
        let stderr = agent.stderr();
        assert!(
            stderr.contains("Vault setting from the environment") && stderr.contains(&format!("{prefix}_ADDR")),
            "{stderr}"
        );
    }
    // Without the variables, check names the missing address.
    let agent = Agent::prepare(&config);
    let out = std::process::Command::new(bin("sidekey-agent"))
        .args(["check", "--config", "agent.toml"])
        .current_dir(agent.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("backends.vault.address: missing") && stderr.contains("VAULT_ADDR"),
        "{stderr}"
    );
}

/// A response-wrapped secret id of `auth/MOUNT/role/agent` (what a deploy pipeline hands
/// over): the wrapping token.
fn wrapped_secret_id(stack: &Stack, mount: &str) -> String {
    let answer: Value = ureq::post(&format!("{}/v1/auth/{mount}/role/agent/secret-id", stack.vault_addr))
        .set("X-Vault-Token", &stack.vault_token)
        .set("X-Vault-Wrap-TTL", "120s")
        .send_json(json!({}))
        .unwrap()
        .into_json()
        .unwrap();
    answer["wrap_info"]["token"].as_str().unwrap().to_owned()
}

#[test]
fn a_wrapped_secret_id_is_unwrapped_once_and_kept_and_a_used_one_is_a_loud_error() {
    let stack = Stack::get();
    let (kv, policy, value) = kv_secret(stack);
    let (mount, role_id, _) = stack.approle("path \"nothing/*\" { capabilities = [\"read\"] }");
    stack.vault_write(
        &format!("auth/{mount}/role/agent"),
        json!({ "token_policies": [policy], "token_ttl": "3s", "token_max_ttl": "5s", "secret_id_num_uses": 0 }),
    );
    let wrapping = wrapped_secret_id(stack, &mount);
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = {{ method = \"approle\", mount = \"{mount}\", role_id_file = \"@DIR@/role-id\", secret_id_file = \"@DIR@/secret-id\", secret_id_wrapped = true }}\n\n{}",
        api_secret(&kv)
    );
    let first = Agent::start_with_files(&config, &[("role-id", &role_id), ("secret-id", &wrapping)]);
    assert_eq!(first.wait_served("api", Duration::from_secs(15))["data"]["key"], value);
    // Logins at max TTL go on with the secret id kept in memory (the file's token is used up).
    std::thread::sleep(Duration::from_secs(10));
    assert!(logins(&first) >= 3, "{}", first.stderr());
    assert_eq!(first.stderr().matches("unwrapped the AppRole secret id").count(), 1);
    assert_eq!((failed_logins(&first), failures(&first)), (0, 0), "{}", first.stderr());

    // A second agent handed the same, already used, wrapping token: a loud error naming the
    // file, retried with backoff; it stays up, degraded, and says why.
    let second = Agent::start_with_files(&config, &[("role-id", &role_id), ("secret-id", &wrapping)]);
    let file = second.path("secret-id").display().to_string();
    let health = eventually(Duration::from_secs(15), "health names the used wrapping token", || {
        let h = second.http("/v1/health");
        (h.status == 503 && h.body.contains("no longer accepts")).then_some(h)
    });
    assert!(health.body.contains(&file), "{}", health.body);
    let stderr = second.stderr();
    assert!(
        stderr.contains("ERROR") && stderr.contains(&format!("auth.secret_id_file {file}")),
        "{stderr}"
    );
    let before = failed_logins(&second);
    std::thread::sleep(Duration::from_secs(9));
    let during = failed_logins(&second) - before;
    assert!(
        (1..=6).contains(&during),
        "{during} failed logins in 9 s:\n{}",
        second.stderr()
    );
    assert_eq!(second.http("/v1/health").status, 503, "still up, still degraded");
    assert_eq!(first.http("/v1/health").status, 200, "the first agent serves on");

    // A new wrapping token in the file is unwrapped at the next attempt.
    replace_file(&second.path("secret-id"), &wrapped_secret_id(stack, &mount));
    eventually(Duration::from_secs(25), "a login with the new wrapping token", || {
        (second.http("/v1/health").status == 200).then_some(())
    });
    first.assert_never_leaked(&[wrapping.clone(), role_id.clone()]);
    second.assert_never_leaked(&[wrapping, role_id]);
}
