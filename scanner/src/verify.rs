//! Liveness: `--verify` asks a leaked credential's issuer whether it still works, so a report
//! says `verified = true` (it works), `false` (the issuer refused it) or `unknown` (nothing
//! could tell: no pair, no address, a network error — with a warning on stderr).
//!
//! - **AWS access key pairs**: an access key id (`aws-access-key-id`) and a secret access key
//!   (`aws-secret-access-key`) found in the same file are paired, nearest line first, and STS
//!   `GetCallerIdentity` is called with them through the AWS SDK (`--aws-endpoint-url` points it
//!   at an emulator; the region comes from the standard chain, default us-east-1). Temporary
//!   ids (`ASIA`) are only tried with an `aws-session-token` from the same file.
//! - **Vault/OpenBao tokens** (family `vault`, `hvs.`/`hvb.`/`s.`/`b.`): with `--vault-addr`,
//!   `GET /v1/auth/token/lookup-self` with the token itself.
//!
//! Broker-owned findings are already proven by fingerprint and are left alone. Nothing here
//! runs without `--verify`, and the values never leave this process except as the credential
//! they are, presented to their own issuer (an AWS request is signed, the secret is not sent).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::finding::{Finding, Verified};

/// The rule of AWS access key ids.
pub const AWS_KEY_ID_RULE: &str = "aws-access-key-id";
/// The rule of AWS secret access keys.
pub const AWS_SECRET_RULE: &str = "aws-secret-access-key";
/// The rule of AWS session tokens (needed with temporary `ASIA` ids).
pub const AWS_SESSION_TOKEN_RULE: &str = "aws-session-token";
/// Most secrets tried with one access key id (nearest first).
const MAX_SECRETS_PER_ID: usize = 8;
/// Most calls one scan makes to issuers; past it, findings stay `unknown` (with a warning).
const MAX_CALLS: usize = 200;
/// How long one HTTP call to an issuer may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Region when the standard chain names none.
const DEFAULT_REGION: &str = "us-east-1";

/// Where the issuers are.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--aws-endpoint-url`: STS and IAM at this URL instead of AWS's (an emulator, a VPC
    /// endpoint).
    pub aws_endpoint_url: Option<String>,
    /// `--vault-addr`: where leaked Vault/OpenBao tokens are looked up (and revoked).
    pub vault_addr: Option<String>,
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

