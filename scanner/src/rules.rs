//! Rules: [`RuleSyntax`] is a rule as written (sidekey's format, a superset of gitleaks'
//! `[[rules]]`), [`Rule`] is one compiled and checked. The built-in set is
//! `config/rules.toml` and the provider files in `config/rules/` ([`BUILTIN`]), compiled into
//! the binary; `--config` files add or override rules by id,
//! and may carry gitleaks' global `[allowlist]` ([`GlobalAllowlistSyntax`]: paths never
//! reported, secrets no rule reports), which [`load`] applies.
//!
//! A rule's `keywords` gate it: the engine tries a rule's regex only on content containing one
//! of them (ASCII case-insensitive). `examples` and `negative_examples` are templates (see
//! [`examples`]) so that no key-shaped literal is ever committed.

pub mod checksum;
pub mod examples;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use regex::bytes::Regex;
use serde::Deserialize;

/// The built-in rules files, as shipped, in order: `config/rules.toml` (its header documents
/// the format; generic rules last) and provider rules in `config/rules/`, one file per range of
/// providers. Ids are unique across all of them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("config/rules.toml", include_str!("../../config/rules.toml")),
    (
        "config/rules/providers-a-l.toml",
        include_str!("../../config/rules/providers-a-l.toml"),
    ),
    (
        "config/rules/providers-m-z.toml",
        include_str!("../../config/rules/providers-m-z.toml"),
    ),
];

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TOML itself is malformed.
    #[error("{file}: {message}")]
    Toml {
        /// The rules file.
        file: String,
        /// What toml said.
        message: String,
    },
    /// One rule is not usable.
    #[error("{file}: rule {id:?}: {reason}")]
    Rule {
        /// The rules file.
        file: String,
        /// The rule's id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// A rules file as written.
#[derive(Debug, Default, Deserialize)]
pub struct FileSyntax {
    /// `[[rules]]`
    #[serde(default)]
    pub rules: Vec<RuleSyntax>,
    /// gitleaks `[extend] useDefault = true`: keep the built-in rules.
    #[serde(default)]
    pub extend: Option<ExtendSyntax>,
    /// gitleaks' global `[allowlist]`: what no rule reports.
    #[serde(default)]
    pub allowlist: Option<GlobalAllowlistSyntax>,
    /// gitleaks' newer global `[[allowlists]]`.
    #[serde(default)]
    pub allowlists: Vec<GlobalAllowlistSyntax>,
}

/// A global allowlist as written (gitleaks' top-level `[allowlist]`): findings in matching
/// paths are not reported, nor secrets matching a regex or containing a stopword, whatever
/// the rule. (gitleaks' `commits` and `regexTarget` are not supported.)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GlobalAllowlistSyntax {
    /// Why (for the reader).
    #[serde(default)]
    pub description: Option<String>,
    /// Path regexes.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Patterns matched against the secret.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// Case-insensitive substrings of the secret.
    #[serde(default)]
    pub stopwords: Vec<String>,
}

/// gitleaks' `[extend]` table.
#[derive(Debug, Default, Deserialize)]
pub struct ExtendSyntax {
    /// Keep the default rules and add these.
    #[serde(default, rename = "useDefault")]
    pub use_default: bool,
}

/// One rule as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuleSyntax {
    /// Unique id, e.g. `github-pat`.
    pub id: String,
    /// What it finds.
    #[serde(default)]
    pub description: String,
    /// The family it belongs to (for per-family metrics and reports).
    #[serde(default)]
    pub family: Option<String>,
    /// The provider or product whose credential it finds (`"GitHub"`, `"Stripe"`); generic
    /// rules have none. The README's coverage list is made from it.
    #[serde(default)]
    pub provider: Option<String>,
    /// The pattern (Rust `regex` syntax).
    pub regex: Option<String>,
    /// The capture group holding the secret (0 = whole match).
    #[serde(default, rename = "secretGroup")]
    pub secret_group: Option<usize>,
    /// Literals that every match contains; lowercase.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Minimum Shannon entropy (bits/char) of the secret.
    #[serde(default)]
    pub entropy: Option<f64>,
    /// A checksum the secret must satisfy (`github`).
    #[serde(default)]
    pub checksum: Option<String>,
    /// Only files whose path matches this pattern.
    #[serde(default)]
    pub path: Option<String>,
    /// Templates this rule must match.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Templates this rule must not match.
    #[serde(default)]
    pub negative_examples: Vec<String>,
    /// gitleaks `[[rules.allowlists]]`.
    #[serde(default)]
    pub allowlists: Vec<AllowlistSyntax>,
    /// gitleaks' older single `[rules.allowlist]`.
    #[serde(default)]
    pub allowlist: Option<AllowlistSyntax>,
    /// How much text around a keyword hit a match may span: `"wide"` (default: 16 lines back,
    /// 16 KiB on) or `"line"` (the hit's line and the next), for rules whose matches never
    /// leave the keyword's line — their regex then runs only there, even in small files.
    #[serde(default)]
    pub window: Option<String>,
}

