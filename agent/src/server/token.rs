//! Bearer tokens: `Authorization: Bearer TOKEN`, the bare `Authorization: TOKEN` that AWS SDKs
//! send for container credentials, and `X-Aws-Parameters-Secrets-Token` on the AWS-compatible
//! route. A token is accepted when it matches one of `[agent] tokens` (argon2id) or the value
//! `AWS_TOKEN` names (counted as the token `aws`). Header values are read as raw bytes: a
//! present value that is not visible ASCII is refused ([`Malformed`]), never lossily
//! converted nor taken as no token.
//!
//! argon2id is slow on purpose (tens of milliseconds a hash, and a wrong token is tried
//! against every configured hash), so verification is guarded (issue 13, item 8):
//! - a token verified once, and a wrong token for a minute, is answered from memory
//!   ([`memo`], by SHA-256, never the token itself), and concurrent requests presenting the
//!   same unknown token share one verification;
//! - the rest queue in a bounded, fair pool ([`gate`]): half the CPUs verify at once, each
//!   caller (its uid, from `SO_PEERCRED` on the socket or the kernel's socket table on TCP,
//!   [`super::tcp_owner`]) has at most [`PER_CALLER`] requests admitted and waits its turn
//!   round-robin with the others, and past the bounds a request is answered 429 at once.
//!
//! So a flood of wrong tokens costs its sender, not other callers: a caller with a known
//! token, or none on the socket, never reaches the pool, and one with a new token waits for
//! at most one verification per other busy caller. The `AWS_TOKEN` value is compared by
//! digest in constant time.

mod gate;
mod memo;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, FORWARDED};
use hyper::HeaderMap;
use sha2::{Digest as _, Sha256};
use sidekey::config::AWS_TOKEN_NAME;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use gate::Full;
use gate::Gate;
use memo::{Digest, Lookup, Memo};

use super::Conn;
use crate::metrics::LabelledCounter;

/// Requests of one caller admitted to verification at once (one verifying, the rest waiting
/// their turn); more are answered 429.
pub const PER_CALLER: usize = 4;

/// Requests admitted to verification at once in all; more are answered 429.
pub const QUEUED: usize = 64;

/// Who a verification is queued for: the local user behind the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A local uid.
    Uid(u32),
    /// A TCP client whose socket's owner the kernel did not name (the socket is already gone,
    /// or `sock_diag` is not available): all such callers share one queue. Not their address:
    /// a client can connect from any of 127.0.0.0/8, and it would get a queue per address.
    Unknown,
}

impl Key {
    /// The key of connection `conn`: the socket peer's uid, or the uid owning a TCP client's
    /// socket. A system call on TCP: asked only of requests that need a verification.
    pub fn of(conn: &Conn) -> Key {
        if let Some(peer) = conn.peer {
            return Key::Uid(peer.uid);
        }
        let (Some(remote), Some(local)) = (conn.remote, conn.local) else {
            return Key::Unknown;
        };
        match super::tcp_owner::uid(remote, local) {
            Ok(uid) => Key::Uid(uid),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Key::Unknown, // the client left
            Err(e) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(
                        error = %e,
                        "cannot find which user owns a TCP client's socket (sock_diag); token verifications of TCP callers share one queue"
                    )
                });
                Key::Unknown
            }
        }
    }
}

/// `X-Aws-Parameters-Secrets-Token`, the AWS-compatible route's token header. A constant
/// name: looking it up hashes it, with no parsing of a string first.
pub const AWS_HEADER: HeaderName = HeaderName::from_static("x-aws-parameters-secrets-token");

/// The answer to a presented token.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is the token of this name.
    Accepted(Cow<'static, str>),
    /// It matches none (401).
    Refused,
    /// It was not verified: the queue is full (429).
    Busy(Full),
}

/// The accepted tokens.
pub struct Tokens {
    hashes: Arc<[(String, String)]>,
    aws: Option<[u8; 32]>,
    memo: Memo,
    gate: Gate<Key>,
    /// `sidekey_token_checks_total`, by result.
    checks: LabelledCounter,
}

/// The `result` label of `sidekey_token_checks_total`.
const RESULTS: &[&str] = &[
    "accepted",
    "refused",
    "accepted_remembered",
    "refused_remembered",
    "busy",
];

