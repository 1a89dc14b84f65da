//! Bearer tokens: `Authorization: Bearer TOKEN`, the bare `Authorization: TOKEN` that AWS SDKs
//! send for container credentials, and `X-Aws-Parameters-Secrets-Token` on the AWS-compatible
//! route. A token is accepted when it matches one of `[agent] tokens` (argon2id) or the value
//! `AWS_TOKEN` names (counted as the token `aws`).
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
                Some(digest(token))
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
    pub async fn verify(&self, presented: &str) -> Option<String> {
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
        let token = Zeroizing::new(presented.to_owned());
        let name = tokio::task::spawn_blocking(move || {
            hashes
                .iter()
                .find(|(_, hash)| sidekey::crypto::verify_token(token.as_bytes(), hash))
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

/// The token a request presents, if any: `Authorization` (`Bearer TOKEN` or bare), or, when
/// `aws_header` is true, `X-Aws-Parameters-Secrets-Token`.
pub fn presented(headers: &HeaderMap, aws_header: bool) -> Option<&str> {
    if aws_header {
        if let Some(v) = headers
            .get("x-aws-parameters-secrets-token")
            .and_then(|v| v.to_str().ok())
        {
            return Some(v.trim());
        }
    }
    let auth = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?.trim();
    Some(auth.strip_prefix("Bearer ").map(str::trim).unwrap_or(auth))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_verify_by_hash_or_aws_token_and_are_remembered() {
        let hash = sidekey::crypto::hash_token(b"deploy-token").unwrap();
        let tokens = Tokens::new(&[("deploy".to_owned(), hash)].into(), Some("aws-value")).unwrap();
        assert_eq!(tokens.verify("deploy-token").await.as_deref(), Some("deploy"));
        assert_eq!(tokens.verify("deploy-token").await.as_deref(), Some("deploy"));
        assert_eq!(tokens.verify("aws-value").await.as_deref(), Some("aws"));
        assert_eq!(tokens.verify("wrong").await, None);
        assert_eq!(tokens.memo.lock().unwrap().len(), 1);
    }

    #[test]
    fn tokens_are_read_from_bearer_bare_and_aws_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h, false), Some("abc"));
        h.insert("authorization", "abc2".parse().unwrap());
        assert_eq!(presented(&h, false), Some("abc2"));
        h.insert("x-aws-parameters-secrets-token", "ssrf".parse().unwrap());
        assert_eq!(presented(&h, true), Some("ssrf"));
        assert_eq!(presented(&h, false), Some("abc2"));
    }

    #[test]
    fn aws_token_may_name_a_file() {
        let dir = tempfile_dir();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let tokens = Tokens::new(&Default::default(), Some(&format!("file://{}", file.display()))).unwrap();
        assert_eq!(tokens.aws, Some(digest("from-file")));
        assert!(Tokens::new(&Default::default(), Some("file:///nonexistent/x")).is_err());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sidekey-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
