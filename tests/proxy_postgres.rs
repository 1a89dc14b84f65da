//! `[[proxy]] protocol = "postgres"` against the throw-away scram-sha-256 PostgreSQL with
//! dynamic users from the real OpenBao database engine: `psql`, `pgbench`, `tokio-postgres`
//! and the `postgres` crate connect to the agent's socket with no password; connections
//! through rotations never fail; a session keeps its credential until that credential's
//! expiry and then gets a clean 57P01; a revocation ends sessions at once; a uid without a
//! grant gets 28000; hostile packets end only their own connection; health shows a proxy
//! whose server is down; `upstream_tls` against a PostgreSQL of the test's own that takes TLS
//! connections only; a graceful stop tells open sessions 57P01.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::tls::{Ca, TlsPostgres};
use crate::support::{eventually, unique, Agent, PgServer, Stack, VAULT_ROOT};

/// An agent serving `db` from the database engine at `mount`, a proxy for it at
/// `@DIR@/.s.PGSQL.5432`, granted (with revoke) to its own uid only; `extra` is more TOML for
/// the `[[proxy]]` table.
fn config(mount: &str, upstream: &str, extra: &str) -> String {
    format!(
        r#"[agent]
socket = "@DIR@/agent.sock"
socket_group = "nogroup"
audit_log = "@DIR@/audit.jsonl"

{VAULT_ROOT}
[secrets.db]
backend = "vault"
kind = "vault.database"
mount = "{mount}"
role = "app"

[[access]]
uid = "self"
secrets = ["db"]
revoke = true

[[proxy]]
listen = "@DIR@/.s.PGSQL.5432"
protocol = "postgres"
secret = "db"
upstream = "{upstream}"
{extra}
"#
    )
}

fn upstream(stack: &Stack) -> String {
    format!("{}:{}", stack.pg_host, stack.pg_port)
}

/// libpq-style settings for a client of the proxy: the agent's directory is the socket
/// directory; the user is anything (the proxy replaces it); no password.
fn through(agent: &Agent) -> String {
    through_port(agent, 5432)
}

/// The same for the proxy at `@DIR@/.s.PGSQL.{port}`.
fn through_port(agent: &Agent, port: u16) -> String {
    format!(
        "host={} port={port} user=whoever dbname=app application_name=proxy-test connect_timeout=10",
        agent.dir.path().display()
    )
}

fn connect(agent: &Agent) -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(&through(agent), postgres::NoTls)
}

fn current_user(client: &mut postgres::Client) -> Result<String, postgres::Error> {
    Ok(client.query_one("SELECT current_user", &[])?.get(0))
}

fn code(e: &postgres::Error) -> Option<String> {
    e.code().map(|c| c.code().to_owned())
}

/// A session through the proxy on its own thread: logs in, checks that it is `expect_user`,
/// and once the caller has been told that it logged in runs `then` with the client and the
/// connection's task; answers what `then` returns.
fn session_thread<T, F>(
    agent: &Agent,
    expect_user: String,
    then: impl FnOnce(tokio_postgres::Client, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) -> F
        + Send
        + 'static,
) -> std::thread::JoinHandle<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let conninfo = through(agent);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .expect("a session through the proxy");
            let connection = tokio::spawn(connection);
            let user: String = client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
            assert_eq!(user, expect_user);
            ready_tx.send(()).unwrap();
            then(client, connection).await
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the session logged in");
    handle
}

/// A session running `sql` (whose one column is the user) over and over until an error:
/// answers when each query worked, when the error came and the error.
fn busy_session(
    agent: &Agent,
    expect_user: String,
    sql: &'static str,
    started: Instant,
) -> std::thread::JoinHandle<(Vec<Duration>, Duration, tokio_postgres::Error)> {
    session_thread(agent, expect_user.clone(), move |client, _connection| async move {
        let mut worked = Vec::new();
        loop {
            match client.query_one(sql, &[]).await {
                Ok(row) => {
                    assert_eq!(row.get::<_, String>(0), expect_user);
                    worked.push(started.elapsed());
                }
                Err(e) => return (worked, started.elapsed(), e),
            }
        }
    })
}

