//! Findings: a rule's match placed in its source, with a content fingerprint and the secret
//! held as a `SecretString` (shown redacted unless the user asks otherwise).

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sidekey::SecretString;

use crate::source::Commit;

/// The rule id of findings made by fingerprint alone.
pub const OWNED_RULE: &str = "sidekey-owned-secret";

/// What `--verify` could tell of a finding. Reports write it as the strings `"true"`,
/// `"false"` and `"unknown"` (JSON and SARIF alike), as they always have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Verified {
    /// Proven live: the broker issued it, or its issuer accepted it.
    #[serde(rename = "true")]
    Live,
    /// Its issuer refused it.
    #[serde(rename = "false")]
    Dead,
    /// `--verify` was not asked, or nothing could tell.
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
}

impl Verified {
    /// The word reports write: `true`, `false` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::Live => "true",
            Verified::Dead => "false",
            Verified::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One leaked secret.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule's id.
    pub rule_id: String,
    /// What the rule finds.
    pub description: String,
    /// The rule's family.
    pub family: String,
    /// Where, as the user would type it (`src/app/config.py`, `ARCHIVE!MEMBER`).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The secret itself.
    pub secret: SecretString,
    /// `sha256(rule_id NUL secret)`, hex: stable when lines move, so baselines keep working.
    pub fingerprint: String,
    /// The commit that introduced it (history scans).
    pub commit: Option<Arc<Commit>>,
    /// Whether it is proven live (see [`Verified`]).
    pub verified: Verified,
    /// The broker secret this is, when its fingerprint matched.
    pub owned_secret: Option<String>,
    /// Whether `--revoke` made it unusable at its source.
    pub revoked: bool,
}

impl Finding {
    /// A finding of `rule_id` for `secret` at `path:line:column`.
    pub fn new(rule: &crate::rules::Rule, path: String, line: usize, column: usize, secret: SecretString) -> Self {
        let fingerprint = fingerprint(&rule.id, secret.expose());
        Finding {
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            family: rule.family.clone(),
            path,
            line,
            column,
            secret,
            fingerprint,
            commit: None,
            verified: Verified::Unknown,
            owned_secret: None,
            revoked: false,
        }
    }

    /// The file at `path`, reported by a rule that matches paths alone (gitleaks' path-only
    /// rules): no secret (see [`Finding::is_file`]), at line 1, column 1; its fingerprint is
    /// that of rule id and path.
    pub fn file(rule: &crate::rules::FileRule, path: String) -> Self {
        Finding {
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            family: rule.family.clone(),
            fingerprint: fingerprint(&rule.id, &path),
            path,
            line: 1,
            column: 1,
            secret: SecretString::from(String::new()),
            commit: None,
            verified: Verified::Unknown,
            owned_secret: None,
            revoked: false,
        }
    }

    /// Whether this finding reports a whole file ([`Finding::file`]) rather than a secret.
    pub fn is_file(&self) -> bool {
        self.secret.expose().is_empty()
    }

    /// A credential the broker issued, found by its fingerprint alone (no rule matched it):
    /// reported under the pseudo-rule `sidekey-owned-secret`.
    pub fn owned(path: String, line: usize, column: usize, secret: SecretString, owner: &str) -> Self {
        let rule = crate::rules::Rule::compile(
            "built in",
            crate::rules::RuleSyntax {
                id: OWNED_RULE.to_owned(),
                description: "A credential this broker issued (matched by its fingerprint)".to_owned(),
                family: Some("broker".to_owned()),
                regex: Some("x".to_owned()),
                ..Default::default()
            },
        )
        .expect("the pseudo-rule compiles");
        let mut f = Finding::new(&rule, path, line, column, secret);
        f.verified = Verified::Live;
        f.owned_secret = Some(owner.to_owned());
        f
    }

    /// The secret as shown: the first four characters, then `…`, unless `reveal`; a file
    /// reported for its path shows as `file detected` (as gitleaks says).
    pub fn shown(&self, reveal: bool) -> String {
        if self.is_file() {
            return "file detected".to_owned();
        }
        let s = self.secret.expose();
        if reveal {
            return s.to_owned();
        }
        let head: String = s.chars().take(4.min(s.chars().count() / 4)).collect();
        format!("{head}…[REDACTED]")
    }

    /// The flat JSON record of this finding.
    pub fn record(&self, reveal: bool) -> Record<'_> {
        Record {
            rule_id: &self.rule_id,
            description: &self.description,
            kind: &self.family,
            path: &self.path,
            line: self.line,
            column: self.column,
            secret: self.shown(reveal),
            fingerprint: &self.fingerprint,
            commit: self.commit.as_ref().map(|c| c.id.as_str()),
            author: self.commit.as_ref().map(|c| format!("{} <{}>", c.author, c.email)),
            date: self.commit.as_ref().map(|c| c.date.as_str()),
            verified: self.verified,
            owned_secret: self.owned_secret.as_deref(),
            revoked: self.revoked,
        }
    }
}

/// `sha256(rule_id NUL what)`, hex: what a baseline matches.
fn fingerprint(rule_id: &str, what: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(rule_id.as_bytes());
    hash.update([0]);
    hash.update(what.as_bytes());
    hex::encode(hash.finalize())
}

/// A finding as JSON reports write it (docs/scanner.md, "Reports": the SARIF fields, flat).
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Rule id.
    #[serde(rename = "ruleId")]
    pub rule_id: &'a str,
    /// Rule description.
    pub description: &'a str,
    /// Rule family.
    pub kind: &'a str,
    /// Location.
    pub path: &'a str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The secret, redacted unless asked.
    pub secret: String,
    /// Content fingerprint.
    pub fingerprint: &'a str,
    /// The commit that introduced it (history scans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'a str>,
    /// That commit's author, `Name <email>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// That commit's author date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<&'a str>,
    /// `true`, `false` or `unknown`.
    pub verified: Verified,
    /// The broker secret this is, when a fingerprint matched.
    pub owned_secret: Option<&'a str>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A finding of rule `rule` (a stand-in rule of `family`) at `path:line`, for unit tests of what
/// reads findings (the issuers, `verify`).
#[cfg(test)]
pub(crate) fn test_finding(rule: &str, family: &str, path: &str, line: usize, secret: &str) -> Finding {
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
    Finding::new(
        &rule,
        path.to_owned(),
        line,
        1,
        sidekey::SecretString::from(secret.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_is_written_as_the_words_reports_always_had() {
        for (v, word) in [
            (Verified::Live, "true"),
            (Verified::Dead, "false"),
            (Verified::Unknown, "unknown"),
        ] {
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(word));
            assert_eq!(v.to_string(), word);
        }
        let f = Finding::owned("a".into(), 1, 1, SecretString::from("x".to_owned()), "db");
        let record = serde_json::to_value(f.record(false)).unwrap();
        assert_eq!(record["verified"], "true");
        let sarif = crate::report::sarif(&[f], &[], false);
        assert_eq!(sarif["runs"][0]["results"][0]["properties"]["verified"], "true");
    }
}