impl Tokens {
    /// `hashes` (name → argon2id PHC) from the config; `aws_token` is the value of the
    /// `AWS_TOKEN` environment variable, if set: the token itself or `file://PATH`.
    pub fn new(hashes: &std::collections::BTreeMap<String, String>, aws_token: Option<&str>) -> anyhow::Result<Self> {
        let aws = match aws_token {
            None => None,
            Some(value) => {
                let token = match value.strip_prefix("file://") {
                    Some(path) => Zeroizing::new(
                        String::from_utf8(
                            std::fs::read(path).with_context(|| format!("AWS_TOKEN: cannot read {path}"))?,
                        )
                        .with_context(|| format!("AWS_TOKEN: {path} is not UTF-8"))?,
                    ),
                    None => Zeroizing::new(value.to_owned()),
                };
                let token = token.trim();
                anyhow::ensure!(!token.is_empty(), "AWS_TOKEN is set but empty");
                Some(digest(token.as_bytes()))
            }
        };
        // Half the CPUs verify; the others keep serving.
        let parallel = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        Ok(Tokens {
            hashes: hashes.iter().map(|(n, h)| (n.clone(), h.clone())).collect(),
            aws,
            memo: Memo::new(),
            gate: Gate::new(parallel, PER_CALLER, QUEUED),
            checks: LabelledCounter::new("sidekey_token_checks_total", "result", RESULTS),
        })
    }

    /// Whether any token could be accepted at all.
    pub fn any(&self) -> bool {
        self.aws.is_some() || !self.hashes.is_empty()
    }

    /// What `presented` is. `key` names the caller, asked only when the token needs a
    /// verification (neither remembered nor being verified).
    pub async fn verify(&self, presented: &[u8], key: impl FnOnce() -> Key) -> Verdict {
        let digest = digest(presented);
        if let Some(aws) = &self.aws {
            if bool::from(aws.ct_eq(&digest)) {
                return self.checked("accepted_remembered", Verdict::Accepted(Cow::Borrowed(AWS_TOKEN_NAME)));
            }
        }
        if self.hashes.is_empty() {
            return self.checked("refused_remembered", Verdict::Refused);
        }
        loop {
            let claim = match self.memo.lookup(digest, Instant::now()) {
                Lookup::Accepted(index) => return self.checked("accepted_remembered", self.accepted(index)),
                Lookup::Refused => return self.checked("refused_remembered", Verdict::Refused),
                Lookup::Pending(mut pending) => match pending.wait_for(Option::is_some).await {
                    Ok(outcome) => {
                        let outcome = outcome.expect("waited for");
                        return match outcome {
                            Some(index) => self.checked("accepted_remembered", self.accepted(index)),
                            None => self.checked("refused_remembered", Verdict::Refused),
                        };
                    }
                    // The request verifying it gave up before it began: ask again.
                    Err(_) => continue,
                },
                Lookup::Claimed(claim) => claim,
            };
            let ticket = match self.gate.admit(key()) {
                Ok(ticket) => ticket,
                Err(full) => return self.checked("busy", Verdict::Busy(full)),
            };
            return self.run(presented, claim, ticket).await;
        }
    }

    /// Waits for the caller's turn, then runs argon2id against every configured hash on a
    /// blocking thread, which also remembers the outcome: a client that goes away meanwhile
    /// neither frees its place in the pool early nor wastes the work.
    async fn run(&self, presented: &[u8], claim: memo::Claim, ticket: gate::Ticket<Key>) -> Verdict {
        let turn = ticket.turn().await;
        let hashes = self.hashes.clone();
        let token = Zeroizing::new(presented.to_vec());
        let verified = tokio::task::spawn_blocking(move || {
            let outcome = hashes
                .iter()
                .position(|(_, hash)| sidekey::crypto::verify_token(&token, hash));
            claim.settle(outcome, Instant::now());
            drop(turn);
            outcome
        })
        .await;
        match verified {
            Ok(Some(index)) => self.checked("accepted", self.accepted(index)),
            Ok(None) => self.checked("refused", Verdict::Refused),
            // argon2 panicked: nothing was remembered; refuse this request.
            Err(_) => self.checked("refused", Verdict::Refused),
        }
    }

    fn accepted(&self, index: usize) -> Verdict {
        Verdict::Accepted(Cow::Owned(self.hashes[index].0.clone()))
    }

    /// Counts one token check by its result (`sidekey_token_checks_total`) and answers `verdict`.
    fn checked(&self, result: &'static str, verdict: Verdict) -> Verdict {
        self.checks.increment(result);
        verdict
    }
}

