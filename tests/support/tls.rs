//! Key material made at test time (never committed: the self-scan refuses key-shaped
//! literals): a CA and certificates signed by it (rcgen), an ES256 key pair and JWTs signed
//! with it (jsonwebtoken); and [`TlsBao`], an OpenBao of a test's own that also listens on TLS
//! with such a certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

use super::aws::free_port;
use super::{eventually, unique};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names, or IP addresses as text).
    pub fn server(&self, names: &[&str]) -> Issued {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(&[], cn, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// An ES256 signing key, as an OIDC issuer or a cluster's service account issuer holds it.
pub struct JwtIssuer {
    key: KeyPair,
}

impl JwtIssuer {
    pub fn new() -> JwtIssuer {
        JwtIssuer {
            key: KeyPair::generate().unwrap(),
        }
    }

    /// The public key, PEM (what Vault's `jwt_validation_pubkeys` takes).
    pub fn public_pem(&self) -> String {
        self.key.public_key_pem()
    }

    /// A JWT with `claims` plus `iat`, `nbf` and `exp` (now + `life`).
    pub fn sign(&self, mut claims: Value, life: Duration) -> String {
        let now = now_secs();
        claims["iat"] = now.into();
        claims["nbf"] = now.saturating_sub(1).into();
        claims["exp"] = (now + life.as_secs()).into();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.key.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &key,
        )
        .unwrap()
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An OpenBao dev server (in memory, unsealed, a known root token) of a test's own, with a
/// second listener on TLS (`https`) presenting `server` (made by the test) and asking clients
/// for a certificate; `http` is the dev listener, for the test's own admin calls. Stopped when
/// dropped.
pub struct TlsBao {
    child: Child,
    pub http: String,
    pub https_port: u16,
    pub token: String,
    pub dir: PathBuf,
}

impl TlsBao {
    /// Starts it with its files in `dir`.
    pub fn start(dir: &Path, server: &Issued) -> TlsBao {
        let bin = std::env::var("SIDEKEY_TEST_BAO_BIN").expect("tests/run.sh sets SIDEKEY_TEST_BAO_BIN");
        std::fs::write(dir.join("bao-server.pem"), &server.cert).unwrap();
        std::fs::write(dir.join("bao-server.key"), &server.key).unwrap();
        // The dev listener's cluster port is its port + 1: both must be free.
        let dev_port = loop {
            let p = free_port();
            if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        };
        let https_port = loop {
            let p = free_port();
            if p != dev_port + 1 && p + 1 != dev_port {
                break p;
            }
        };
        let config = dir.join("bao-tls.hcl");
        std::fs::write(
            &config,
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{https_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                dir.join("bao-server.pem").display(),
                dir.join("bao-server.key").display()
            ),
        )
        .unwrap();
        let token = format!("root-{}", unique("tls"));
        let log = std::fs::File::create(dir.join("bao.log")).unwrap();
        let child = Command::new(bin)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{dev_port}"))
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-config={}", config.display()))
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let bao = TlsBao {
            child,
            http: format!("http://127.0.0.1:{dev_port}"),
            https_port,
            token,
            dir: dir.to_owned(),
        };
        eventually(Duration::from_secs(30), "the TLS OpenBao up", || {
            let up = bao.call("GET", "sys/health", None, None).is_ok();
            let tls = std::net::TcpStream::connect(("127.0.0.1", https_port)).is_ok();
            (up && tls).then_some(())
        });
        bao
    }

    /// Any admin call on the dev listener with the root token, in `namespace` if given; `Err`
    /// carries the status and body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        namespace: Option<&str>,
    ) -> Result<Value, String> {
        let mut request = ureq::request(method, &format!("{}/v1/{path}", self.http))
            .set("X-Vault-Token", &self.token)
            .timeout(Duration::from_secs(10));
        if let Some(ns) = namespace {
            request = request.set("X-Vault-Namespace", ns);
        }
        let answer = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match answer {
            Ok(r) => {
                let text = r.into_string().unwrap_or_default();
                Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(ureq::Error::Status(code, r)) => Err(format!("{code}: {}", r.into_string().unwrap_or_default())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// An admin write that must succeed.
    pub fn write(&self, path: &str, body: Value, namespace: Option<&str>) -> Value {
        self.call("POST", path, Some(body), namespace)
            .unwrap_or_else(|e| panic!("bao write {path}: {e}"))
    }
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A PostgreSQL cluster of a test's own that takes TCP connections over TLS only (`hostssl`
/// in `pg_hba.conf`, scram-sha-256; a cleartext connection is refused), presenting `server`
/// (made by the test). Run as `nobody` when the tests run as root (initdb refuses root), as
/// tests/run.sh does for the shared cluster; the superuser `postgres` has a password made now
/// and logs in over the cluster's Unix socket. Database `app` exists. Stopped when dropped.
pub struct TlsPostgres {
    pub port: u16,
    /// The superuser's password.
    pub admin_secret: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TlsPostgres {
    /// Starts it (initdb, TLS files, `pg_hba.conf`, pg_ctl start) on a free loopback port.
    pub fn start(server: &Issued) -> TlsPostgres {
        let bin = PathBuf::from(std::env::var("SIDEKEY_TEST_PG_BIN").expect("tests/run.sh sets SIDEKEY_TEST_PG_BIN"));
        // Under the stack's directory: reachable for `nobody` (TMPDIR may not be).
        let parent = std::env::var("SIDEKEY_TEST_STACK_DIR").expect("tests/run.sh sets SIDEKEY_TEST_STACK_DIR");
        let dir = tempfile::Builder::new().prefix("pg-tls-").tempdir_in(parent).unwrap();
        let admin_secret = format!("{:032x}", rand::random::<u128>());
        let pg = TlsPostgres {
            port: 0,
            admin_secret,
            dir,
            bin,
        };
        let path = |name: &str| pg.dir.path().join(name);
        std::fs::set_permissions(pg.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::write(path("pwfile"), format!("{}\n", pg.admin_secret)).unwrap();
        std::fs::write(path("server.crt"), &server.cert).unwrap();
        std::fs::write(path("server.key"), &server.key).unwrap();
        for file in ["pwfile", "server.key"] {
            std::fs::set_permissions(path(file), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        pg.give_to_server_user(pg.dir.path());
        for file in ["pwfile", "server.crt", "server.key"] {
            pg.give_to_server_user(&path(file));
        }
        let initdb = pg
            .as_server_user("initdb")
            .arg("-D")
            .arg(path("data"))
            .args([
                "--auth=scram-sha-256",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", path("pwfile").display()))
            .output()
            .unwrap();
        std::fs::remove_file(path("pwfile")).unwrap();
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        // TCP over TLS only; the Unix socket for the test's own admin login.
        std::fs::write(
            path("data/pg_hba.conf"),
            "local   all  all                scram-sha-256\nhostssl all  all  127.0.0.1/32   scram-sha-256\n",
        )
        .unwrap();
        let mut pg = pg;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={dir}/server.crt \
                 -c ssl_key_file={dir}/server.key -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                dir = pg.dir.path().display()
            );
            let started = pg
                .as_server_user("pg_ctl")
                .arg("-D")
                .arg(pg.dir.path().join("data"))
                .arg("-l")
                .arg(pg.dir.path().join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output()
                .unwrap();
            if started.status.success() {
                pg.port = port;
                break;
            }
            // Another process may have taken the port in between: try another.
            last = std::fs::read_to_string(pg.dir.path().join("postgres.log")).unwrap_or_default();
        }
        assert!(pg.port != 0, "the TLS PostgreSQL did not start:\n{last}");
        pg.admin_in("postgres")
            .batch_execute("CREATE DATABASE app")
            .unwrap_or_else(|e| panic!("CREATE DATABASE app: {e}"));
        pg
    }

    /// A superuser session over the Unix socket, in database `app`.
    pub fn admin(&self) -> postgres::Client {
        self.admin_in("app")
    }

    fn admin_in(&self, db: &str) -> postgres::Client {
        let conninfo = format!(
            "host={} port={} user=postgres password={} dbname={db} connect_timeout=10",
            self.dir.path().display(),
            self.port,
            self.admin_secret
        );
        postgres::Client::connect(&conninfo, postgres::NoTls)
            .unwrap_or_else(|e| panic!("admin login on the TLS PostgreSQL: {e}"))
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A command of the PostgreSQL binaries, run as `nobody` when the tests run as root, in the
    /// cluster's directory (runuser keeps the working directory).
    fn as_server_user(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    /// Gives `path` to `nobody` when the tests run as root.
    fn give_to_server_user(&self, path: &Path) {
        if nix::unistd::geteuid().is_root() {
            let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
            nix::unistd::chown(path, Some(nobody.uid), Some(nobody.gid)).unwrap();
        }
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self
                .as_server_user("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["stop", "-m", "immediate", "-w", "-t", "20"])
                .output();
        }
    }
}
