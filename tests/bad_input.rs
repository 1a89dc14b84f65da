//! Bad input never crashes the agent: malformed HTTP gets 400, unknown routes 404, wrong
//! methods 405; a wrong AppRole secret keeps the agent up with health naming the secret.

use std::time::Duration;

use crate::support::{eventually, http, unique, vault_approle, Agent, Stack, GRANT_SELF, LOCAL_DEV};

const SESSION: &str = "[secrets.session]\nbackend = \"dev\"\nkind = \"local.generated\"\nrotate_every = \"1h\"\n";

#[test]
fn malformed_requests_get_400_and_the_agent_keeps_serving() {
    let agent = Agent::start(&format!("{LOCAL_DEV}\n{SESSION}\n{GRANT_SELF}"));
    agent.wait_served("session", Duration::from_secs(10));
    let cases: &[(&[u8], u16)] = &[
        (b"BLAH\r\n\r\n", 400),
        (
            b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
            400,
        ),
        (b"GET /v1/secrets/session HTTP/9.9\r\n\r\n", 400),
        (b"\x00\x01\x02\xff\r\n\r\n", 400),
        (
            b"GET /v1/secrets/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            b"GET /v1/secrets/session?wait=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            b"GET /v1/secrets/session?timeout=forever&wait=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
        ),
        (b"GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (
            b"GET /v1/secrets/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
        ),
        (
            b"DELETE /v1/secrets/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            405,
        ),
    ];
    for (request, status) in cases {
        let answer = http::raw(&agent.socket, request).unwrap();
        assert_eq!(
            answer.status,
            *status,
            "{:?} → {}",
            String::from_utf8_lossy(request),
            answer.headers
        );
        if *status != 400 || answer.body.starts_with('{') {
            assert!(
                answer.body.is_empty() || answer.json()["error"].is_string(),
                "{}",
                answer.body
            );
        }
    }
    // A client that connects and says nothing, or hangs up mid-request, is harmless too.
    drop(std::os::unix::net::UnixStream::connect(&agent.socket).unwrap());
    let _ = http::raw(&agent.socket, b"GET /v1/secrets/session HTTP/1.1\r\nHost:");
    assert_eq!(agent.http("/v1/health").status, 200);
    assert_eq!(agent.get("session")["version"], 1);
}

#[test]
fn a_wrong_approle_secret_keeps_the_agent_up_with_health_naming_the_secret() {
    let stack = Stack::get();
    let kv = stack.kv2_engine();
    let (mount, role_id, _secret_id) = stack.approle(&format!("path \"{kv}/data/*\" {{ capabilities = [\"read\"] }}"));
    let config = format!(
        r#"{backend}
[secrets.api]
backend = "vault"
kind = "vault.kv2"
mount = "{kv}"
path = "app/api"

{GRANT_SELF}"#,
        backend = vault_approle(&mount)
    );
    let agent = Agent::start_with_files(
        &config,
        &[("role-id", &role_id), ("secret-id", &unique("wrong-secret-id"))],
    );
    let health = eventually(Duration::from_secs(15), "health names the failing secret", || {
        let h = agent.http("/v1/health");
        (h.status == 503 && h.body.contains("AppRole login failed")).then_some(h)
    });
    let body = health.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["failing"][0]["name"], "api", "{body}");
    assert_eq!(agent.http("/v1/secrets/api").status, 503);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(agent.http("/v1/health").status, 503, "still up, still degraded");
}

/// A token file holding a token Vault refuses (403 at `lookup-self`): the login is retried
/// with backoff. Before issue 14 the 403 of the login itself asked for an immediate re-login,
/// so such a file made the agent log in again and again without pause.
#[test]
fn a_refused_token_file_is_retried_with_backoff_not_in_a_loop() {
    let stack = Stack::get();
    let kv = stack.kv2_engine();
    let config = format!(
        "[backends.vault]\ntype = \"vault\"\naddress = \"@VAULT@\"\nauth = {{ method = \"token\", token_file = \"@DIR@/bogus-token\" }}\n\n\
         [secrets.api]\nbackend = \"vault\"\nkind = \"vault.kv2\"\nmount = \"{kv}\"\npath = \"app/api\"\n\n{GRANT_SELF}"
    );
    let agent = Agent::start_with_files(&config, &[("bogus-token", &unique("s.not-a-token"))]);
    let file = agent.path("bogus-token").display().to_string();
    eventually(Duration::from_secs(10), "a failed login naming the token file", || {
        agent
            .stderr()
            .contains(&format!("the token of {file}: vault: Vault answered 403"))
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(9));
    let failed = agent.stderr().matches("Vault login failed").count();
    assert!(
        (2..=8).contains(&failed),
        "{failed} failed logins in ~9 s:\n{}",
        agent.stderr()
    );
    assert_eq!(agent.http("/v1/health").status, 503, "up, and degraded");
}