fn async_code(e: &tokio_postgres::Error) -> Option<String> {
    e.code().map(|c| c.code().to_owned())
}

/// Runs `SELECT pg_sleep(30)` on `client` (connected through a proxy), sends a CancelRequest
/// to the proxy's `socket` and checks that the query was cancelled; how long that took.
async fn cancel_through_proxy(client: tokio_postgres::Client, socket: &std::path::Path) -> Duration {
    let token = client.cancel_token();
    let sleeping = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await.map(drop) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    token
        .cancel_query_raw(
            tokio::net::UnixStream::connect(socket).await.unwrap(),
            tokio_postgres::NoTls,
        )
        .await
        .expect("cancel request sent");
    let err = sleeping.await.unwrap().expect_err("the query was cancelled");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
    asked.elapsed()
}

fn start(stack: &Stack, ttl: &str, max_ttl: &str, grants: &[String]) -> Agent {
    let mount = unique("database");
    stack.database_engine_granting(&mount, ttl, max_ttl, grants);
    let agent = Agent::start_shared(&config(&mount, &upstream(stack), ""));
    agent.wait_served("db", Duration::from_secs(20));
    agent
}

#[test]
fn proxy_psql_pgbench_and_tokio_postgres_log_in_with_no_password() {
    let stack = Stack::get();
    // pgbench's tables in a schema of this test's own, readable by every issued user.
    let schema = unique("bench").replace('-', "_");
    stack.pg_admin(&format!("CREATE SCHEMA {schema}"));
    let pgbench_env = [("PGOPTIONS", format!("-c search_path={schema}"))];
    let init = Command::new("pgbench")
        .args([
            "-i",
            "-s",
            "1",
            "-q",
            "-h",
            &stack.pg_host,
            "-p",
            &stack.pg_port.to_string(),
            "-U",
            &stack.pg_user,
            "app",
        ])
        .env("PGPASSWORD", &stack.pg_password)
        .envs(pgbench_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let grants = [
        format!("GRANT USAGE ON SCHEMA {schema} TO \"{{{{name}}}}\";"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO \"{{{{name}}}}\";"),
    ];
    let agent = start(stack, "1h", "2h", &grants);
    let served = agent.get("db");
    let user = served["data"]["username"].as_str().unwrap().to_owned();
    let dir = agent.dir.path().display().to_string();

    // psql: no password anywhere; the server sees the served user, the client's database.
    let psql = Command::new("psql")
        .args(["-X", "-w", "-A", "-t", "-h", &dir, "-p", "5432", "-d", "app", "-c"])
        .arg("SELECT current_user || ' ' || current_database()")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&psql.stdout);
    assert!(psql.status.success(), "psql: {}", String::from_utf8_lossy(&psql.stderr));
    assert_eq!(stdout.trim(), format!("{user} app"));

    // pgbench -S through the proxy, its options (search_path) kept.
    let bench = Command::new("pgbench")
        .args([
            "-n", "-S", "-c", "4", "-j", "2", "-t", "200", "-h", &dir, "-p", "5432", "app",
        ])
        .envs(pgbench_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success(),
        "pgbench: {report}{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    assert!(
        report.contains("number of transactions actually processed: 800/800"),
        "{report}"
    );
    assert!(report.contains("number of failed transactions: 0"), "{report}");

    // tokio-postgres: the startup's application_name is kept; a cancel reaches the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&through(&agent), tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres through the proxy");
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT current_user::text, current_setting('application_name')", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user);
        assert_eq!(row.get::<_, String>(1), "proxy-test");
        let took = cancel_through_proxy(client, &agent.path(".s.PGSQL.5432")).await;
        assert!(took < Duration::from_secs(5), "{took:?}");
    });

    std::thread::sleep(Duration::from_millis(400));
    let audit = agent.audit();
    let opened: Vec<_> = audit.iter().filter(|e| e["event"] == "session_open").collect();
    assert!(opened.len() >= 7, "psql, 4 pgbench clients, tokio-postgres: {opened:?}");
    let me = nix::unistd::getuid().as_raw();
    assert!(
        opened.iter().all(|e| e["peer"]["uid"] == me
            && e["peer"]["pid"].as_i64().unwrap() > 0
            && e["version"] == served["version"]
            && e["secret"] == "db"
            && e["proxy"].as_str().unwrap().ends_with(".s.PGSQL.5432")),
        "{opened:?}"
    );
    assert!(audit
        .iter()
        .any(|e| e["event"] == "session_end" && e["bytes_to_client"].as_u64().unwrap() > 0));
    let metrics = agent.http("/metrics").body;
    for metric in [
        "sidekey_proxy_sessions_total{proxy=",
        "sidekey_proxy_bytes_total{proxy=",
        "sidekey_proxy_cancels_total{proxy=",
    ] {
        assert!(metrics.contains(metric), "{metric}: {metrics}");
    }
    assert_eq!(agent.http("/v1/health").json()["status"], "ok");
    agent.assert_never_leaked(&[user, served["data"]["password"].as_str().unwrap().to_owned()]);
}