/// An allowlist as written: a finding whose secret matches any regex or contains any stopword
/// is dropped.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AllowlistSyntax {
    /// Patterns matched against the secret.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// Case-insensitive substrings of the secret.
    #[serde(default)]
    pub stopwords: Vec<String>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// What it finds.
    pub description: String,
    /// Family (`generic` when not given).
    pub family: String,
    /// Provider or product, when the rule is for one.
    pub provider: Option<String>,
    /// The pattern.
    pub regex: Pattern,
    /// Capture group of the secret, when the rule names it (see [`Rule::secret_group`]).
    secret_group: Option<usize>,
    /// Lowercase keywords.
    pub keywords: Vec<String>,
    /// Minimum entropy of the secret.
    pub entropy: Option<f64>,
    /// Checksum the secret must satisfy.
    pub checksum: Option<checksum::Checksum>,
    /// Path filter.
    pub path: Option<Regex>,
    /// Secrets matching these are dropped.
    pub allow_regexes: Vec<Arc<Pattern>>,
    /// Secrets containing these (lowercase) are dropped.
    pub stopwords: Vec<String>,
    /// Matches never leave the line of a keyword hit (and the next): see [`RuleSyntax::window`].
    pub line_window: bool,
    /// Example templates (kept for `rules check` and tests).
    pub examples: Vec<String>,
    /// Negative example templates.
    pub negative_examples: Vec<String>,
}

impl Rule {
    /// Compiles and checks one rule from `file`.
    pub fn compile(file: &str, syntax: RuleSyntax) -> Result<Rule, Error> {
        Self::compile_with(file, syntax, &mut HashMap::new(), true)
    }

