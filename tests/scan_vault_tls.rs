//! Vault behind a private CA (issue 12, item 4): `sidekey-scan --verify --vault-addr https://…`
//! trusts the system's roots plus the PEM file of `VAULT_CACERT` (or `--vault-cacert`), so a
//! leaked token is looked up at a Vault whose certificate a private CA signed, and the agents'
//! fingerprint registry is read there. Without that CA the certificate is refused, and the
//! scanner says so: a warning naming the certificate problem (the token stays `unknown`), and
//! an error for the registry, which the scan cannot do without.
//!
//! The Vault is a throw-away `bao server -dev -dev-tls` of the test's own: OpenBao generates
//! the CA, certificate and key at run time; the repository holds none.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::aws::free_port;
use crate::support::scan_report as scan;
use crate::support::{eventually, unique};

/// A `bao server -dev -dev-tls` on a free port, its CA in `dir`; stopped when dropped.
struct TlsBao {
    child: Child,
    addr: String,
    ca: PathBuf,
    token: String,
}

impl TlsBao {
    fn start(dir: &Path) -> TlsBao {
        let bin = std::env::var("SIDEKEY_TEST_BAO_BIN").expect("tests/run.sh sets SIDEKEY_TEST_BAO_BIN");
        let port = free_port();
        let token = format!("root-{}", unique("tls"));
        let child = Command::new(&bin)
            .args(["server", "-dev", "-dev-tls", "-dev-no-store-token"])
            .arg(format!("-dev-tls-cert-dir={}", dir.display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={token}"))
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = TlsBao {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            ca: dir.join("vault-ca.pem"),
            token,
        };
        eventually(Duration::from_secs(30), "the TLS OpenBao up", || {
            bao.cli(&["status", "-format=json"]).ok().map(|_| ())
        });
        bao
    }

    /// Runs the `bao` CLI against this server (trusting its CA); stdout, or stderr as error.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let bin = std::env::var("SIDEKEY_TEST_BAO_BIN").unwrap();
        let out = Command::new(bin)
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_CACERT", &self.ca)
            .env("BAO_TOKEN", &self.token)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The one finding of `path`: (verified, rule).
fn state(report: &Value, path: &str) -> (String, String) {
    let found = crate::support::one_finding(report, path);
    (
        found["verified"].as_str().unwrap().to_owned(),
        found["ruleId"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_vault_behind_a_private_ca_is_reached_with_vault_cacert_and_refused_without() {
    let certs = tempfile::tempdir().unwrap();
    let bao = TlsBao::start(certs.path());
    let leaked: Value = serde_json::from_str(
        &bao.cli(&["token", "create", "-format=json", "-policy=default", "-ttl=1h"])
            .unwrap(),
    )
    .unwrap();
    let leaked = leaked["auth"]["client_token"].as_str().unwrap().to_owned();

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("vault.env"), format!("VAULT_TOKEN={leaked}\n")).unwrap();
    let ca = bao.ca.to_str().unwrap();
    let verify = [".", "--verify", "--vault-addr", bao.addr.as_str()];

    // With the CA: the token is looked up and found live, through VAULT_CACERT or the flag.
    let (code, report, stderr) = scan(repo.path(), &verify, &[("VAULT_CACERT", ca)]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(state(&report, "vault.env").0, "true", "{report:#}\n{stderr}");
    let with_flag: Vec<&str> = verify.iter().copied().chain(["--vault-cacert", ca]).collect();
    let (_, report, stderr) = scan(repo.path(), &with_flag, &[]);
    assert_eq!(state(&report, "vault.env").0, "true", "{report:#}\n{stderr}");
    let (_, report, stderr) = scan(repo.path(), &verify, &[("BAO_CACERT", ca)]);
    assert_eq!(state(&report, "vault.env").0, "true", "{report:#}\n{stderr}");

    // Without it: unknown, and the warning says it is the certificate.
    let (code, report, stderr) = scan(repo.path(), &verify, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(state(&report, "vault.env").0, "unknown", "{report:#}");
    assert!(
        stderr.contains("stays unverified") && stderr.contains("certificate") && stderr.contains("VAULT_CACERT"),
        "{stderr}"
    );
    assert!(!stderr.contains(&leaked), "no token on stderr: {stderr}");

    // The fingerprint registry at the same Vault: read with the CA (empty here: a clean
    // scan of owned secrets), an error without it.
    let key = repo.path().join("fp.key");
    std::fs::write(&key, unique("fingerprint-key-of-32-bytes-or-more-")).unwrap();
    let token_file = certs.path().join("token");
    std::fs::write(&token_file, &bao.token).unwrap();
    let registry = [
        "--verify",
        "--vault-addr",
        bao.addr.as_str(),
        "--vault-token-file",
        token_file.to_str().unwrap(),
        "--fingerprint-key-file",
        key.to_str().unwrap(),
        "vault.env",
    ];
    let (code, report, stderr) = scan(repo.path(), &registry, &[("VAULT_CACERT", ca)]);
    assert_eq!((code, state(&report, "vault.env").0.as_str()), (1, "true"), "{stderr}");
    let out = Command::new(crate::support::bin("sidekey-scan"))
        .args(registry)
        .current_dir(repo.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach Vault") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains(&bao.token), "no token on stderr: {stderr}");
}