#[test]
fn proxy_rotation_never_fails_a_connection_and_old_sessions_end_at_their_expiry_with_57p01() {
    // TTL 8 s, max 20 s: the credential is re-issued at ~16 s and every ~16 s after.
    let stack = Stack::get();
    let agent = start(stack, "8s", "20s", &[]);
    let first = agent.get("db");
    let first_lease = first["lease"]["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let long_session = busy_session(
        &agent,
        first["data"]["username"].as_str().unwrap().to_owned(),
        "SELECT current_user::text, pg_sleep(1)::text",
        started,
    );

    let (mut users, mut connections) = (Vec::<String>::new(), 0);
    let mut rotated_at = None;
    while started.elapsed() < Duration::from_secs(45) {
        let tick = Instant::now();
        let mut client =
            connect(&agent).unwrap_or_else(|e| panic!("a new connection failed at {:?}: {e}", started.elapsed()));
        let user =
            current_user(&mut client).unwrap_or_else(|e| panic!("a query failed at {:?}: {e}", started.elapsed()));
        drop(client);
        connections += 1;
        if users.last() != Some(&user) {
            println!("{:?}: new connections log in as a new user", started.elapsed());
            if !users.is_empty() && rotated_at.is_none() {
                rotated_at = Some(started.elapsed());
            }
            users.push(user);
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(tick.elapsed()));
    }
    println!("{connections} connections over 45 s, {} users", users.len());
    assert!(
        users.len() >= 3,
        "a 20 s max TTL over 45 s means at least two new users: {users:?}"
    );
    let (worked, ended_at, err) = long_session.join().unwrap();
    let rotated_at = rotated_at.unwrap();
    println!("rotation at {rotated_at:?}; the long session ended at {ended_at:?}: {err}");
    assert!(
        worked.iter().any(|t| *t > rotated_at + Duration::from_secs(1)),
        "the long session kept working after new sessions got a new user: {worked:?}"
    );
    assert_eq!(
        code(&err).as_deref(),
        Some("57P01"),
        "a clean admin_shutdown, not a cut: {err}"
    );
    // Its lease expired at ~20 s (the max TTL); the session ends a second before.
    assert!(
        ended_at > Duration::from_secs(15) && ended_at < Duration::from_secs(24),
        "ended at {ended_at:?}"
    );
    let message = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
    assert!(message.contains("expired"), "{message}");
    std::thread::sleep(Duration::from_millis(400));
    let audit = agent.audit();
    let expired = audit
        .iter()
        .find(|e| e["event"] == "session_end" && e["reason"] == "expired" && e["lease_id"] == first_lease.as_str())
        .expect("the long session's end is audited");
    // The replaced lease was not revoked while the session used it: at most once it ended.
    if let Some(revoke) = audit
        .iter()
        .find(|e| e["event"] == "revoke" && e["lease_id"] == first_lease.as_str())
    {
        assert!(
            revoke["ts"].as_str().unwrap() >= expired["ts"].as_str().unwrap(),
            "revoked under a session: {revoke} before {expired}"
        );
    }
    let metrics = agent.http("/metrics").body;
    assert!(
        metrics.contains("sidekey_proxy_sessions_ended_total{proxy="),
        "{metrics}"
    );
    agent.assert_never_leaked(&users);
}