/// A token header whose value is not a token: empty, or holding a byte that is not visible
/// ASCII (a control byte, a space inside, anything >= 0x80). Refused with 401, never read as
/// "no token" nor converted lossily.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The headers a request is identified by, found in one pass over its headers rather than
/// one hashed lookup each (issue 18): whether it carries `X-Forwarded-For` or `Forwarded`,
/// and the first value of `X-Aws-Parameters-Secrets-Token` and of `Authorization` (the value
/// `HeaderMap::get` answers).
#[derive(Debug, Default)]
pub struct Seen<'h> {
    /// `X-Forwarded-For` or `Forwarded` is present.
    pub forwarded: bool,
    /// The first `X-Aws-Parameters-Secrets-Token`.
    pub aws: Option<&'h HeaderValue>,
    /// The first `Authorization`.
    pub authorization: Option<&'h HeaderValue>,
}

/// `X-Forwarded-For`, refused as the AWS agent does.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl<'h> Seen<'h> {
    /// Looks at every header of `headers` once.
    pub fn scan(headers: &'h HeaderMap) -> Self {
        let mut seen = Seen::default();
        for (name, value) in headers {
            if name == X_FORWARDED_FOR || name == FORWARDED {
                seen.forwarded = true;
            } else if name == AWS_HEADER {
                seen.aws.get_or_insert(value);
            } else if name == AUTHORIZATION {
                seen.authorization.get_or_insert(value);
            }
        }
        seen
    }

    /// The token presented, as raw bytes, if any: `Authorization` (`Bearer TOKEN` or bare),
    /// or, when `aws_header` is true, `X-Aws-Parameters-Secrets-Token` (which then wins).
    /// A header that is present but malformed is an error, whichever listener it came on: the
    /// Unix socket takes requests without a token, so treating a bad one as absent would serve
    /// it on the caller's uid alone.
    pub fn token(&self, aws_header: bool) -> Result<Option<&'h [u8]>, Malformed> {
        if aws_header {
            if let Some(v) = self.aws {
                return token_bytes(v.as_bytes()).map(Some);
            }
        }
        let Some(auth) = self.authorization else {
            return Ok(None);
        };
        let auth = auth.as_bytes().trim_ascii();
        token_bytes(auth.strip_prefix(b"Bearer ").unwrap_or(auth)).map(Some)
    }
}

/// The token `headers` present ([`Seen::token`]).
pub fn presented(headers: &HeaderMap, aws_header: bool) -> Result<Option<&[u8]>, Malformed> {
    Seen::scan(headers).token(aws_header)
}

/// `value` without surrounding spaces, when what is left is one or more visible ASCII bytes.
fn token_bytes(value: &[u8]) -> Result<&[u8], Malformed> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_graphic) {
        return Err(Malformed);
    }
    Ok(value)
}