    /// As [`Rule::compile`], reusing allowlist regexes already compiled for other rules
    /// (the generic rules share one allowlist; compiling it once per rule cost startup time).
    /// Unless `eager`, the rule's own regex is only parsed now and compiled on first use.
    fn compile_with(
        file: &str,
        syntax: RuleSyntax,
        allow_cache: &mut HashMap<String, Arc<Pattern>>,
        eager: bool,
    ) -> Result<Rule, Error> {
        let fail = |reason: String| Error::Rule {
            file: file.to_owned(),
            id: syntax.id.clone(),
            reason,
        };
        let pattern = syntax
            .regex
            .as_deref()
            .ok_or_else(|| fail("no regex (path-only rules are not supported)".into()))?;
        let regex = Pattern::new(pattern, eager).map_err(|e| fail(format!("invalid regex: {e}")))?;
        // Built-in rules (not `eager`) are checked by the tests; a user's rule here and now.
        if eager {
            let groups = regex.get().captures_len();
            if syntax.secret_group.is_some_and(|g| g >= groups) {
                return Err(fail(format!(
                    "secretGroup {} but the regex has {} groups",
                    syntax.secret_group.unwrap_or(0),
                    groups - 1
                )));
            }
        }
        let line_window = match syntax.window.as_deref() {
            None | Some("wide") => false,
            Some("line") => true,
            Some(other) => return Err(fail(format!("window {other:?}: expected \"line\" or \"wide\""))),
        };
        let checksum = syntax
            .checksum
            .as_deref()
            .map(|c| {
                checksum::Checksum::parse(c).ok_or_else(|| fail(format!("unknown checksum {c:?} (known: github)")))
            })
            .transpose()?;
        let path = syntax
            .path
            .as_deref()
            .map(|p| Regex::new(p).map_err(|e| fail(format!("invalid path regex: {e}"))))
            .transpose()?;
        let mut allow_regexes = Vec::new();
        let mut stopwords = Vec::new();
        for list in syntax.allowlists.iter().chain(syntax.allowlist.iter()) {
            for r in &list.regexes {
                let regex = match allow_cache.get(r) {
                    Some(regex) => regex.clone(),
                    None => {
                        let regex = Arc::new(
                            Pattern::new(r, eager).map_err(|e| fail(format!("invalid allowlist regex {r:?}: {e}")))?,
                        );
                        allow_cache.insert(r.clone(), regex.clone());
                        regex
                    }
                };
                allow_regexes.push(regex);
            }
            stopwords.extend(list.stopwords.iter().map(|s| s.to_lowercase()));
        }
        Ok(Rule {
            description: syntax.description.clone(),
            family: syntax.family.clone().unwrap_or_else(|| "generic".to_owned()),
            provider: syntax.provider.clone(),
            regex,
            secret_group: syntax.secret_group,
            line_window,
            keywords: syntax
                .keywords
                .iter()
                .map(|k| k.to_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
            entropy: syntax.entropy,
            checksum,
            path,
            allow_regexes,
            stopwords,
            examples: syntax.examples.clone(),
            negative_examples: syntax.negative_examples.clone(),
            id: syntax.id,
        })
    }

    /// The capture group holding the secret: as the rule says, else 1 when the regex has a
    /// group, else 0 (the whole match).
    pub fn secret_group(&self) -> usize {
        self.secret_group
            .unwrap_or_else(|| if self.regex.get().captures_len() > 1 { 1 } else { 0 })
    }

    /// Whether `secret` passes this rule's entropy, checksum and allowlists.
    pub fn accepts(&self, secret: &[u8]) -> bool {
        if let Some(min) = self.entropy {
            if entropy(secret) < min {
                return false;
            }
        }
        if let Some(c) = &self.checksum {
            if !c.verify(secret) {
                return false;
            }
        }
        if self.allow_regexes.iter().any(|r| r.get().is_match(secret)) {
            return false;
        }
        if !self.stopwords.is_empty() {
            let lower = secret.to_ascii_lowercase();
            if self.stopwords.iter().any(|w| memfind(&lower, w.as_bytes())) {
                return false;
            }
        }
        true
    }
}

/// A regex compiled on first use: most rules never see their keyword in a given scan, and
/// compiling (even parsing) all of them was most of the start-up time. Built-in patterns are
/// compiled by the tests; a user's (`eager`) at load, so a bad one is refused up front.
#[derive(Debug)]
pub struct Pattern {
    source: String,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    /// A pattern for `source`, compiled now if `eager`.
    pub fn new(source: &str, eager: bool) -> Result<Pattern, String> {
        let compiled = OnceLock::new();
        if eager {
            let regex = Regex::new(source).map_err(|e| e.to_string())?;
            compiled.set(regex).expect("just created");
        }
        Ok(Pattern {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The compiled regex.
    pub fn get(&self) -> &Regex {
        self.compiled
            .get_or_init(|| Regex::new(&self.source).expect("the built-in rules are compiled by the tests"))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Parses a rules file (`file` names it in errors); every regex is compiled now.
pub fn parse(file: &str, text: &str) -> Result<(FileSyntax, Vec<Rule>), Error> {
    parse_with(file, text, true)
}

fn parse_with(file: &str, text: &str, eager: bool) -> Result<(FileSyntax, Vec<Rule>), Error> {
    let syntax: FileSyntax = toml::from_str(text).map_err(|e| Error::Toml {
        file: file.to_owned(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(syntax.rules.len());
    let mut allow_cache = HashMap::new();
    for r in &syntax.rules {
        if !seen.insert(r.id.clone()) {
            return Err(Error::Rule {
                file: file.to_owned(),
                id: r.id.clone(),
                reason: "duplicate id".into(),
            });
        }
        rules.push(Rule::compile_with(file, r.clone(), &mut allow_cache, eager)?);
    }
    Ok((syntax, rules))
}

/// The built-in rules.
pub fn builtin() -> Vec<Rule> {
    let mut rules = Vec::new();
    for (file, text) in BUILTIN {
        let name = format!("{file} (built in)");
        let (_, mut more) = parse_with(&name, text, false).expect("the built-in rules compile (checked by tests)");
        rules.append(&mut more);
    }
    rules
}

/// The built-in rules plus those of the `config` file (`--config`): a rule with a built-in id
/// replaces it, others are added (gitleaks' `[extend] useDefault = true` reads the same way).
/// The config's global `[allowlist]` regexes and stopwords join every rule's; its paths are
/// answered second (for [`crate::engine::Engine::with_allowed_paths`]).
pub fn load(config: Option<&std::path::Path>) -> anyhow::Result<(Vec<Rule>, Vec<regex::Regex>)> {
    let mut all = builtin();
    let mut paths = Vec::new();
    if let Some(path) = config {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read rules: {e}", path.display()))?;
        let (syntax, extra) = parse(&file, &text)?;
        for rule in extra {
            match all.iter().position(|r| r.id == rule.id) {
                Some(i) => all[i] = rule,
                None => all.push(rule),
            }
        }
        let fail =
            |what: &str, r: &str, e: String| anyhow::anyhow!("{file}: [allowlist] invalid {what} regex {r:?}: {e}");
        for list in syntax.allowlist.iter().chain(&syntax.allowlists) {
            for p in &list.paths {
                paths.push(regex::Regex::new(p).map_err(|e| fail("path", p, e.to_string()))?);
            }
            for r in &list.regexes {
                let regex = Arc::new(Pattern::new(r, true).map_err(|e| fail("secret", r, e))?);
                for rule in &mut all {
                    rule.allow_regexes.push(regex.clone());
                }
            }
            for w in &list.stopwords {
                for rule in &mut all {
                    rule.stopwords.push(w.to_lowercase());
                }
            }
        }
    }
    Ok((all, paths))
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in bytes {
        counts[*b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn memfind(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
