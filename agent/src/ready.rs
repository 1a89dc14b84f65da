//! Readiness: whether the agent has delivered everything its config asks for — every secret
//! served and every `[[file]]` written with its `on_change` run. systemd's `READY=1` and
//! `run --once` both wait on this one judgement, so the two can never disagree.
//!
//! A [`Readiness`] reads the [`Store`] and the delivery [`Status`]; it wakes on their update
//! channels (and re-checks every second, since a lease can run out without an event), so a
//! waiter costs nothing while nothing changes. What it reports names secrets and files and
//! the reasons the store and the file tasks recorded, never a value.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sidekey::SecretName;
use tokio::sync::watch;

use crate::delivery::{Outcome, Status};
use crate::store::Store;

/// How often the state is checked again when nothing reported a change.
const RECHECK: Duration = Duration::from_secs(1);

/// Where the agent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every secret served, every file delivered.
    Ready {
        /// How many secrets are served.
        secrets: usize,
        /// How many files are delivered.
        files: usize,
    },
    /// Something is not there yet; each line names a secret or file and why.
    Waiting(Vec<String>),
    /// A file failed in a way its task does not retry (a template naming a field the data
    /// lacks, an `on_change` that failed): only a new version of its secret can fix it. The
    /// lines name those files first, then whatever is still waiting.
    Failed(Vec<String>),
}

impl Progress {
    /// What is missing, one clause per secret or file, `; `-separated.
    pub fn missing(&self) -> String {
        match self {
            Progress::Ready { .. } => String::new(),
            Progress::Waiting(lines) | Progress::Failed(lines) => lines.join("; "),
        }
    }
}

/// A view of the store and the deliveries that answers [`Progress`].
pub struct Readiness {
    store: Arc<Store>,
    status: Arc<Status>,
    /// Every configured file and the secrets it renders.
    files: Vec<(PathBuf, Vec<SecretName>)>,
    store_updates: watch::Receiver<u64>,
    file_updates: watch::Receiver<u64>,
}

impl Readiness {
    /// Readiness of the secrets in `store` and the `files` (path, secrets) whose outcomes
    /// `status` records.
    pub fn new(store: Arc<Store>, status: Arc<Status>, files: Vec<(PathBuf, Vec<SecretName>)>) -> Self {
        Readiness {
            store_updates: store.updates(),
            file_updates: status.updates(),
            store,
            status,
            files,
        }
    }

    /// Where the agent stands now.
    pub fn check(&mut self) -> Progress {
        // Marked seen before reading, so a change made while checking wakes the next wait.
        self.store_updates.borrow_and_update();
        self.file_updates.borrow_and_update();
        let now = SystemTime::now();
        let mut waiting = Vec::new();
        let mut unserved = BTreeSet::new();
        for name in self.store.names() {
            if let Err(e) = self.store.read(name.as_str(), now) {
                unserved.insert(name.clone());
                waiting.push(e.to_string());
            }
        }
        let mut failed = Vec::new();
        for (file, secrets) in &self.files {
            let path = file.display();
            match self.status.outcome(file) {
                Outcome::Delivered(_) => {}
                Outcome::Failed { reason, retried: false } => failed.push(format!("file {path}: {reason}")),
                Outcome::Failed { reason, retried: true } => waiting.push(format!("file {path}: {reason} (retrying)")),
                // Its secrets' lines say why.
                Outcome::Pending if secrets.iter().any(|s| unserved.contains(s)) => {}
                Outcome::Pending => waiting.push(format!("file {path}: not written yet")),
            }
        }
        match (failed.is_empty(), waiting.is_empty()) {
            (true, true) => Progress::Ready {
                secrets: self.store.names().count(),
                files: self.files.len(),
            },
            (true, false) => Progress::Waiting(waiting),
            (false, _) => {
                failed.extend(waiting);
                Progress::Failed(failed)
            }
        }
    }

