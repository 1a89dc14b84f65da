//! Liveness: `--verify` asks a leaked credential's issuer whether it still works, so a report
//! says `verified = true` (it works), `false` (the issuer refused it) or `unknown` (nothing
//! could tell: no pair, no address, a network error — with a warning on stderr).
//!
//! - **AWS access key pairs** ([`crate::issuer::aws`]): an access key id and a secret access
//!   key found in the same file are paired, nearest line first, and tried with STS
//!   `GetCallerIdentity`. Temporary ids (`ASIA`) are only tried with an `aws-session-token`
//!   from the same file.
//! - **Vault/OpenBao tokens** (family `vault`, `hvs.`/`hvb.`/`s.`/`b.`): with `--vault-addr`,
//!   `lookup-self` with the token itself ([`crate::issuer::vault`]).
//!
//! This module decides what to ask, how often (each credential once, at most [`MAX_CALLS`]
//! calls a scan) and what the answers make of the findings; the issuers' modules ask.
//! Broker-owned findings are already proven by fingerprint and are left alone. Nothing here
//! runs without `--verify`, and the values never leave this process except as the credential
//! they are, presented to their own issuer (an AWS request is signed, the secret is not sent).

use std::collections::HashMap;

use crate::finding::{Finding, Verified};
use crate::issuer::{aws, vault, Answer};

/// Most calls one scan makes to issuers; past it, findings stay `unknown` (with a warning).
pub const MAX_CALLS: usize = 200;

/// Where the issuers are.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--aws-endpoint-url`: STS and IAM at this URL instead of AWS's (an emulator, a VPC
    /// endpoint).
    pub aws_endpoint_url: Option<String>,
    /// `--vault-addr`: where leaked Vault/OpenBao tokens are looked up (and revoked).
    pub vault_addr: Option<String>,
    /// `--vault-cacert`: Vault's CA (PEM), besides the system's roots; else `VAULT_CACERT` /
    /// `BAO_CACERT`.
    pub vault_cacert: Option<std::path::PathBuf>,
}

/// What `--verify` proved live and the broker does not own: what `--revoke` acts on.
#[derive(Debug, Default)]
pub struct Live {
    /// Working AWS access keys.
    pub aws: Vec<LiveAwsKey>,
    /// Working Vault tokens.
    pub vault: Vec<LiveVaultToken>,
}

/// One working AWS access key.
#[derive(Debug)]
pub struct LiveAwsKey {
    /// Indices of the findings of its access key id (the same id may be found more than once).
    pub ids: Vec<usize>,
    /// Indices of the secret access key findings that worked with it.
    pub secrets: Vec<usize>,
    /// The identity STS named (`arn:aws:iam::ACCOUNT:user/NAME`).
    pub arn: Option<String>,
}

impl LiveAwsKey {
    /// The access key id.
    pub fn key_id<'f>(&self, findings: &'f [Finding]) -> &'f str {
        findings[self.ids[0]].secret.expose()
    }

    /// Every finding of this key: ids, then secrets.
    pub fn findings(&self) -> impl Iterator<Item = usize> + '_ {
        self.ids.iter().chain(&self.secrets).copied()
    }

    /// The IAM user name in the ARN STS answered, if it names a user.
    pub fn arn_user(&self) -> Option<&str> {
        self.arn
            .as_deref()?
            .split_once(":user/")
            .map(|(_, u)| u.rsplit('/').next().unwrap_or(u))
    }
}

/// One working Vault token.
#[derive(Debug)]
pub struct LiveVaultToken {
    /// Indices of its findings.
    pub findings: Vec<usize>,
    /// The token's accessor (not a secret: it can look up and revoke, not use, the token).
    pub accessor: Option<String>,
    /// The token's display name.
    pub display_name: Option<String>,
}

/// What is known of a finding, weakest first: the strongest answer of any attempt wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Untried,
    Dead,
    Unknown,
    Live,
}

/// Checks the findings' liveness (see the module doc), sets `verified`, warns on stderr for
/// what could not be told, and answers what is live.
pub fn check(findings: &mut [Finding], opts: &Options) -> Live {
    let mut run = Run {
        states: vec![State::Untried; findings.len()],
        calls: 0,
        warnings: Vec::new(),
        live: Live::default(),
    };
    run.aws(findings, opts);
    run.vault(findings, opts);
    for (f, state) in findings.iter_mut().zip(&run.states) {
        match state {
            State::Live => f.verified = Verified::Live,
            State::Dead => f.verified = Verified::Dead,
            State::Unknown | State::Untried => {}
        }
    }
    for w in &run.warnings {
        eprintln!("sidekey-scan: warning: {}", crate::report::printable(w));
    }
    run.live
}

/// One `--verify` pass.
struct Run {
    states: Vec<State>,
    calls: usize,
    warnings: Vec<String>,
    live: Live,
}

impl Run {
    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn mark(&mut self, i: usize, state: State) {
        self.states[i] = self.states[i].max(state);
    }

    /// Whether another call may be made (warns once when the budget is spent).
    fn budget(&mut self) -> bool {
        if self.calls >= MAX_CALLS {
            self.warn(format!(
                "liveness checks stopped after {MAX_CALLS} calls; the rest stay unknown"
            ));
            return false;
        }
        self.calls += 1;
        true
    }

