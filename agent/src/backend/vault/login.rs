//! The vault backend's login loop: log in, renew the agent's token at about two thirds of
//! its TTL, log in again when a renewal comes back capped by the token's max TTL, fails, or
//! a call was refused (403); back off between failed logins (1 s doubling to 8 s). When the
//! node in use fails, move to the active one with the same token.
//!
//! The decisions live here; the I/O is the [`Auth`] trait, which [`super::Session`]
//! implements against Vault and the tests implement with a fake on paused tokio time.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Error, Token};
use crate::backoff;

/// What the login loop does at Vault.
#[async_trait]
pub(super) trait Auth: Send + Sync {
    /// The backend's name, for logs.
    fn backend(&self) -> &str;
    /// Logs in; on success, calls go out with the new token.
    async fn log_in(&self) -> Result<Token, Error>;
    /// Renews `token` (`auth/token/renew-self`); answers the TTL granted.
    async fn renew_token(&self, token: &Token) -> Result<Duration, Error>;
    /// Moves to the active node, keeping `token`; false when that failed.
    async fn move_to_active(&self, token: &Token) -> bool;
    /// Records why logging in failed: calls fail with it until a login succeeds.
    fn login_failed(&self, e: &Error);
    /// Notified when Vault refused a call: log in again.
    fn reauth(&self) -> &Notify;
    /// Notified when the node in use failed: find the active one.
    fn moved(&self) -> &Notify;
}

/// Runs forever (the backend aborts it on shutdown).
pub(super) async fn keep_logged_in(auth: &impl Auth) {
    let mut failures = 0u32;
    loop {
        match auth.log_in().await {
            Ok(token) => {
                failures = 0;
                tracing::info!(backend = %auth.backend(), ttl_s = token.ttl.as_secs(), "logged in to Vault");
                keep_renewed(auth, token).await;
            }
            Err(e) => {
                tracing::warn!(backend = %auth.backend(), error = %e, "Vault login failed");
                auth.login_failed(&e);
                let wait = backoff::backoff(failures, rand::random());
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = auth.reauth().notified() => {}
                }
            }
        }
    }
}

