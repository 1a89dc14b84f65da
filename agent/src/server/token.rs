//! Bearer tokens: `Authorization: Bearer TOKEN`, the bare `Authorization: TOKEN` that AWS SDKs
//! send for container credentials, and `X-Aws-Parameters-Secrets-Token` on the AWS-compatible
//! route. A token is accepted when it matches one of `[agent] tokens` (argon2id) or the value
//! `AWS_TOKEN` names (counted as the token `aws`). Header values are read as raw bytes: a
//! present value that is not visible ASCII is refused ([`Malformed`]), never lossily
//! converted nor taken as no token.
//!
//! argon2id is slow on purpose, so a token verified once is remembered under its SHA-256 (never
//! the token itself), and verifications run one at a time on a blocking thread so a flood of
//! wrong tokens cannot starve the server. The `AWS_TOKEN` value is compared by digest in
//! constant time.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context as _;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};
use sidekey::config::AWS_TOKEN_NAME;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Remembered verifications before the memo is cleared (a bound on memory, not a policy).
const MEMO_LIMIT: usize = 1024;

/// The accepted tokens.
pub struct Tokens {
    hashes: Vec<(String, String)>,
    aws: Option<[u8; 32]>,
    memo: Mutex<HashMap<[u8; 32], String>>,
    gate: Semaphore,
}

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
        Ok(Tokens {
            hashes: hashes.iter().map(|(n, h)| (n.clone(), h.clone())).collect(),
            aws,
            memo: Mutex::new(HashMap::new()),
            gate: Semaphore::new(1),
        })
    }

    /// Whether any token could be accepted at all.
    pub fn any(&self) -> bool {
        self.aws.is_some() || !self.hashes.is_empty()
    }

    /// The name of the token `presented` is, or `None` when it matches none.
    pub async fn verify(&self, presented: &[u8]) -> Option<String> {
        let digest = digest(presented);
        if let Some(aws) = &self.aws {
            if bool::from(aws.ct_eq(&digest)) {
                return Some(AWS_TOKEN_NAME.to_owned());
            }
        }
        if let Some(name) = self.memo.lock().expect("never poisoned").get(&digest) {
            return Some(name.clone());
        }
        let _one_at_a_time = self.gate.acquire().await.ok()?;
        let hashes = self.hashes.clone();
        let token = Zeroizing::new(presented.to_vec());
        let name = tokio::task::spawn_blocking(move || {
            hashes
                .iter()
                .find(|(_, hash)| sidekey::crypto::verify_token(&token, hash))
                .map(|(name, _)| name.clone())
        })
        .await
        .ok()??;
        let mut memo = self.memo.lock().expect("never poisoned");
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(digest, name.clone());
        Some(name)
    }
}

/// A token header whose value is not a token: empty, or holding a byte that is not visible
/// ASCII (a control byte, a space inside, anything >= 0x80). Refused with 401, never read as
/// "no token" nor converted lossily.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The token a request presents, as raw bytes, if any: `Authorization` (`Bearer TOKEN` or
/// bare), or, when `aws_header` is true, `X-Aws-Parameters-Secrets-Token` (which then wins).
/// A header that is present but malformed is an error, whichever listener it came on: the
/// Unix socket takes requests without a token, so treating a bad one as absent would serve it
/// on the caller's uid alone.
pub fn presented(headers: &HeaderMap, aws_header: bool) -> Result<Option<&[u8]>, Malformed> {
    if aws_header {
        if let Some(v) = headers.get("x-aws-parameters-secrets-token") {
            return token_bytes(v.as_bytes()).map(Some);
        }
    }
    let Some(auth) = headers.get(hyper::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let auth = auth.as_bytes().trim_ascii();
    token_bytes(auth.strip_prefix(b"Bearer ").unwrap_or(auth)).map(Some)
}

/// `value` without surrounding spaces, when what is left is one or more visible ASCII bytes.
fn token_bytes(value: &[u8]) -> Result<&[u8], Malformed> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_graphic) {
        return Err(Malformed);
    }
    Ok(value)
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_verify_by_hash_or_aws_token_and_are_remembered() {
        let hash = sidekey::crypto::hash_token(b"deploy-token").unwrap();
        let tokens = Tokens::new(&[("deploy".to_owned(), hash)].into(), Some("aws-value")).unwrap();
        assert_eq!(tokens.verify(b"deploy-token").await.as_deref(), Some("deploy"));
        assert_eq!(tokens.verify(b"deploy-token").await.as_deref(), Some("deploy"));
        assert_eq!(tokens.verify(b"aws-value").await.as_deref(), Some("aws"));
        assert_eq!(tokens.verify(b"wrong").await, None);
        assert_eq!(tokens.memo.lock().unwrap().len(), 1);
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
