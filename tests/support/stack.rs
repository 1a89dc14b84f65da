//! The services `tests/run.sh` started, read from its `SIDEKEY_TEST_*` variables, and an
//! admin client for OpenBao's HTTP API (root token) to configure engines per test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// The running test services.
#[derive(Clone)]
pub struct Stack {
    pub vault_addr: String,
    pub vault_token: String,
    pub pg_host: String,
    pub pg_port: u16,
    pub pg_user: String,
    pub pg_password: String,
    pub pg_db: String,
    pub aws_endpoint: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the end-to-end tests with tests/run.sh, which starts OpenBao, PostgreSQL and moto"
        )
    })
}

impl Stack {
    /// The stack started by tests/run.sh.
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| Stack {
            vault_addr: var("SIDEKEY_TEST_VAULT_ADDR"),
            vault_token: var("SIDEKEY_TEST_VAULT_TOKEN"),
            pg_host: var("SIDEKEY_TEST_PG_HOST"),
            pg_port: var("SIDEKEY_TEST_PG_PORT")
                .parse()
                .expect("SIDEKEY_TEST_PG_PORT is a port"),
            pg_user: var("SIDEKEY_TEST_PG_USER"),
            pg_password: var("SIDEKEY_TEST_PG_PASSWORD"),
            pg_db: var("SIDEKEY_TEST_PG_DB"),
            aws_endpoint: var("SIDEKEY_TEST_AWS_ENDPOINT"),
        })
    }

    /// `PUT/POST /v1/{path}` with the root token; panics with Vault's answer on failure.
    pub fn vault_write(&self, path: &str, body: Value) -> Value {
        self.vault_call("POST", path, Some(body))
            .unwrap_or_else(|e| panic!("vault write {path}: {e}"))
    }

    /// `GET /v1/{path}` with the root token.
    pub fn vault_read(&self, path: &str) -> Value {
        self.vault_call("GET", path, None)
            .unwrap_or_else(|e| panic!("vault read {path}: {e}"))
    }

    /// Any call; `Err` carries Vault's status and body.
    pub fn vault_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/v1/{path}", self.vault_addr);
        let request = ureq::request(method, &url).set("X-Vault-Token", &self.vault_token);
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => {
                let text = response.into_string().map_err(|e| e.to_string())?;
                Ok(if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|e| e.to_string())?
                })
            }
            Err(ureq::Error::Status(code, response)) => {
                Err(format!("{code}: {}", response.into_string().unwrap_or_default()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Mounts a secrets engine of `kind` at `path`.
    pub fn mount(&self, path: &str, kind: &str, options: Value) {
        self.vault_write(
            &format!("sys/mounts/{path}"),
            json!({ "type": kind, "options": options }),
        );
    }

    /// A libpq-style connection string for the throw-away cluster as `user`.
    pub fn pg_conninfo(&self, user: &str, password: &str) -> String {
        format!(
            "host={} port={} user={user} password={password} dbname={} connect_timeout=5",
            self.pg_host, self.pg_port, self.pg_db
        )
    }

    /// Runs `sql` as the cluster's superuser in the test database.
    pub fn pg_admin(&self, sql: &str) {
        let mut client =
            postgres::Client::connect(&self.pg_conninfo(&self.pg_user, &self.pg_password), postgres::NoTls)
                .unwrap_or_else(|e| panic!("admin login: {e}"));
        client.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Logs in to PostgreSQL as `user` and runs `SELECT 1`.
    pub fn pg_login(&self, user: &str, password: &str) -> Result<(), String> {
        let mut client =
            postgres::Client::connect(&self.pg_conninfo(user, password), postgres::NoTls).map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").map(|_| ()).map_err(|e| e.to_string())
    }

    /// A database engine at a fresh mount, connected to the throw-away cluster, with role
    /// `app` (the given TTLs). Answers the mount.
    pub fn database_engine(&self, default_ttl: &str, max_ttl: &str) -> String {
        let mount = unique("database");
        self.database_engine_at(&mount, default_ttl, max_ttl);
        mount
    }

    /// The same at a given mount.
    pub fn database_engine_at(&self, mount: &str, default_ttl: &str, max_ttl: &str) {
        self.database_engine_granting(mount, default_ttl, max_ttl, &[]);
    }

    /// The same, with more statements run for each new user (`{{name}}` is the user).
    pub fn database_engine_granting(&self, mount: &str, default_ttl: &str, max_ttl: &str, grants: &[String]) {
        let server = PgServer {
            host: &self.pg_host,
            port: self.pg_port,
            db: &self.pg_db,
            admin: &self.pg_user,
            admin_secret: &self.pg_password,
            sslmode: "disable",
        };
        self.database_engine_on(mount, &server, default_ttl, max_ttl, grants);
    }

    /// A database engine at `mount` whose connection `pg` goes to `server` (a cluster of a
    /// test's own), with role `app`: each user may connect to `server.db`, then `grants`.
    pub fn database_engine_on(
        &self,
        mount: &str,
        server: &PgServer,
        default_ttl: &str,
        max_ttl: &str,
        grants: &[String],
    ) {
        self.mount(mount, "database", json!({}));
        let statements: Vec<String> = [
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';".to_owned(),
            format!("GRANT CONNECT ON DATABASE \"{}\" TO \"{{{{name}}}}\";", server.db),
        ]
        .into_iter()
        .chain(grants.iter().cloned())
        .collect();
        self.vault_write(
            &format!("{mount}/config/pg"),
            json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": format!(
                    "postgresql://{{{{username}}}}:{{{{password}}}}@{}:{}/{}?sslmode={}",
                    server.host, server.port, server.db, server.sslmode
                ),
                "username": server.admin,
                "password": server.admin_secret,
                "allowed_roles": "*",
                "verify_connection": true,
            }),
        );
        self.vault_write(
            &format!("{mount}/roles/app"),
            json!({
                "db_name": "pg",
                "creation_statements": statements,
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            }),
        );
    }

    /// A KV v2 engine at a fresh mount. Answers the mount.
    pub fn kv2_engine(&self) -> String {
        let mount = unique("kv");
        self.mount(&mount, "kv", json!({ "version": "2" }));
        mount
    }

    /// A PKI engine at a fresh mount with a root CA and role `web` for `*.internal`.
    pub fn pki_engine(&self) -> String {
        let mount = unique("pki");
        self.vault_write(
            &format!("sys/mounts/{mount}"),
            json!({ "type": "pki", "config": { "max_lease_ttl": "87600h" } }),
        );
        self.vault_write(
            &format!("{mount}/root/generate/internal"),
            json!({ "common_name": "sidekey test root", "ttl": "87600h" }),
        );
        self.vault_write(
            &format!("{mount}/roles/web"),
            json!({ "allowed_domains": "internal", "allow_subdomains": true, "max_ttl": "1h", "not_before_duration": "1s" }),
        );
        mount
    }

    /// An AppRole auth mount with role `agent` holding `policy` (HCL). Answers (mount, role_id, secret_id).
    pub fn approle(&self, policy: &str) -> (String, String, String) {
        let mount = unique("approle");
        let policy_name = unique("policy");
        self.vault_write(&format!("sys/policies/acl/{policy_name}"), json!({ "policy": policy }));
        self.vault_write(&format!("sys/auth/{mount}"), json!({ "type": "approle" }));
        self.vault_write(
            &format!("auth/{mount}/role/agent"),
            json!({ "token_policies": [policy_name], "token_ttl": "1h", "token_max_ttl": "4h" }),
        );
        let role_id = self.vault_read(&format!("auth/{mount}/role/agent/role-id"))["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = self.vault_write(&format!("auth/{mount}/role/agent/secret-id"), json!({}))["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (mount, role_id, secret_id)
    }
}

/// A PostgreSQL server a database engine manages: where it is, the database its users may
/// connect to, the admin the engine logs in as, and the `sslmode` it connects with.
pub struct PgServer<'a> {
    pub host: &'a str,
    pub port: u16,
    pub db: &'a str,
    pub admin: &'a str,
    pub admin_secret: &'a str,
    pub sslmode: &'a str,
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}