/// An issuer's answer.
#[derive(Debug, Clone)]
enum Answer {
    /// It works; who it is, and (Vault) its accessor.
    Live {
        who: Option<String>,
        accessor: Option<String>,
    },
    /// The issuer refused it.
    Dead,
    /// Nothing could tell (why).
    Unknown(String),
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
        eprintln!("sidekey-scan: warning: {w}");
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
        let pairs = aws_pairs(findings);
        if pairs.is_empty() {
            return;
        }
        let runtime = match runtime() {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!("AWS keys not checked: {e}"));
                return;
            }
        };
        runtime.block_on(async {
            let base = sdk_config(opts.aws_endpoint_url.as_deref(), false).await;
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
                            let a = caller_identity(&base, id, secret, token).await;
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
        let agent = http_agent();
        // token → answer, and → index in live.vault: each token is asked (and revoked) once
        let mut asked: HashMap<&str, Answer> = HashMap::new();
        let mut live: HashMap<&str, usize> = HashMap::new();
        for i in tokens {
            let f = &findings[i];
            let answer = match asked.get(f.secret.expose()) {
                Some(a) => a.clone(),
                None if !self.budget() => break,
                None => {
                    let a = vault_lookup(&agent, addr, f.secret.expose());
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

/// An access key id and the secrets (nearest first) and session token to try it with.
struct Pair {
    id: usize,
    secrets: Vec<usize>,
    token: Option<usize>,
}

/// The AWS key pairs to try: per path, each id with the secrets of the same path, nearest
/// line first (at most [`MAX_SECRETS_PER_ID`]); a temporary id with the nearest session token,
/// or not at all. Broker-owned findings are not paired.
fn aws_pairs(findings: &[Finding]) -> Vec<Pair> {
    #[derive(Default)]
    struct InPath {
        ids: Vec<usize>,
        secrets: Vec<usize>,
        tokens: Vec<usize>,
    }
    let mut paths: BTreeMap<&str, InPath> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if f.owned_secret.is_some() {
            continue;
        }
        if ![AWS_KEY_ID_RULE, AWS_SECRET_RULE, AWS_SESSION_TOKEN_RULE].contains(&f.rule_id.as_str()) {
            continue;
        }
        let p = paths.entry(f.path.as_str()).or_default();
        match f.rule_id.as_str() {
            AWS_KEY_ID_RULE => p.ids.push(i),
            AWS_SECRET_RULE => p.secrets.push(i),
            _ => p.tokens.push(i),
        }
    }
    let distance = |a: usize, b: usize| findings[a].line.abs_diff(findings[b].line);
    let mut pairs = Vec::new();
    for p in paths.values() {
        for &id in &p.ids {
            let temporary = findings[id].secret.expose().starts_with("ASIA");
            let token = p.tokens.iter().copied().min_by_key(|&t| distance(id, t));
            if temporary && token.is_none() {
                continue;
            }
            let mut secrets = p.secrets.clone();
            secrets.sort_by_key(|&s| (distance(id, s), s));
            secrets.truncate(MAX_SECRETS_PER_ID);
            if !secrets.is_empty() {
                pairs.push(Pair {
                    id,
                    secrets,
                    token: token.filter(|_| temporary),
                });
            }
        }
    }
    pairs
}

/// Whether a finding is a Vault/OpenBao token that `lookup-self` can tell about.
pub fn is_vault_token(f: &Finding) -> bool {
    f.family == "vault"
        && ["hvs.", "hvb.", "s.", "b."]
            .iter()
            .any(|p| f.secret.expose().starts_with(p))
}

/// A current-thread runtime for the AWS SDK: made only when there is something to ask.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The SDK's shared config: region from the standard chain (default us-east-1), the endpoint
/// override, bounded timeouts, and — for `operator` — the standard credential chain; else no
/// credentials (each call brings the leaked ones).
pub(crate) async fn sdk_config(endpoint: Option<&str>, operator: bool) -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    if !operator {
        loader = loader.no_credentials();
    }
    loader.load().await
}

/// STS `GetCallerIdentity` signed with a leaked key pair.
async fn caller_identity(base: &SdkConfig, id: &Finding, secret: &Finding, token: Option<&Finding>) -> Answer {
    let credentials = aws_sdk_sts::config::Credentials::new(
        id.secret.expose(),
        secret.secret.expose(),
        token.map(|t| t.secret.expose().to_owned()),
        None,
        "sidekey-scan-leaked",
    );
    let config = aws_sdk_sts::config::Builder::from(base)
        .credentials_provider(credentials)
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    match sts.get_caller_identity().send().await {
        Ok(out) => Answer::Live {
            who: out.arn().map(str::to_owned),
            accessor: None,
        },
        Err(e) => aws_error(&e, "STS"),
    }
}

/// An AWS error as an answer: the issuer refusing the credential is `Dead`; `AccessDenied`
/// means the request was authenticated (only not allowed), so the key works: `Live`; anything
/// else (network, throttling, server errors) cannot tell.
fn aws_error<E>(e: &SdkError<E>, service: &str) -> Answer
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match service_error(e) {
        Some((code, message)) => match code.as_str() {
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "InvalidAccessKeyId"
            | "UnrecognizedClientException"
            | "AuthFailure"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidToken" => Answer::Dead,
            "AccessDenied" | "AccessDeniedException" => Answer::Live {
                who: None,
                accessor: None,
            },
            _ => Answer::Unknown(format!("{service} answered {code}: {message}")),
        },
        None => Answer::Unknown(format!("{service}: {}", error_chain(e))),
    }
}

/// An error and its sources in words, `a: b: c` (each said once).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// An AWS service's error answer as (code, message); `None` when there was no answer (network,
/// timeout). The code is the SDK's, else read from the raw body: moto writes query-protocol
/// errors as `<ErrorResponse><Errors><Error>`, where the SDK's parser finds none.
pub(crate) fn service_error<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<(String, String)> {
    let SdkError::ServiceError(ctx) = e else { return None };
    let body = ctx
        .raw()
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let element = |tag: &str| {
        let (_, rest) = body.split_once(&format!("<{tag}>"))?;
        let (text, _) = rest.split_once(&format!("</{tag}>"))?;
        Some(text.trim().to_owned())
    };
    let code = ctx
        .err()
        .code()
        .map(str::to_owned)
        .or_else(|| element("Code"))
        .unwrap_or_else(|| format!("HTTP {}", ctx.raw().status().as_u16()));
    let message = ctx
        .err()
        .message()
        .map(str::to_owned)
        .or_else(|| element("Message"))
        .unwrap_or_else(|| "no message".to_owned());
    Some((code, message))
}

/// A blocking HTTP client with a timeout (no proxy).
pub(crate) fn http_agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(HTTP_TIMEOUT).build()
}

/// `GET /v1/auth/token/lookup-self` with the token: 200 live, 403 refused.
fn vault_lookup(agent: &ureq::Agent, addr: &str, token: &str) -> Answer {
    let url = format!("{}/v1/auth/token/lookup-self", addr.trim_end_matches('/'));
    match agent.get(&url).set("X-Vault-Token", token).call() {
        Ok(r) => {
            let body: serde_json::Value = r.into_json().unwrap_or_default();
            let field = |k: &str| body["data"][k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
            Answer::Live {
                who: field("display_name"),
                accessor: field("accessor"),
            }
        }
        Err(ureq::Error::Status(403, _)) => Answer::Dead,
        Err(ureq::Error::Status(code, _)) => Answer::Unknown(format!("{addr} answered {code}")),
        Err(e @ ureq::Error::Transport(_)) => Answer::Unknown(format!("{addr} could not be reached: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey::SecretString;

    fn finding(rule: &str, family: &str, path: &str, line: usize, secret: &str) -> Finding {
        let rule = crate::rules::Rule::compile(
            "test",
            crate::rules::RuleSyntax {
                id: rule.to_owned(),
                description: String::new(),
                family: Some(family.to_owned()),
                regex: Some("x".to_owned()),
                ..Default::default()
            },
        )
        .unwrap();
        Finding::new(&rule, path.to_owned(), line, 1, SecretString::from(secret.to_owned()))
    }

    #[test]
    fn ids_are_paired_with_the_secrets_of_their_file_nearest_first() {
        let findings = vec![
            finding(AWS_KEY_ID_RULE, "cloud", "a/.env", 10, "AKIA-one"),
            finding(AWS_SECRET_RULE, "cloud", "a/.env", 30, "far"),
            finding(AWS_SECRET_RULE, "cloud", "a/.env", 11, "near"),
            finding(AWS_SECRET_RULE, "cloud", "b/.env", 10, "other file"),
            finding(AWS_KEY_ID_RULE, "cloud", "c/.env", 1, "ASIA-no-token"),
            finding(AWS_SECRET_RULE, "cloud", "c/.env", 2, "s"),
            finding(AWS_KEY_ID_RULE, "cloud", "d/.env", 1, "AKIA-alone"),
        ];
        let pairs = aws_pairs(&findings);
        assert_eq!(
            pairs.len(),
            1,
            "a temporary id needs a token; a lone id has nothing to pair"
        );
        assert_eq!(
            (pairs[0].id, pairs[0].secrets.clone(), pairs[0].token),
            (0, vec![2, 1], None)
        );
    }

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