fn digest(token: &[u8]) -> Digest {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_asked() -> Key {
        panic!("the caller's key is asked only for a verification")
    }

    #[tokio::test]
    async fn tokens_verify_by_hash_or_aws_token_and_are_remembered() {
        let hash = sidekey::crypto::hash_token(b"deploy-token").unwrap();
        let tokens = Tokens::new(&[("deploy".to_owned(), hash)].into(), Some("aws-value")).unwrap();
        let deploy = Verdict::Accepted("deploy".into());
        assert_eq!(tokens.verify(b"deploy-token", || Key::Uid(1)).await, deploy);
        assert_eq!(tokens.verify(b"deploy-token", never_asked).await, deploy);
        assert_eq!(
            tokens.verify(b"aws-value", never_asked).await,
            Verdict::Accepted("aws".into())
        );
        assert_eq!(tokens.verify(b"wrong", || Key::Uid(1)).await, Verdict::Refused);
        assert_eq!(
            tokens.verify(b"wrong", never_asked).await,
            Verdict::Refused,
            "a wrong token is remembered: no second argon2 run"
        );
        let only_aws = Tokens::new(&Default::default(), Some("aws-value")).unwrap();
        assert_eq!(only_aws.verify(b"wrong", never_asked).await, Verdict::Refused);
    }

    /// One caller sending distinct wrong tokens has [`PER_CALLER`] admitted and the rest
    /// answered busy at once; another caller is still verified. The same token sent by many
    /// requests at once is verified once, never answered busy.
    #[tokio::test]
    async fn a_caller_has_its_share_of_verifications_and_shares_repeats() {
        let hash = sidekey::crypto::hash_token(b"deploy-token").unwrap();
        let tokens = Arc::new(Tokens::new(&[("deploy".to_owned(), hash)].into(), None).unwrap());
        let spawn = |token: String, uid| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.verify(token.as_bytes(), || Key::Uid(uid)).await })
        };
        let flood: Vec<_> = (0..PER_CALLER + 2).map(|i| spawn(format!("wrong-{i}"), 1)).collect();
        let other = spawn("deploy-token".to_owned(), 2);
        let mut verdicts = Vec::new();
        for task in flood {
            verdicts.push(task.await.unwrap());
        }
        let refused = verdicts.iter().filter(|v| **v == Verdict::Refused).count();
        let busy = verdicts.iter().filter(|v| **v == Verdict::Busy(Full::Caller)).count();
        assert_eq!((refused, busy), (PER_CALLER, 2), "{verdicts:?}");
        assert_eq!(other.await.unwrap(), Verdict::Accepted("deploy".into()));

        let repeats: Vec<_> = (0..3 * PER_CALLER).map(|_| spawn("same-wrong".to_owned(), 1)).collect();
        for task in repeats {
            assert_eq!(task.await.unwrap(), Verdict::Refused);
        }
    }

    #[test]
    fn tokens_are_read_from_bearer_bare_and_aws_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h, true), Ok(None));
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h, false), Ok(Some(&b"abc"[..])));
        h.insert("authorization", "abc2".parse().unwrap());
        assert_eq!(presented(&h, false), Ok(Some(&b"abc2"[..])));
        h.insert("x-aws-parameters-secrets-token", "ssrf".parse().unwrap());
        assert_eq!(presented(&h, true), Ok(Some(&b"ssrf"[..])));
        assert_eq!(presented(&h, false), Ok(Some(&b"abc2"[..])));
    }

    /// One pass sees what the map's lookups would: the first value of a repeated header,
    /// either spelling of forwarding.
    #[test]
    fn the_scan_sees_what_lookups_see() {
        let mut h = HeaderMap::new();
        h.append("authorization", "Bearer first".parse().unwrap());
        h.append("user-agent", "x".parse().unwrap());
        h.append("authorization", "Bearer second".parse().unwrap());
        h.append("x-aws-parameters-secrets-token", "aws1".parse().unwrap());
        h.append("x-aws-parameters-secrets-token", "aws2".parse().unwrap());
        let seen = Seen::scan(&h);
        assert!(!seen.forwarded);
        assert_eq!(seen.authorization, h.get("authorization"));
        assert_eq!(seen.aws, h.get("x-aws-parameters-secrets-token"));
        assert_eq!(seen.token(false), Ok(Some(&b"first"[..])));
        assert_eq!(seen.token(true), Ok(Some(&b"aws1"[..])));
        for name in ["x-forwarded-for", "forwarded", "X-Forwarded-For"] {
            let mut h = HeaderMap::new();
            h.append("accept", "*/*".parse().unwrap());
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "1.2.3.4".parse().unwrap(),
            );
            assert!(Seen::scan(&h).forwarded, "{name}");
        }
    }

    #[test]
    fn malformed_token_headers_are_refused_not_ignored() {
        use hyper::header::HeaderValue;
        for bad in [
            &b"abc\xff"[..],
            b"\xc3\xa9t\xc3\xa9",
            b"a b",
            b"",
            b"Bearer \xfe",
            b"a\tb",
        ] {
            let value = HeaderValue::from_bytes(bad).unwrap();
            let mut aws = HeaderMap::new();
            aws.insert("x-aws-parameters-secrets-token", value.clone());
            aws.insert("authorization", "Bearer good".parse().unwrap());
            assert_eq!(presented(&aws, true), Err(Malformed), "{bad:?}");
            let mut auth = HeaderMap::new();
            auth.insert("authorization", value);
            assert_eq!(presented(&auth, false), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn aws_token_may_name_a_file() {
        let dir = tempfile_dir();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let tokens = Tokens::new(&Default::default(), Some(&format!("file://{}", file.display()))).unwrap();
        assert_eq!(tokens.aws, Some(digest(b"from-file")));
        assert!(Tokens::new(&Default::default(), Some("file:///nonexistent/x")).is_err());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sidekey-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
