//! Prometheus metrics (`GET /metrics`) through the `metrics` facade. Labels are secret names,
//! routes, actions and configured file paths only — never a value, a lease id or a raw
//! request path.
//!
//! Every metric has a `# HELP` line (described once at install, from [`COUNTERS`], [`GAUGES`] and [`HISTOGRAMS`]).
//! Request latency is a histogram with fixed buckets ([`LATENCY_BUCKETS`]), so that a fleet's
//! agents can be aggregated (`histogram_quantile` over a `sum by (le)`); a summary's quantiles
//! cannot be.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `sidekey_build_info` | version, commit | always 1; the running build |
//! | `sidekey_requests_total` | route, status | HTTP requests answered |
//! | `sidekey_request_duration_seconds` | route | time to answer (histogram) |
//! | `sidekey_fetches_total` | secret | values fetched or credentials issued |
//! | `sidekey_renewals_total` | secret | leases renewed |
//! | `sidekey_reissues_total` | secret | credentials replaced before expiry |
//! | `sidekey_revocations_total` | secret | old leases revoked |
//! | `sidekey_rotations_total` | secret | rotations asked of the source (`rotate_every`) |
//! | `sidekey_failures_total` | secret, action | failed fetch/renew/reissue/revoke |
//! | `sidekey_refusals_total` | route | requests refused (tokens, access policy, busy verifying) |
//! | `sidekey_token_checks_total` | result | presented tokens: `accepted`, `refused` (argon2 ran), `accepted_remembered`, `refused_remembered` (no argon2 of their own), `busy` (429) |
//! | `sidekey_registry_publications_total` | | fingerprint registry snapshots published |
//! | `sidekey_secret_version` | secret | served version |
//! | `sidekey_secret_expiry_seconds` | secret | seconds until the served credential expires |
//! | `sidekey_secret_up` | secret | 1 when the secret can be served |
//! | `sidekey_file_renders_total` | file, result | `[[file]]` renders: `written`, `unchanged` (the file already held that text), `error` |
//! | `sidekey_file_commands_total` | file, result | `[[file]] on_change` runs: `ok`, `failed`, `timeout` |
//! | `sidekey_proxy_sessions_open` | proxy | `[[proxy]]` sessions open now (the proxy label is its socket path) |
//! | `sidekey_proxy_sessions_total` | proxy | sessions logged in upstream |
//! | `sidekey_proxy_refused_total` | proxy, reason | connections turned away: `access`, `unavailable`, `protocol`, `busy` |
//! | `sidekey_proxy_upstream_failures_total` | proxy | logins that failed at the database server |
//! | `sidekey_proxy_bytes_total` | proxy, direction | bytes relayed, `to_server` and `to_client` |
//! | `sidekey_proxy_sessions_ended_total` | proxy, reason | sessions the agent ended: `expired`, `revoked`, `stopping` |
//! | `sidekey_proxy_cancels_total` | proxy | cancel requests forwarded |

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sidekey::SecretName;

use crate::store::Store;

/// Request latency buckets, in seconds: 100 µs (a cached read) to 1 s (a backend call), then
/// 5 s to 60 s for long polls (`?wait=`), which are answered when a version arrives or at
/// their timeout.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0,
];

