//! Allowlists, as gitleaks defines them: what a rule — or, in a config's top-level
//! `[allowlist]` / `[[allowlists]]`, every rule — does not report. An allowlist has criteria
//! (`commits`, `paths`, `regexes` matched against its `regexTarget`, `stopwords` in the secret)
//! combined by its `condition`: `OR` (the default: any one criterion leaves the finding out) or
//! `AND` (every criterion it defines must hold).
//!
//! Two questions are asked of an allowlist: [`Allowlist::allows_file`] before a file is
//! scanned (its path and commit alone decide: the whole file is left out, and rules that match
//! paths alone report nothing there), and [`Allowlist::allows`] of each secret a rule found.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;

use super::Pattern;

/// How an allowlist's criteria combine (gitleaks' `condition`, case-insensitive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Condition {
    /// Any one criterion leaves a finding out.
    #[default]
    #[serde(rename = "OR", alias = "or", alias = "Or", alias = "||", alias = "")]
    Or,
    /// Every criterion the allowlist defines must hold.
    #[serde(rename = "AND", alias = "and", alias = "And", alias = "&&")]
    And,
}

/// What an allowlist's `regexes` are matched against (gitleaks' `regexTarget`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum RegexTarget {
    /// The secret (the rule's secret group).
    #[default]
    #[serde(rename = "secret", alias = "")]
    Secret,
    /// The rule's whole match.
    #[serde(rename = "match")]
    Match,
    /// The line (or lines) holding the match.
    #[serde(rename = "line")]
    Line,
}

/// An allowlist as written: a rule's `[[rules.allowlists]]` (or older `[rules.allowlist]`), or a
/// config's `[[allowlists]]` (or older `[allowlist]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistSyntax {
    /// Why (for the reader).
    #[serde(default)]
    pub description: Option<String>,
    /// `OR` (default) or `AND`.
    #[serde(default)]
    pub condition: Condition,
    /// Full commit ids (case-insensitive): findings in blobs those commits introduced.
    #[serde(default)]
    pub commits: Vec<String>,
    /// Path regexes.
    #[serde(default)]
    pub paths: Vec<String>,
    /// What `regexes` are matched against: `secret` (default), `match` or `line`.
    #[serde(default, rename = "regexTarget", alias = "regextarget")]
    pub regex_target: RegexTarget,
    /// Patterns matched against the target.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// Case-insensitive substrings of the secret.
    #[serde(default, alias = "stopWords")]
    pub stopwords: Vec<String>,
    /// In a config's top-level `[[allowlists]]` only: the rules (by id) it applies to, instead
    /// of every rule.
    #[serde(default, rename = "targetRules", alias = "targetrules")]
    pub target_rules: Option<toml::Spanned<Vec<String>>>,
}

/// A compiled allowlist.
#[derive(Debug)]
pub struct Allowlist {
    /// Why (for the reader).
    pub description: Option<String>,
    condition: Condition,
    /// Lowercase commit ids.
    commits: HashSet<String>,
    paths: Vec<regex::Regex>,
    regexes: Vec<Arc<Pattern>>,
    target: RegexTarget,
    /// Lowercase.
    stopwords: Vec<String>,
}

/// A secret a rule found, as an allowlist is asked about it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Where (as reported), if known.
    pub path: Option<&'a str>,
    /// The commit that introduced it (history scans).
    pub commit: Option<&'a str>,
    /// The text it was found in.
    pub bytes: &'a [u8],
    /// The rule's whole match, in `bytes`.
    pub matched: Range<usize>,
    /// The secret, in `bytes`.
    pub secret: Range<usize>,
}

impl Candidate<'_> {
    /// The secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.bytes[self.secret.clone()]
    }

    /// What `target` names: the secret, the match, or the lines holding the match (computed
    /// only when asked: a minified file's line can be megabytes).
    fn target(&self, target: RegexTarget) -> &[u8] {
        match target {
            RegexTarget::Secret => self.secret(),
            RegexTarget::Match => &self.bytes[self.matched.clone()],
            RegexTarget::Line => {
                let start = memchr::memrchr(b'\n', &self.bytes[..self.matched.start]).map_or(0, |i| i + 1);
                let end = memchr::memchr(b'\n', &self.bytes[self.matched.end..])
                    .map_or(self.bytes.len(), |i| self.matched.end + i);
                &self.bytes[start..end.max(self.matched.end)]
            }
        }
    }
}

