//! `[registry]`: publishes the fingerprint registry (fingerprints, names, lease ids, validity —
//! never a value) to a Vault/OpenBao KV v2 entry, `MOUNT/data/PATH/NAME`, so that scanners on
//! other machines (CI) can tell the broker's credentials without this agent's socket. Written at
//! start, within a second of every change, and every minute; a failed write is retried.

use std::sync::Arc;
use std::time::Duration;

use sidekey::api::RegistrySnapshot;
use sidekey::config::RegistryConfig;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::fingerprints::Registry;

/// Changes within this long are published together.
const SETTLE: Duration = Duration::from_millis(200);
/// Republished at least this often, so a reader can tell a live agent from a dead one.
const EVERY: Duration = Duration::from_secs(60);
/// Wait after a failed write.
const RETRY: Duration = Duration::from_secs(5);

/// Publishes until `stop`.
pub async fn run(registry: Arc<Registry>, backend: Arc<dyn Backend>, config: RegistryConfig, stop: CancellationToken) {
    let path = format!("{}/{}", config.path, config.name);
    loop {
        let snapshot = RegistrySnapshot {
            agent: Some(config.name.clone()),
            published_at: Some(sidekey::audit::format_time(std::time::SystemTime::now())),
            ..registry.snapshot()
        };
        let snapshot = serde_json::to_value(snapshot).expect("a snapshot is plain JSON");
        let wait = match backend.write_kv(&config.mount, &path, snapshot).await {
            Ok(()) => {
                metrics::counter!("sidekey_registry_publications_total").increment(1);
                tracing::debug!(mount = %config.mount, %path, "fingerprint registry published");
                EVERY
            }
            Err(e) => {
                tracing::warn!(mount = %config.mount, %path, error = %e, "publishing the fingerprint registry failed; retrying");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = registry.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SETTLE) => {}
        }
    }
}
