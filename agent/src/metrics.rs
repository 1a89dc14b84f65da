//! Prometheus metrics (`GET /metrics`) through the `metrics` facade. Labels are secret names,
//! routes, actions and configured file paths only — never a value, a lease id or a raw
//! request path.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `sidekey_requests_total` | route, status | HTTP requests answered |
//! | `sidekey_request_duration_seconds` | route | time to answer (summary) |
//! | `sidekey_fetches_total` | secret | values fetched or credentials issued |
//! | `sidekey_renewals_total` | secret | leases renewed |
//! | `sidekey_reissues_total` | secret | credentials replaced before expiry |
//! | `sidekey_revocations_total` | secret | old leases revoked |
//! | `sidekey_rotations_total` | secret | rotations asked of the source (`rotate_every`) |
//! | `sidekey_failures_total` | secret, action | failed fetch/renew/reissue/revoke |
//! | `sidekey_refusals_total` | route | requests refused by the access policy |
//! | `sidekey_secret_version` | secret | served version |
//! | `sidekey_secret_expiry_seconds` | secret | seconds until the served credential expires |
//! | `sidekey_secret_up` | secret | 1 when the secret can be served |
//! | `sidekey_file_renders_total` | file, result | `[[file]]` renders: `written`, `unchanged` (the file already held that text), `error` |
//! | `sidekey_file_commands_total` | file, result | `[[file]] on_change` runs: `ok`, `failed`, `timeout` |

use std::time::{Duration, SystemTime};

use hyper::StatusCode;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sidekey::SecretName;

use crate::store::Store;

/// The installed recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process-wide recorder (once per process) and, on the current runtime, the
    /// task that folds recorded latencies into their summaries every second (without it
    /// they would pile up in memory between scrapes).
    pub fn install() -> anyhow::Result<Self> {
        let handle = PrometheusBuilder::new().install_recorder()?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Metrics { handle })
    }

    /// The text exposition, with per-secret gauges brought up to date.
    pub fn render(&self, store: &Store) -> String {
        let now = SystemTime::now();
        for name in store.names() {
            let label = name.as_str().to_owned();
            match store.read(name.as_str(), now) {
                Ok(served) => {
                    metrics::gauge!("sidekey_secret_up", "secret" => label.clone()).set(1.0);
                    metrics::gauge!("sidekey_secret_version", "secret" => label.clone()).set(served.version as f64);
                    if let Some(lease) = &served.lease {
                        metrics::gauge!("sidekey_secret_expiry_seconds", "secret" => label)
                            .set(lease.remaining(now).as_secs_f64());
                    }
                }
                Err(_) => {
                    metrics::gauge!("sidekey_secret_up", "secret" => label.clone()).set(0.0);
                    metrics::gauge!("sidekey_secret_expiry_seconds", "secret" => label).set(0.0);
                }
            }
        }
        self.handle.render()
    }
}

/// Counts and times one answered request. Labels are static strings: nothing is allocated.
pub fn request(route: &'static str, status: StatusCode, elapsed: Duration) {
    let status = match status.as_u16() {
        200 => "200",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        500 => "500",
        503 => "503",
        _ => "other",
    };
    metrics::counter!("sidekey_requests_total", "route" => route, "status" => status).increment(1);
    metrics::histogram!("sidekey_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
}

/// Counts one scheduler event (`fetches`, `renewals`, `reissues`, `revocations`).
pub fn count(event: &'static str, secret: &SecretName) {
    let name = match event {
        "fetches" => "sidekey_fetches_total",
        "renewals" => "sidekey_renewals_total",
        "reissues" => "sidekey_reissues_total",
        "rotations" => "sidekey_rotations_total",
        _ => "sidekey_revocations_total",
    };
    metrics::counter!(name, "secret" => secret.as_str().to_owned()).increment(1);
}

/// Counts one failed action on a secret.
pub fn failure(action: &'static str, secret: &SecretName) {
    metrics::counter!("sidekey_failures_total", "secret" => secret.as_str().to_owned(), "action" => action)
        .increment(1);
}

/// Counts one `[[file]]` render (`written`, `unchanged`, `error`); `file` is the configured path.
pub fn file_render(file: &str, result: &'static str) {
    metrics::counter!("sidekey_file_renders_total", "file" => file.to_owned(), "result" => result).increment(1);
}

/// Counts one `[[file]] on_change` run (`ok`, `failed`, `timeout`).
pub fn file_command(file: &str, result: &'static str) {
    metrics::counter!("sidekey_file_commands_total", "file" => file.to_owned(), "result" => result).increment(1);
}
