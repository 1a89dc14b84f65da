//! `sidekey-agent health [--socket PATH] [--timeout D]`: one `GET /v1/health` through the typed
//! client, for probes and scripts. Exit 0 when the agent answers `ok`; otherwise exit 1 with
//! one line saying why: the failing secrets and files, a refusal, or that no agent answers at
//! PATH. Fast by construction: no config, no logging set-up, one connection, a short time
//! limit.

use std::path::Path;
use std::time::Duration;

use sidekey::api::Health;
use sidekey_client::blocking::Client;
use sidekey_client::Error;

use super::one_line;

pub fn health(socket: &Path, timeout: Duration) -> anyhow::Result<()> {
    let answer = Client::new(socket)?.with_timeout(timeout).health();
    let health = answer.map_err(|e| anyhow::anyhow!(one_line(&unreachable(socket, &e))))?;
    if health.status == "ok" {
        println!("ok");
        return Ok(());
    }
    anyhow::bail!(one_line(&degraded(&health)))
}

/// Why no health answer came, in the words a probe's log should show.
fn unreachable(socket: &Path, e: &Error) -> String {
    let at = socket.display();
    match e {
        Error::Connect { source, .. } => {
            let why = match source.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (nothing accepts on the socket)".to_owned()
                }
                std::io::ErrorKind::NotFound => "no such socket".to_owned(),
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (the socket is 0660: run as the agent's user or its socket_group)".to_owned()
                }
                _ => source.to_string(),
            };
            format!("no agent at {at}: {why}")
        }
        Error::Agent { status, message } => format!("the agent at {at} refused ({status}): {message}"),
        other => other.to_string(),
    }
}

/// `degraded: db: …; file /run/app/db.env (secret db): …; proxy …` — every failing secret, file
/// and proxy.
fn degraded(health: &Health) -> String {
    let secrets = health.failing.iter().map(|f| {
        if f.served {
            format!("secret {} is served, but {}", f.name, f.reason)
        } else {
            // The store's reason already names the secret: "secret db is not available yet: …".
            f.reason.clone()
        }
    });
    let files = health
        .files
        .iter()
        .map(|f| format!("file {} (secret {}): {}", f.path, f.secret, f.reason));
    let proxies = health
        .proxies
        .iter()
        .map(|p| format!("proxy {} (upstream {}): {}", p.listen, p.upstream, p.reason));
    let what: Vec<String> = secrets.chain(files).chain(proxies).collect();
    if what.is_empty() {
        format!("{}: the agent named no failing secret or file", health.status)
    } else {
        format!("{}: {}", health.status, what.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::api::{FailingFile, FailingSecret};

    #[test]
    fn every_failing_secret_and_file_is_named() {
        let health = Health {
            status: "degraded".into(),
            failing: vec![
                FailingSecret {
                    name: "db".into(),
                    reason: "secret db is not available yet: issue failed: connection refused".into(),
                    served: false,
                },
                FailingSecret {
                    name: "api".into(),
                    reason: "renew failed: 503".into(),
                    served: true,
                },
            ],
            files: vec![FailingFile {
                path: "/run/app/db.env".into(),
                secret: "db".into(),
                reason: "template names unknown field \"pasword\"".into(),
            }],
            proxies: vec![sidekey::api::FailingProxy {
                listen: "/run/sidekey/.s.PGSQL.5432".into(),
                secret: "db".into(),
                upstream: "db.internal:5432".into(),
                reason: "cannot connect to db.internal:5432 (prefer): Connection refused".into(),
            }],
        };
        assert_eq!(
            degraded(&health),
            "degraded: secret db is not available yet: issue failed: connection refused; \
             secret api is served, but renew failed: 503; \
             file /run/app/db.env (secret db): template names unknown field \"pasword\"; \
             proxy /run/sidekey/.s.PGSQL.5432 (upstream db.internal:5432): cannot connect to db.internal:5432 (prefer): Connection refused"
        );
    }

    #[test]
    fn a_missing_socket_and_a_refused_connection_say_so() {
        let e = |kind: std::io::ErrorKind| Error::Connect {
            socket: "/run/s.sock".into(),
            source: kind.into(),
        };
        let socket = Path::new("/run/s.sock");
        assert_eq!(
            unreachable(socket, &e(std::io::ErrorKind::NotFound)),
            "no agent at /run/s.sock: no such socket"
        );
        assert!(unreachable(socket, &e(std::io::ErrorKind::ConnectionRefused))
            .starts_with("no agent at /run/s.sock: connection refused"));
    }

    #[test]
    fn one_line_stays_one_line() {
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
    }
}