#[test]
fn proxy_revoke_ends_the_sessions_of_the_revoked_credential_within_a_second() {
    let stack = Stack::get();
    let agent = start(stack, "1h", "2h", &[]);
    let before = agent.get("db");
    let old_user = before["data"]["username"].as_str().unwrap().to_owned();
    // A query in flight when the revocation comes.
    let session = busy_session(
        &agent,
        old_user.clone(),
        "SELECT current_user::text, pg_sleep(20)::text",
        Instant::now(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let out = agent.cli(&["revoke", "--secret", "db"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer = String::from_utf8_lossy(&out.stdout);
    let (worked, _, err) = session.join().unwrap();
    let took = asked.elapsed();
    assert!(worked.is_empty(), "the 20 s query never finished");
    assert_eq!(async_code(&err).as_deref(), Some("57P01"), "{err}");
    let message = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
    assert!(message.contains("revoked"), "{message}");
    println!("revoke answered: {answer}; session ended {took:?} after the request");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // New sessions get the fresh credential.
    let mut fresh = connect(&agent).unwrap();
    assert_ne!(current_user(&mut fresh).unwrap(), old_user);
    std::thread::sleep(Duration::from_millis(400));
    assert!(agent
        .audit()
        .iter()
        .any(|e| e["event"] == "session_end" && e["reason"] == "revoked"));
    agent.assert_never_leaked(&[old_user, before["data"]["password"].as_str().unwrap().to_owned()]);
}

/// Sends a startup packet on `socket` as the calling process; answers the ErrorResponse's
/// SQLSTATE and message (run by `runuser -u nobody -- python3`).
const RAW_STARTUP: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(struct.pack("!ii", 8, 80877103))
assert s.recv(1) == b"N", "an SSLRequest on the socket is answered N"
params = b"user\0app\0database\0app\0\0"
s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
fields = dict((f[:1].decode(), f[1:].decode()) for f in data[5:].split(b"\0") if f)
print(data[:1].decode(), fields.get("C"), fields.get("M"))
"#;

#[test]
fn proxy_refuses_a_uid_without_a_grant_with_28000_and_audits_it() {
    let stack = Stack::get();
    let agent = start(stack, "1h", "2h", &[]);
    let socket = agent.dir.path().join(".s.PGSQL.5432");
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "python3", "-c", RAW_STARTUP])
        .arg(&socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("E 28000 sidekey: no [[access]] rule matches uid 65534"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // psql says the same to its user.
    let psql = Command::new("runuser")
        .args(["-u", "nobody", "--", "psql", "-X", "-w", "-h"])
        .arg(agent.dir.path())
        .args(["-p", "5432", "-d", "app", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!psql.status.success());
    assert!(
        String::from_utf8_lossy(&psql.stderr).contains("no [[access]] rule"),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    std::thread::sleep(Duration::from_millis(400));
    let audit = agent.audit();
    let refusal = audit
        .iter()
        .find(|e| e["event"] == "refusal" && e["peer"]["uid"] == 65534)
        .unwrap_or_else(|| panic!("no refusal of uid 65534: {audit:?}"));
    assert_eq!(refusal["secret"], "db");
    assert!(refusal["proxy"].as_str().unwrap().ends_with(".s.PGSQL.5432"));
    assert!(!audit.iter().any(|e| e["event"] == "session_open"));
    let metrics = agent.http("/metrics").body;
    assert!(metrics.contains("reason=\"access\""), "{metrics}");
}

#[test]
fn proxy_hostile_packets_end_only_their_own_connection() {
    let stack = Stack::get();
    let agent = start(stack, "1h", "2h", &[]);
    let socket = agent.dir.path().join(".s.PGSQL.5432");
    let mut good = connect(&agent).unwrap();
    let user = current_user(&mut good).unwrap();
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("a 1 GiB length", (1i32 << 30).to_be_bytes().to_vec()),
        ("a negative length", (-1i32).to_be_bytes().to_vec()),
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("a startup without terminator", {
            let body = b"user\0x\0database";
            let mut p = ((body.len() + 8) as i32).to_be_bytes().to_vec();
            p.extend(196608i32.to_be_bytes());
            p.extend(body);
            p
        }),
        (
            "protocol 9.9",
            [8i32.to_be_bytes(), ((9 << 16) | 9i32).to_be_bytes()].concat(),
        ),
        (
            "random bytes",
            (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
        ),
    ];
    for (what, bytes) in &hostile {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(answer.len() < 512, "{what}: the proxy answered {} bytes", answer.len());
        assert!(answer.is_empty() || answer[0] == b'E', "{what}: {answer:?}");
        // Neither the other session nor the agent noticed.
        assert_eq!(current_user(&mut good).unwrap(), user, "after {what}");
    }
    let mut fresh = connect(&agent).unwrap();
    assert_eq!(current_user(&mut fresh).unwrap(), user);
    assert_eq!(agent.http("/v1/health").json()["status"], "ok");
    assert!(agent.http("/metrics").body.contains("reason=\"protocol\""));
}

#[test]
fn proxy_health_shows_an_upstream_that_is_down_and_clients_are_told() {
    let stack = Stack::get();
    let mount = stack.database_engine("1h", "2h");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent = Agent::start_shared(&config(&mount, &closed.to_string(), "upstream_tls = \"disable\"\n"));
    agent.wait_served("db", Duration::from_secs(20));
    let health = eventually(Duration::from_secs(10), "the proxy reported down", || {
        let r = agent.http("/v1/health");
        (r.status == 200 && r.json()["status"] == "degraded").then(|| r.json())
    });
    let proxy = &health["proxies"][0];
    assert_eq!(proxy["upstream"], closed.to_string());
    assert_eq!(proxy["secret"], "db");
    assert!(proxy["reason"].as_str().unwrap().contains("cannot connect"), "{health}");
    let err = connect(&agent).err().expect("nothing to connect to");
    assert_eq!(code(&err).as_deref(), Some("08006"), "{err}");
    let out = agent.cli(&["health"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("proxy "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `[[proxy]]` table more, for `secret = "db"` at `@DIR@/.s.PGSQL.{port}`; `tls` is its TLS
/// settings (TOML lines).
fn another_proxy(port: u16, upstream: &str, tls: &str) -> String {
    format!(
        "\n[[proxy]]\nlisten = \"@DIR@/.s.PGSQL.{port}\"\nprotocol = \"postgres\"\nsecret = \"db\"\nupstream = \"{upstream}\"\n{tls}\n"
    )
}

/// The value of `metric` for the proxy at `listen` in a `/metrics` body, if it is there.
fn proxy_metric(metrics: &str, metric: &str, listen: &str) -> Option<f64> {
    let label = format!("proxy=\"{listen}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The sockets `/v1/health` lists under `proxies`, with their reasons.
fn failing_proxies(agent: &Agent) -> (String, Vec<(String, String)>) {
    let health = agent.http("/v1/health").json();
    let proxies = health["proxies"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|p| {
                    (
                        p["listen"].as_str().unwrap().to_owned(),
                        p["reason"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (health["status"].as_str().unwrap_or_default().to_owned(), proxies)
}

#[test]
fn proxy_upstream_tls_against_a_server_that_takes_tls_connections_only() {
    let stack = Stack::get();
    let ca = Ca::new("sidekey test postgres CA");
    let pg = TlsPostgres::start(&ca.server(&["localhost", "127.0.0.1"]));
    // The server itself refuses a cleartext connection, even with the right password.
    let cleartext = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname=app sslmode=disable connect_timeout=5",
            pg.port, pg.admin_secret
        ),
        postgres::NoTls,
    )
    .err()
    .expect("a cleartext connection is refused");
    assert_eq!(code(&cleartext).as_deref(), Some("28000"), "{cleartext}");
    // OpenBao's database engine manages it (over TLS too).
    let mount = unique("database-tls");
    let server = PgServer {
        host: "127.0.0.1",
        port: pg.port,
        db: "app",
        admin: "postgres",
        admin_secret: &pg.admin_secret,
        sslmode: "require",
    };
    stack.database_engine_on(&mount, &server, "1h", "2h", &[]);

    // One agent, one proxy per setting, all for the same secret and server.
    let to = format!("127.0.0.1:{}", pg.port);
    let ca_file = "ca_cert = \"@DIR@/ca.pem\"";
    let proxies = [
        another_proxy(
            5433,
            &to,
            &format!("upstream_tls = \"verify-full\"\n{ca_file}\ntls_server_name = \"localhost\""),
        ),
        another_proxy(5434, &to, "upstream_tls = \"require\""),
        another_proxy(5435, &to, ""),
        another_proxy(
            5436,
            &to,
            "upstream_tls = \"verify-full\"\nca_cert = \"@DIR@/other-ca.pem\"",
        ),
        another_proxy(
            5437,
            &to,
            &format!("upstream_tls = \"verify-full\"\n{ca_file}\ntls_server_name = \"db.elsewhere.test\""),
        ),
        another_proxy(5438, &to, "upstream_tls = \"disable\""),
    ]
    .concat();
    let other_ca = Ca::new("another CA");
    let agent = Agent::start_with_files(
        &config(
            &mount,
            &to,
            &format!("upstream_tls = \"verify-full\"\n{ca_file}\n{proxies}"),
        ),
        &[("ca.pem", &ca.pem()), ("other-ca.pem", &other_ca.pem())],
    );
    let launched = Instant::now();
    let served = agent.wait_served("db", Duration::from_secs(20));
    let user = served["data"]["username"].as_str().unwrap().to_owned();
    let listen = |port: u16| agent.path(&format!(".s.PGSQL.{port}")).display().to_string();

    // verify-full (the certificate's IP name, then tls_server_name), require, prefer: the
    // login works and the server sees TLS.
    for (port, what) in [
        (5432, "verify-full, the IP address"),
        (5433, "verify-full, tls_server_name"),
        (5434, "require"),
        (5435, "prefer (the default)"),
    ] {
        let asked = Instant::now();
        let mut client = postgres::Client::connect(&through_port(&agent, port), postgres::NoTls)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", pg.log()));
        let row = client
            .query_one(
                "SELECT current_user::text, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user, "{what}");
        assert!(row.get::<_, bool>(1), "{what}: the server sees an SSL connection");
        println!(
            "{what}: logged in over {} in {:?}",
            row.get::<_, String>(2),
            asked.elapsed()
        );
    }
    // psql, and a cancel request, which goes to the server over TLS too.
    let psql = Command::new("psql")
        .args(["-X", "-w", "-A", "-t", "-h"])
        .arg(agent.dir.path())
        .args(["-p", "5432", "-d", "app", "-c"])
        .arg("SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .output()
        .unwrap();
    assert!(psql.status.success(), "psql: {}", String::from_utf8_lossy(&psql.stderr));
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), format!("{user} true"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&through(&agent), tokio_postgres::NoTls)
            .await
            .expect("tokio-postgres through the verify-full proxy");
        tokio::spawn(connection);
        let ssl: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(ssl);
        let took = cancel_through_proxy(client, &agent.path(".s.PGSQL.5432")).await;
        println!("cancel over TLS: {took:?}");
    });

    // Another CA, another name, no TLS: the client is told why at once, with an ErrorResponse
    // (a database error with a SQLSTATE, not a closed socket).
    for (port, what, sqlstate, says) in [
        (
            5436,
            "verify-full, another CA",
            "08006",
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            5437,
            "verify-full, another name",
            "08006",
            "certificate not valid for name",
        ),
        (5438, "disable", "28000", "no encryption"),
    ] {
        let asked = Instant::now();
        let err = postgres::Client::connect(&through_port(&agent, port), postgres::NoTls)
            .err()
            .unwrap_or_else(|| panic!("{what}: logged in"));
        let took = asked.elapsed();
        let message = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        println!("{what}: {sqlstate} in {took:?}: {message}");
        assert_eq!(code(&err).as_deref(), Some(sqlstate), "{what}: {err}");
        assert!(message.contains(says), "{what}: {message}");
        assert!(took < Duration::from_secs(5), "{what}: {took:?}");
    }

    // /metrics counts the failures of those proxies only; /v1/health names them.
    let metrics = agent.http("/metrics").body;
    let failures = |port| proxy_metric(&metrics, "sidekey_proxy_upstream_failures_total", &listen(port));
    for port in [5436, 5437, 5438] {
        assert!(failures(port) >= Some(1.0), "{port}: {metrics}");
    }
    for port in [5432, 5433, 5434, 5435] {
        assert_eq!(failures(port).unwrap_or(0.0), 0.0, "{port}: {metrics}");
        assert!(proxy_metric(&metrics, "sidekey_proxy_sessions_total", &listen(port)) >= Some(1.0));
    }
    let expect_failing = |when: &str| {
        let (status, failing) = failing_proxies(&agent);
        assert_eq!(status, "degraded", "{when}");
        let sockets: Vec<&str> = failing.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            sockets,
            [listen(5436), listen(5437), listen(5438)],
            "{when}: {failing:?}"
        );
        assert!(failing[0].1.contains("UnknownIssuer"), "{when}: {failing:?}");
        assert!(failing[1].1.contains("not valid for name"), "{when}: {failing:?}");
        assert!(failing[2].1.contains("28000"), "{when}: {failing:?}");
        println!("{when}: {failing:?}");
    };
    expect_failing("after the failed logins");
    // The proxy probes its server every 10 s while no session logs in: with TLS as
    // configured, and without clearing a failed login (the server was reachable, the login
    // was not). 21 s after the start, two probes have run.
    std::thread::sleep((launched + Duration::from_secs(21)).saturating_duration_since(Instant::now()));
    expect_failing("after the probes");
    agent.assert_never_leaked(std::slice::from_ref(&pg.admin_secret));
}

/// A session idle between queries; answers when and with what its connection ended.
fn idle_session(agent: &Agent, expect_user: String) -> std::thread::JoinHandle<(Instant, tokio_postgres::Error)> {
    session_thread(agent, expect_user, |client, connection| async move {
        let ended = connection.await.unwrap();
        let at = Instant::now();
        drop(client);
        (at, ended.expect_err("the connection ended with an error"))
    })
}

#[test]
fn proxy_sessions_get_57p01_when_the_agent_stops_and_it_exits_0() {
    let stack = Stack::get();
    let mut agent = start(stack, "1h", "2h", &[]);
    let user = agent.get("db")["data"]["username"].as_str().unwrap().to_owned();
    let base = Instant::now();
    // One session with a query in flight, one idle between two queries.
    let busy = busy_session(
        &agent,
        user.clone(),
        "SELECT current_user::text, pg_sleep(10)::text",
        base,
    );
    let idle = idle_session(&agent, user.clone());
    std::thread::sleep(Duration::from_millis(500));
    let sigterm = base.elapsed();
    let asked = Instant::now();
    let status = agent.stop();
    let exited = asked.elapsed();
    let (worked, busy_ended, busy_err) = busy.join().unwrap();
    let (idle_ended, idle_err) = idle.join().unwrap();
    let (busy_took, idle_took) = (busy_ended - sigterm, idle_ended - asked);
    println!(
        "SIGTERM: 57P01 after {busy_took:?} (query in flight), {idle_took:?} (idle); exit {status} after {exited:?}"
    );
    assert!(worked.is_empty(), "the 10 s query never finished");
    for (err, what) in [(&busy_err, "query in flight"), (&idle_err, "idle")] {
        assert_eq!(async_code(err).as_deref(), Some("57P01"), "{what}: {err}");
        let message = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        assert!(message.contains("the agent is stopping"), "{what}: {message}");
    }
    assert!(busy_took < Duration::from_secs(1), "{busy_took:?}");
    assert!(idle_took < Duration::from_secs(1), "{idle_took:?}");
    assert!(status.success(), "{status}\n{}", agent.stderr());
    assert!(exited < Duration::from_secs(5), "{exited:?}");
    assert!(!agent.path(".s.PGSQL.5432").exists(), "the proxy's socket is removed");
    let ends: Vec<_> = agent
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "session_end")
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.iter().all(|e| e["reason"] == "stopping"), "{ends:?}");
}