    /// Waits until something changed (or [`RECHECK`] passed).
    pub async fn changed(&mut self) {
        // The senders live in the store and the status, which `self` holds: `changed` never
        // fails, so this never spins.
        tokio::select! {
            _ = self.store_updates.changed() => {}
            _ = self.file_updates.changed() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }

    /// Waits until the agent is ready or a file failed for good (`run --once`).
    pub async fn settled(&mut self) -> Progress {
        loop {
            let progress = self.check();
            if !matches!(progress, Progress::Waiting(_)) {
                return progress;
            }
            self.changed().await;
        }
    }

    /// Waits until the agent is ready (`READY=1`): a failed file may still be fixed by its
    /// secret's next version, so a daemon keeps waiting. Answers how many secrets are served
    /// and files delivered.
    pub async fn ready(&mut self) -> (usize, usize) {
        loop {
            if let Progress::Ready { secrets, files } = self.check() {
                return (secrets, files);
            }
            self.changed().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Issued;
    use sidekey::{SecretData, SecretString};

    fn issued(v: &str) -> Issued {
        Issued::plain(SecretData::single("value", SecretString::from(v)), None)
    }

    #[tokio::test]
    async fn ready_once_every_secret_is_served_and_no_file_is_configured() {
        let (a, b) = (SecretName::new("a"), SecretName::new("b"));
        let store = Arc::new(Store::new([a.clone(), b.clone()]));
        let mut ready = Readiness::new(store.clone(), Arc::default(), Vec::new());
        store.publish(&a, issued("x"), SystemTime::now());
        store.fail(&b, "backend down".into());
        let Progress::Waiting(lines) = ready.check() else {
            panic!("b is not served")
        };
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("secret b") && lines[0].contains("backend down"),
            "{lines:?}"
        );

        let waiter = tokio::spawn(async move { ready.ready().await });
        tokio::task::yield_now().await;
        store.publish(&b, issued("y"), SystemTime::now());
        let progress = tokio::time::timeout(Duration::from_millis(500), waiter)
            .await
            .expect("woken by the publish, not the periodic re-check")
            .unwrap();
        assert_eq!(progress, (2, 0));
    }

    #[tokio::test]
    async fn a_file_waits_for_its_secret_and_is_named_once_the_secret_is_served() {
        let db = SecretName::new("db");
        let store = Arc::new(Store::new([db.clone()]));
        let path = PathBuf::from("/run/app/db.env");
        let mut ready = Readiness::new(store.clone(), Arc::default(), vec![(path, vec![db.clone()])]);
        let Progress::Waiting(lines) = ready.check() else {
            panic!()
        };
        assert_eq!(lines.len(), 1, "only the secret: {lines:?}");
        assert!(lines[0].contains("secret db"), "{lines:?}");
        store.publish(&db, issued("x"), SystemTime::now());
        assert_eq!(
            ready.check(),
            Progress::Waiting(vec!["file /run/app/db.env: not written yet".into()])
        );
    }

    #[test]
    fn a_failed_on_change_is_final_and_a_failed_write_is_waited_for() {
        let db = SecretName::new("db");
        let store = Arc::new(Store::new([db.clone()]));
        store.publish(&db, issued("x"), SystemTime::now());
        let status = Arc::new(Status::default());
        let spec = |path: &str| sidekey::config::FileSpec {
            path: PathBuf::from(path),
            secret: Some(db.clone()),
            secrets: vec![db.clone()],
            template: None,
            mode: 0o600,
            owner: None,
            group: None,
            on_change: Vec::new(),
        };
        let (a, b) = (spec("/a"), spec("/b"));
        let mut ready = Readiness::new(
            store,
            status.clone(),
            vec![(a.path.clone(), vec![db.clone()]), (b.path.clone(), vec![db.clone()])],
        );
        status.delivered(&a.path, &[1], false);
        let write = crate::delivery::Error::Write(sidekey::atomic::WriteError {
            what: "cannot rename /b".into(),
            source: std::io::Error::other("disk full"),
            ownership: false,
        });
        status.fail(&b, &write);
        let Progress::Waiting(lines) = ready.check() else {
            panic!()
        };
        assert!(
            lines[0].starts_with("file /b: ") && lines[0].ends_with("(retrying)"),
            "{lines:?}"
        );

        let on_change = crate::delivery::Error::OnChange {
            program: "/bin/false".into(),
            how: "failed: exit status: 1".into(),
            result: "failed",
        };
        status.fail(&a, &on_change);
        let Progress::Failed(lines) = ready.check() else {
            panic!()
        };
        assert!(
            lines[0].starts_with("file /a: on_change \"/bin/false\" failed"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("file /b: "), "{lines:?}");
    }
}
