//! Owned secrets: which strings in the scanned content the broker issued. The broker's
//! fingerprint set is fetched once per scan (`GET /v1/fingerprints` on the agent's socket,
//! [`crate::agent`], or the registry the agents publish at Vault); every token-like string of
//! plausible length and alphabet is then fingerprinted with the shared key and looked up
//! locally — so a random password on an unlabelled line is found without any rule, and no
//! value ever leaves this process.

use std::collections::HashMap;

use sidekey::fingerprint::{FingerprintKey, MIN_LEN};

/// Longest string fingerprinted.
const MAX_LEN: usize = 256;
/// Separators inside a token-like run where a value may start or end (`KEY=value`,
/// `user:pass@host`, `a/b`).
const SEPARATORS: &[u8] = b"=:@/";

/// The broker's fingerprints and the key to make more.
pub struct Owned {
    key: FingerprintKey,
    /// Fingerprint → secret name.
    prints: HashMap<String, String>,
    /// Fingerprint → lease id, when the set came from the Vault registry.
    leases: HashMap<String, String>,
    /// The lengths of the broker's values, when every entry gave one: only strings of these
    /// lengths are fingerprinted.
    lengths: Option<std::collections::HashSet<usize>>,
}

impl Owned {
    /// Fetches the fingerprint set from `agent`.
    pub fn from_agent(agent: &crate::agent::Agent, key: FingerprintKey) -> anyhow::Result<Owned> {
        let set = agent.fingerprints()?;
        let lengths = lengths(set.fingerprints.iter().map(|o| o.length));
        Ok(Owned {
            key,
            prints: set
                .fingerprints
                .into_iter()
                .map(|o| (o.fingerprint, o.secret))
                .collect(),
            leases: HashMap::new(),
            lengths,
        })
    }

    /// The set the agents published to the Vault registry (`--registry MOUNT/PATH`).
    pub fn from_vault(
        vault: &crate::issuer::vault::Vault,
        registry: &str,
        key: FingerprintKey,
    ) -> anyhow::Result<Owned> {
        let published = vault.published(registry)?;
        let mut owned = Owned {
            key,
            prints: HashMap::new(),
            leases: HashMap::new(),
            lengths: lengths(published.iter().map(|p| p.length)),
        };
        for p in published {
            if let Some(lease) = p.lease_id {
                owned.leases.insert(p.fingerprint.clone(), lease);
            }
            owned.prints.insert(p.fingerprint, p.secret);
        }
        Ok(owned)
    }

    /// The lease of the broker credential `value`, when the registry named one.
    pub fn lease_of(&self, value: &[u8]) -> Option<&str> {
        self.leases.get(&self.key.fingerprint(value)).map(String::as_str)
    }

    /// A set from `(fingerprint, secret)` pairs (tests).
    pub fn new(key: FingerprintKey, prints: impl IntoIterator<Item = (String, String)>) -> Owned {
        Owned {
            key,
            prints: prints.into_iter().collect(),
            leases: HashMap::new(),
            lengths: None,
        }
    }

    /// The fingerprint of `value` under the shared key.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        self.key.fingerprint(value)
    }

    /// How many fingerprints the broker has.
    pub fn len(&self) -> usize {
        self.prints.len()
    }

    /// Whether the broker has none.
    pub fn is_empty(&self) -> bool {
        self.prints.is_empty()
    }

    /// The broker secret `value` is, if it is one.
    pub fn owner(&self, value: &[u8]) -> Option<&str> {
        if self.prints.is_empty() {
            return None;
        }
        self.prints.get(&self.key.fingerprint(value)).map(String::as_str)
    }

    /// Every broker secret in `bytes`: (byte range, secret name).
    pub fn find(&self, bytes: &[u8]) -> Vec<(std::ops::Range<usize>, &str)> {
        let mut found = Vec::new();
        if self.prints.is_empty() {
            return found;
        }
        for run in token_runs(bytes) {
            for candidate in candidates(bytes, run) {
                if self.lengths.as_ref().is_some_and(|l| !l.contains(&candidate.len())) {
                    continue;
                }
                if let Some(owner) = self.owner(&bytes[candidate.clone()]) {
                    found.push((candidate, owner));
                    break;
                }
            }
        }
        found
    }
}

/// The set of value lengths, when every entry gave one (else no length filter).
fn lengths(given: impl Iterator<Item = Option<usize>>) -> Option<std::collections::HashSet<usize>> {
    given.collect()
}

/// Bytes a credential is made of: letters, digits and the punctuation passwords and tokens use
/// (not quotes, spaces, brackets, commas or semicolons, which delimit them in files).
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.+/=~!#$%^&*?:@".contains(&b)
}

/// Maximal runs of token bytes at least [`MIN_LEN`] long.
fn token_runs(bytes: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            while i < bytes.len() && !token_byte(bytes[i]) {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && token_byte(bytes[i]) {
                i += 1;
            }
            if i - start >= MIN_LEN {
                return Some(start..i);
            }
        }
        None
    })
}

/// The strings in `run` that could be a whole credential: the run, and its parts before,
/// after and between its first separators — each of plausible length with at least two kinds
/// of character (a word or a number alone is not a credential).
fn candidates(bytes: &[u8], run: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let seps: Vec<usize> = (run.clone())
        .filter(|i| SEPARATORS.contains(&bytes[*i]))
        .take(8)
        .collect();
    let mut cuts = vec![run.start];
    cuts.extend(seps.iter().map(|s| s + 1));
    let mut ends = seps.clone();
    ends.push(run.end);
    let mut out = vec![run.clone()];
    for s in &cuts {
        for e in &ends {
            if s < e && (*s, *e) != (run.start, run.end) {
                out.push(*s..*e);
            }
        }
    }
    // Trailing sentence punctuation is not part of a value.
    let trimmed = run.start
        ..run.end
            - bytes[run.clone()]
                .iter()
                .rev()
                .take_while(|b| b".!?:".contains(b))
                .count();
    out.push(trimmed);
    out.retain(|r| (MIN_LEN..=MAX_LEN).contains(&r.len()) && kinds(&bytes[r.clone()]) >= 2);
    out.dedup();
    out
}

/// How many of lower case, upper case, digits and punctuation `s` has.
fn kinds(s: &[u8]) -> usize {
    [
        s.iter().any(u8::is_ascii_lowercase),
        s.iter().any(u8::is_ascii_uppercase),
        s.iter().any(u8::is_ascii_digit),
        s.iter().any(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_values_are_found_wherever_they_sit() {
        let key = FingerprintKey::from_bytes(b"k");
        let password = "A1b2-C3d4-E5f6-G7h8-I9j0";
        let owned = Owned::new(key.clone(), [(key.fingerprint(password.as_bytes()), "db".to_owned())]);
        for text in [
            format!("x = {password}\n"),
            format!("PASSWORD={password}"),
            format!("postgres://app:{password}@db:5432/app"),
            format!("\"{password}\","),
            format!("It was {password}."),
        ] {
            let found = owned.find(text.as_bytes());
            assert_eq!(found.len(), 1, "{text}");
            assert_eq!((&text[found[0].0.clone()], found[0].1), (password, "db"));
        }
        assert!(owned.find(b"nothing here but words and 12345678").is_empty());
    }
}