/// Renews `token` at ~2/3 of its TTL, and follows the active node when the one in use fails;
/// returns when it must log in again.
async fn keep_renewed(auth: &impl Auth, token: Token) {
    let mut ttl = token.ttl;
    let mut renew_at = tokio::time::Instant::now() + backoff::renew_in(ttl, rand::random());
    loop {
        tokio::select! {
            // A token without TTL (e.g. root): only a refusal makes us log in again.
            _ = tokio::time::sleep_until(renew_at), if !ttl.is_zero() => {}
            _ = auth.reauth().notified() => return,
            _ = auth.moved().notified() => {
                if !auth.move_to_active(&token).await {
                    return;
                }
                continue;
            }
        }
        if !token.renewable {
            return;
        }
        match auth.renew_token(&token).await {
            // Less than 90 % of the token's TTL: capped by its max TTL, log in afresh.
            Ok(granted) if granted.as_secs() * 10 < token.ttl.as_secs() * 9 => return,
            Ok(granted) => {
                ttl = granted;
                renew_at = tokio::time::Instant::now() + backoff::renew_in(ttl, rand::random());
                tracing::debug!(backend = %auth.backend(), ttl_s = granted.as_secs(), "renewed Vault token");
            }
            Err(e) => {
                tracing::warn!(backend = %auth.backend(), error = %e, "Vault token renewal failed; logging in again");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use sidekey::SecretString;
    use tokio::time::{sleep, Instant};

    use super::*;
    use crate::backoff::MAX_BACKOFF;

    /// A Vault that logs in (after `failing_logins` refusals) with a token of `ttl`, and
    /// answers renewals from `grants` (the full TTL once they run out). Every call is logged
    /// with the second it happened.
    struct Fake {
        start: Instant,
        ttl: Duration,
        renewable: bool,
        failing_logins: Mutex<u32>,
        grants: Mutex<VecDeque<Result<Duration, Error>>>,
        calls: Mutex<Vec<(f64, &'static str)>>,
        reauth: Notify,
        moved: Notify,
    }

    impl Fake {
        fn new(ttl: u64, renewable: bool) -> Fake {
            Fake {
                start: Instant::now(),
                ttl: Duration::from_secs(ttl),
                renewable,
                failing_logins: Mutex::new(0),
                grants: Mutex::new(VecDeque::new()),
                calls: Mutex::new(Vec::new()),
                reauth: Notify::new(),
                moved: Notify::new(),
            }
        }

        fn log(&self, call: &'static str) {
            self.calls
                .lock()
                .unwrap()
                .push((self.start.elapsed().as_secs_f64(), call));
        }

        fn times(&self, call: &str) -> Vec<f64> {
            let calls = self.calls.lock().unwrap();
            calls.iter().filter(|(_, c)| *c == call).map(|(t, _)| *t).collect()
        }

        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().iter().map(|(_, c)| *c).collect()
        }
    }

    #[async_trait]
    impl Auth for Fake {
        fn backend(&self) -> &str {
            "fake"
        }

        async fn log_in(&self) -> Result<Token, Error> {
            let mut failing = self.failing_logins.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                self.log("login refused");
                return Err(Error::Permanent("invalid secret id".into()));
            }
            self.log("login");
            Ok(Token {
                value: SecretString::from("s.fake"),
                ttl: self.ttl,
                renewable: self.renewable,
            })
        }

        async fn renew_token(&self, _: &Token) -> Result<Duration, Error> {
            self.log("renew");
            self.grants.lock().unwrap().pop_front().unwrap_or(Ok(self.ttl))
        }

        async fn move_to_active(&self, _: &Token) -> bool {
            self.log("move");
            true
        }

        fn login_failed(&self, _: &Error) {
            self.log("failed");
        }

        fn reauth(&self) -> &Notify {
            &self.reauth
        }

        fn moved(&self) -> &Notify {
            &self.moved
        }
    }

    fn run(fake: &Arc<Fake>) -> tokio::task::JoinHandle<()> {
        let fake = fake.clone();
        tokio::spawn(async move { keep_logged_in(&*fake).await })
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_renewed_at_two_thirds_and_a_capped_renewal_means_a_new_login() {
        let fake = Arc::new(Fake::new(30, true));
        fake.grants
            .lock()
            .unwrap()
            .extend([Ok(Duration::from_secs(30)), Ok(Duration::from_secs(12))]);
        let task = run(&fake);
        sleep(Duration::from_secs(45)).await;
        assert_eq!(fake.calls(), ["login", "renew", "renew", "login"]);
        let (renewals, logins) = (fake.times("renew"), fake.times("login"));
        assert!((18.0..=20.0).contains(&renewals[0]), "{renewals:?}");
        assert!((18.0..=20.0).contains(&(renewals[1] - renewals[0])), "{renewals:?}");
        assert_eq!(logins[1], renewals[1], "logged in again at once");
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_or_a_refused_call_means_a_new_login_at_once() {
        let fake = Arc::new(Fake::new(30, true));
        fake.grants
            .lock()
            .unwrap()
            .push_back(Err(Error::Transient("sealed".into())));
        let task = run(&fake);
        sleep(Duration::from_secs(21)).await;
        assert_eq!(fake.calls(), ["login", "renew", "login"]);
        fake.reauth.notify_one();
        sleep(Duration::from_millis(1)).await;
        assert_eq!(fake.calls(), ["login", "renew", "login", "login"]);
        assert_eq!(fake.times("login")[2], 21.0);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn failed_logins_back_off_up_to_the_cap_and_a_refusal_cuts_the_wait_short() {
        let fake = Arc::new(Fake::new(30, true));
        *fake.failing_logins.lock().unwrap() = 6;
        let task = run(&fake);
        sleep(Duration::from_secs(40)).await;
        let refused = fake.times("login refused");
        assert_eq!(refused.len(), 6);
        assert_eq!(
            fake.times("failed").len(),
            6,
            "each failure is recorded for the callers"
        );
        let gaps: Vec<f64> = refused.windows(2).map(|w| w[1] - w[0]).collect();
        assert!((0.5..=1.0).contains(&gaps[0]), "{gaps:?}");
        assert!((1.0..=2.0).contains(&gaps[1]), "{gaps:?}");
        assert!((2.0..=4.0).contains(&gaps[2]), "{gaps:?}");
        assert!(
            gaps[3..].iter().all(|g| (4.0..=MAX_BACKOFF.as_secs_f64()).contains(g)),
            "{gaps:?}"
        );
        let login = fake.times("login");
        assert_eq!(login.len(), 1, "then a login: {:?}", fake.calls());
        assert!(login[0] - refused[5] <= MAX_BACKOFF.as_secs_f64());
        task.abort();

        // A refusal (e.g. the secret id was just fixed and a caller hit 403) retries at once.
        let fake = Arc::new(Fake::new(30, true));
        *fake.failing_logins.lock().unwrap() = 4;
        let task = run(&fake);
        sleep(Duration::from_secs(5)).await;
        let before = fake.times("login refused").len();
        fake.reauth.notify_one();
        sleep(Duration::from_millis(1)).await;
        assert_eq!(
            fake.times("login refused").len() + fake.times("login").len(),
            before + 1
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_node_moves_the_token_and_unrenewable_or_ttl_less_tokens_are_not_renewed() {
        let fake = Arc::new(Fake::new(30, false));
        let task = run(&fake);
        sleep(Duration::from_secs(5)).await;
        fake.moved.notify_one();
        sleep(Duration::from_secs(16)).await;
        // Moved with the same token; not renewable, so a new login at ~2/3 of its TTL.
        assert_eq!(fake.calls(), ["login", "move", "login"]);
        task.abort();

        let root = Arc::new(Fake::new(0, false));
        let task = run(&root);
        sleep(Duration::from_secs(3600)).await;
        assert_eq!(root.calls(), ["login"]);
        task.abort();
    }
}