    /// AWS access key pairs, per file.
    fn aws(&mut self, findings: &[Finding], opts: &Options) {
        let pairs = aws::pairs(findings);
        if pairs.is_empty() {
            return;
        }
        let runtime = match aws::runtime() {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!("AWS keys not checked: {e}"));
                return;
            }
        };
        runtime.block_on(async {
            let base = aws::sdk_config(opts.aws_endpoint_url.as_deref(), false).await;
            // (id, secret, token) → answer: the same pair found twice is asked once.
            let mut asked: HashMap<(&str, &str, Option<&str>), Answer> = HashMap::new();
            // id → index in live.aws
            let mut keys: HashMap<&str, usize> = HashMap::new();
            for pair in &pairs {
                let id = &findings[pair.id];
                let token = pair.token.map(|t| &findings[t]);
                for &s in &pair.secrets {
                    let secret = &findings[s];
                    let key = (
                        id.secret.expose(),
                        secret.secret.expose(),
                        token.map(|t| t.secret.expose()),
                    );
                    let answer = match asked.get(&key) {
                        Some(a) => a.clone(),
                        None if !self.budget() => break,
                        None => {
                            let a = aws::caller_identity(&base, id, secret, token).await;
                            asked.insert(key, a.clone());
                            a
                        }
                    };
                    match answer {
                        Answer::Live { who, .. } => {
                            self.mark(pair.id, State::Live);
                            self.mark(s, State::Live);
                            if let Some(t) = pair.token {
                                self.mark(t, State::Live);
                            }
                            let k = *keys.entry(id.secret.expose()).or_insert_with(|| {
                                self.live.aws.push(LiveAwsKey {
                                    ids: Vec::new(),
                                    secrets: Vec::new(),
                                    arn: who,
                                });
                                self.live.aws.len() - 1
                            });
                            let key = &mut self.live.aws[k];
                            if !key.ids.contains(&pair.id) {
                                key.ids.push(pair.id);
                            }
                            if !key.secrets.contains(&s) {
                                key.secrets.push(s);
                            }
                            break;
                        }
                        Answer::Dead => {
                            self.mark(pair.id, State::Dead);
                            self.mark(s, State::Dead);
                        }
                        Answer::Unknown(why) => {
                            self.mark(pair.id, State::Unknown);
                            self.mark(s, State::Unknown);
                            self.warn(format!("an AWS key pair in {} stays unverified: {why}", id.path));
                        }
                    }
                }
            }
        });
    }

    /// Vault/OpenBao tokens, with `--vault-addr`.
    fn vault(&mut self, findings: &[Finding], opts: &Options) {
        let tokens: Vec<usize> = (0..findings.len())
            .filter(|&i| findings[i].owned_secret.is_none() && is_vault_token(&findings[i]))
            .collect();
        if tokens.is_empty() {
            return;
        }
        let Some(addr) = &opts.vault_addr else {
            self.warn(format!(
                "{} Vault token finding(s) not checked: no --vault-addr",
                tokens.len()
            ));
            return;
        };
        let client = match vault::Client::for_tokens(addr, opts.vault_cacert.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                self.warn(format!("{} Vault token finding(s) not checked: {e:#}", tokens.len()));
                return;
            }
        };
        // token → answer, and → index in live.vault: each token is asked (and revoked) once
        let mut asked: HashMap<&str, Answer> = HashMap::new();
        let mut live: HashMap<&str, usize> = HashMap::new();
        for i in tokens {
            let f = &findings[i];
            let answer = match asked.get(f.secret.expose()) {
                Some(a) => a.clone(),
                None if !self.budget() => break,
                None => {
                    let a = client.lookup_self(f.secret.expose());
                    asked.insert(f.secret.expose(), a.clone());
                    a
                }
            };
            match answer {
                Answer::Live { who, accessor } => {
                    self.mark(i, State::Live);
                    let k = *live.entry(f.secret.expose()).or_insert_with(|| {
                        self.live.vault.push(LiveVaultToken {
                            findings: Vec::new(),
                            accessor,
                            display_name: who,
                        });
                        self.live.vault.len() - 1
                    });
                    self.live.vault[k].findings.push(i);
                }
                Answer::Dead => self.mark(i, State::Dead),
                Answer::Unknown(why) => {
                    self.mark(i, State::Unknown);
                    self.warn(format!("a Vault token in {} stays unverified: {why}", f.path));
                }
            }
        }
    }
}

/// Whether a finding is a Vault/OpenBao token that `lookup-self` can tell about.
pub fn is_vault_token(f: &Finding) -> bool {
    f.family == "vault"
        && ["hvs.", "hvb.", "s.", "b."]
            .iter()
            .any(|p| f.secret.expose().starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::finding::test_finding as finding;

    #[test]
    fn vault_tokens_are_told_by_family_and_prefix() {
        assert!(is_vault_token(&finding(
            "vault-service-token",
            "vault",
            "x",
            1,
            "hvs.abc"
        )));
        assert!(is_vault_token(&finding(
            "vault-legacy-service-token",
            "vault",
            "x",
            1,
            "s.abc"
        )));
        assert!(!is_vault_token(&finding("consul-acl-token", "vault", "x", 1, "0b1c")));
        assert!(!is_vault_token(&finding("x", "saas", "x", 1, "hvs.abc")));
    }

    #[test]
    fn the_strongest_answer_wins() {
        assert!(State::Live > State::Unknown && State::Unknown > State::Dead && State::Dead > State::Untried);
    }
}