impl Allowlist {
    /// Compiles `syntax`. Regexes are shared through `cache` (the built-in generic rules share
    /// one allowlist) and, unless `eager`, compiled on first use. An allowlist without any
    /// criterion is refused (it would leave out nothing, or under `AND` everything).
    pub fn compile(
        syntax: &AllowlistSyntax,
        eager: bool,
        cache: &mut HashMap<String, Arc<Pattern>>,
    ) -> Result<Allowlist, String> {
        if syntax.commits.is_empty()
            && syntax.paths.is_empty()
            && syntax.regexes.is_empty()
            && syntax.stopwords.is_empty()
        {
            return Err("an allowlist needs at least one of commits, paths, regexes, stopwords".into());
        }
        let paths = syntax
            .paths
            .iter()
            .map(|p| regex::Regex::new(p).map_err(|e| format!("invalid allowlist path regex {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let mut regexes = Vec::with_capacity(syntax.regexes.len());
        for r in &syntax.regexes {
            let pattern = match cache.get(r) {
                Some(pattern) => pattern.clone(),
                None => {
                    let pattern =
                        Arc::new(Pattern::new(r, eager).map_err(|e| format!("invalid allowlist regex {r:?}: {e}"))?);
                    cache.insert(r.clone(), pattern.clone());
                    pattern
                }
            };
            regexes.push(pattern);
        }
        Ok(Allowlist {
            description: syntax.description.clone(),
            condition: syntax.condition,
            commits: syntax.commits.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
            paths,
            regexes,
            target: syntax.regex_target,
            stopwords: syntax.stopwords.iter().map(|s| s.to_lowercase()).collect(),
        })
    }

    /// Whether everything in `path` at `commit` is left out, before its content is read: its
    /// commit or path matching, under `OR`; under `AND`, every criterion holding when the
    /// allowlist has only commits and paths (one with regexes or stopwords needs a secret).
    pub fn allows_file(&self, path: Option<&str>, commit: Option<&str>) -> bool {
        match self.condition {
            Condition::Or => self.commit_hit(commit) || self.path_hit(path),
            Condition::And => {
                self.regexes.is_empty()
                    && self.stopwords.is_empty()
                    && (self.commits.is_empty() || self.commit_hit(commit))
                    && (self.paths.is_empty() || self.path_hit(path))
            }
        }
    }

    /// Whether the secret `c` is left out.
    pub fn allows(&self, c: &Candidate<'_>) -> bool {
        let regex = || {
            let target = c.target(self.target);
            self.regexes.iter().any(|r| r.get().is_match(target))
        };
        let stopword = || {
            let lower = c.secret().to_ascii_lowercase();
            self.stopwords.iter().any(|w| memfind(&lower, w.as_bytes()))
        };
        match self.condition {
            Condition::Or => {
                self.commit_hit(c.commit)
                    || self.path_hit(c.path)
                    || (!self.regexes.is_empty() && regex())
                    || (!self.stopwords.is_empty() && stopword())
            }
            Condition::And => {
                (self.commits.is_empty() || self.commit_hit(c.commit))
                    && (self.paths.is_empty() || self.path_hit(c.path))
                    && (self.regexes.is_empty() || regex())
                    && (self.stopwords.is_empty() || stopword())
            }
        }
    }

    /// Its regexes (the tests compile the built-in ones, which are compiled on first use).
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.regexes.iter().map(|r| r.as_ref())
    }

    fn commit_hit(&self, commit: Option<&str>) -> bool {
        !self.commits.is_empty() && commit.is_some_and(|c| self.commits.contains(&c.to_ascii_lowercase()))
    }

    fn path_hit(&self, path: Option<&str>) -> bool {
        path.is_some_and(|p| self.paths.iter().any(|r| r.is_match(p)))
    }
}

fn memfind(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