/// `# HELP` texts, by kind of metric: (name, help).
const COUNTERS: &[(&str, &str)] = &[
    ("sidekey_requests_total", "HTTP requests answered, by route and status."),
    (
        "sidekey_connections_refused_total",
        "Connections closed at once because their listener held its share of the open-file limit, by listener.",
    ),
    (
        "sidekey_fetches_total",
        "Values fetched or credentials issued, by secret.",
    ),
    ("sidekey_renewals_total", "Leases renewed, by secret."),
    (
        "sidekey_reissues_total",
        "Credentials replaced before they expire, by secret.",
    ),
    ("sidekey_revocations_total", "Old leases revoked, by secret."),
    (
        "sidekey_rotations_total",
        "Rotations asked of the source (rotate_every), by secret.",
    ),
    (
        "sidekey_failures_total",
        "Failed fetch, renew, reissue or revoke actions, by secret and action.",
    ),
    (
        "sidekey_refusals_total",
        "Requests refused (tokens, access policy, too many token verifications), by route.",
    ),
    (
        "sidekey_token_checks_total",
        "Presented tokens by result: accepted or refused by argon2id, accepted_remembered or refused_remembered without an argon2id run of their own, busy (429, verification queue full).",
    ),
    (
        "sidekey_registry_publications_total",
        "Fingerprint registry snapshots published.",
    ),
    (
        "sidekey_file_renders_total",
        "[[file]] renders, by file and result (written, unchanged, error).",
    ),
    (
        "sidekey_file_commands_total",
        "[[file]] on_change runs, by file and result (ok, failed, timeout).",
    ),
];
const GAUGES: &[(&str, &str)] = &[
    ("sidekey_build_info", "Always 1; the labels name the running build."),
    ("sidekey_secret_version", "Version of the value served, by secret."),
    (
        "sidekey_secret_expiry_seconds",
        "Seconds until the served credential expires, by secret.",
    ),
    ("sidekey_secret_up", "1 when the secret can be served, else 0."),
];
const HISTOGRAMS: &[(&str, &str)] = &[(
    "sidekey_request_duration_seconds",
    "Time to answer an HTTP request in seconds, by route.",
)];

/// The installed recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Answered requests, by route and status.
    pub requests: Arc<Requests>,
}

impl Metrics {
    /// Installs the process-wide recorder (once per process), describes every metric, sets
    /// `sidekey_build_info`, and starts on the current runtime the task that folds recorded
    /// latencies into their buckets every second (without it they would pile up in memory
    /// between scrapes). `routes` are the server's route labels; `owned` the metrics other
    /// rooms record (the proxies'), described here with the rest, so this module depends on
    /// none of them.
    pub fn install(routes: &'static [&'static str], owned: Owned) -> anyhow::Result<Self> {
        let handle = builder()?.install_recorder()?;
        describe(owned);
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Metrics {
            handle,
            requests: Arc::new(Requests::new(routes)),
        })
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

/// The exporter's settings: latency as a histogram with [`LATENCY_BUCKETS`].
fn builder() -> anyhow::Result<PrometheusBuilder> {
    Ok(PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full("sidekey_request_duration_seconds".into()),
        &LATENCY_BUCKETS,
    )?)
}

/// Metrics another room records: (name, `# HELP` text) of its counters and gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owned {
    /// Counters.
    pub counters: &'static [(&'static str, &'static str)],
    /// Gauges.
    pub gauges: &'static [(&'static str, &'static str)],
}

/// Gives every metric its `# HELP` line and sets `sidekey_build_info`.
fn describe(owned: Owned) {
    for &(name, help) in COUNTERS.iter().chain(owned.counters) {
        metrics::describe_counter!(name, help);
    }
    for &(name, help) in GAUGES.iter().chain(owned.gauges) {
        metrics::describe_gauge!(name, help);
    }
    for &(name, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, help);
    }
    metrics::gauge!(
        "sidekey_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("SIDEKEY_COMMIT")
    )
    .set(1.0);
}

/// The `status` label of `sidekey_requests_total`.
const STATUSES: [&str; 11] = [
    "200", "304", "400", "401", "403", "404", "405", "429", "500", "503", "other",
];

/// Where `status` falls in [`STATUSES`].
fn status_index(status: StatusCode) -> usize {
    let code = status.as_str();
    STATUSES.iter().position(|s| *s == code).unwrap_or(STATUSES.len() - 1)
}

/// Counts and times answered requests (`sidekey_requests_total`,
/// `sidekey_request_duration_seconds`), keeping the handles: a route's histogram and each
/// (route, status) counter register with the recorder on their first request (so a series
/// appears once it has a sample), and every later request is two atomic updates instead of
/// two registry lookups, which hash the name and labels each time (about a microsecond a
/// request). A route outside the list given to [`Requests::new`] is recorded through the
/// registry.
pub struct Requests {
    routes: &'static [&'static str],
    handles: Box<[RouteHandles]>,
}

#[derive(Default)]
struct RouteHandles {
    latency: OnceLock<Histogram>,
    by_status: [OnceLock<Counter>; STATUSES.len()],
}

impl Requests {
    /// Handles for the route labels `routes`.
    pub fn new(routes: &'static [&'static str]) -> Self {
        Requests {
            routes,
            handles: routes.iter().map(|_| RouteHandles::default()).collect(),
        }
    }

    /// Counts and times one answered request.
    pub fn record(&self, route: &'static str, status: StatusCode, elapsed: Duration) {
        let status = status_index(status);
        let Some(at) = self.routes.iter().position(|r| *r == route) else {
            metrics::counter!("sidekey_requests_total", "route" => route, "status" => STATUSES[status]).increment(1);
            metrics::histogram!("sidekey_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
            return;
        };
        let handles = &self.handles[at];
        handles.by_status[status]
            .get_or_init(|| metrics::counter!("sidekey_requests_total", "route" => route, "status" => STATUSES[status]))
            .increment(1);
        handles
            .latency
            .get_or_init(|| metrics::histogram!("sidekey_request_duration_seconds", "route" => route))
            .record(elapsed.as_secs_f64());
    }
}

/// A counter with one label whose values are known in advance, keeping a handle per value:
/// each registers with the recorder on its first increment (so a series appears once it has
/// a sample); later increments are one atomic update, not a registry lookup.
pub struct LabelledCounter {
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    handles: Box<[OnceLock<Counter>]>,
}

impl LabelledCounter {
    /// Counter `name` with `label` taking `values`.
    pub fn new(name: &'static str, label: &'static str, values: &'static [&'static str]) -> Self {
        LabelledCounter {
            name,
            label,
            values,
            handles: values.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds one to the series of `value`, which must be one of the values given to
    /// [`LabelledCounter::new`] (another is counted through the registry).
    pub fn increment(&self, value: &'static str) {
        let (name, label) = (self.name, self.label);
        match self.values.iter().position(|v| *v == value) {
            Some(at) => self.handles[at]
                .get_or_init(|| metrics::counter!(name, label => value))
                .increment(1),
            None => metrics::counter!(name, label => value).increment(1),
        }
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::StatusCode;

    #[test]
    fn latency_is_a_histogram_every_metric_has_help_and_the_build_is_named() {
        let recorder = super::builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            super::describe(super::Owned::default());
            // Kept handles, then a route outside the list (through the registry): the same series.
            let requests = super::Requests::new(&["secret"]);
            requests.record("secret", StatusCode::OK, Duration::from_micros(300));
            requests.record("secret", StatusCode::OK, Duration::from_micros(50));
            requests.record("other", StatusCode::NOT_FOUND, Duration::from_micros(300));
            requests.record("other", StatusCode::IM_A_TEAPOT, Duration::from_micros(300));
            let checks = super::LabelledCounter::new("sidekey_token_checks_total", "result", &["accepted"]);
            checks.increment("accepted");
            checks.increment("accepted");
            checks.increment("busy");
            super::count("fetches", &sidekey::SecretName::new("db"));
        });
        let text = handle.render();
        assert!(
            text.contains("# TYPE sidekey_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"sidekey_request_duration_seconds_bucket{route="secret",le="0.0005"} 2"#),
            "{text}"
        );
        for series in [
            r#"sidekey_requests_total{route="secret",status="200"} 2"#,
            r#"sidekey_requests_total{route="other",status="404"} 1"#,
            r#"sidekey_requests_total{route="other",status="other"} 1"#,
            r#"sidekey_token_checks_total{result="accepted"} 2"#,
            r#"sidekey_token_checks_total{result="busy"} 1"#,
        ] {
            assert!(text.contains(series), "no {series} in\n{text}");
        }
        assert!(
            !text.contains(r#"status="304""#),
            "a series appears with its first sample: {text}"
        );
        assert!(
            text.contains(r#"sidekey_request_duration_seconds_bucket{route="secret",le="0.00025"} 1"#),
            "{text}"
        );
        let build = format!(
            r#"sidekey_build_info{{version="{}",commit="{}"}} 1"#,
            env!("CARGO_PKG_VERSION"),
            env!("SIDEKEY_COMMIT")
        );
        assert!(text.contains(&build), "{text}");
        for name in ["sidekey_requests_total", "sidekey_fetches_total", "sidekey_build_info"] {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP line:\n{text}"
            );
        }
    }
}
