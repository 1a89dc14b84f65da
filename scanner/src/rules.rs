//! Rules: [`RuleSyntax`] is a rule as written (sidekey's format, a superset of gitleaks'
//! `[[rules]]`), [`Rule`] is one compiled and checked, [`FileRule`] one that matches paths
//! alone (gitleaks' path-only rules: it reports the file). The built-in set is
//! `config/rules.toml` and the provider files in `config/rules/` ([`BUILTIN`]), compiled into
//! the binary. A config (`--config`, `GITLEAKS_CONFIG`, `.gitleaks.toml`) is read by [`load`]
//! ([`config`]) with gitleaks' semantics: `[extend]`, allowlists ([`allowlist`]), and every key
//! either honoured or refused with its file and line — never ignored.
//!
//! A rule's `keywords` gate it: the engine tries a rule's regex only on content containing one
//! of them (ASCII case-insensitive). `examples` and `negative_examples` are templates (see
//! [`examples`]) so that no key-shaped literal is ever committed.

pub mod allowlist;
pub mod checksum;
pub mod config;
pub mod examples;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use regex::bytes::{Captures, Regex};
use serde::Deserialize;

pub use allowlist::{Allowlist, AllowlistSyntax, Candidate};
pub use config::{load, RuleSet, Source};

/// The built-in rules files (as named in `scanner/build.rs`, which lists them, in order), each
/// with its rules as JSON: the build script converts the TOML, which deserializes in a fraction
/// of the time (start-up is what a pre-commit hook pays). The TOML stays the source people edit;
/// a test checks that both give the same rules.
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not a usable config: malformed TOML, a key sidekey does not implement, a
    /// value out of range, an `[extend]` that cannot be followed.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        /// The rules file.
        file: String,
        /// The 1-based line at fault, when known.
        line: Option<usize>,
        /// What is wrong.
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

/// A rules file as written. Every key is either honoured or refused: an unknown one is an
/// error naming the file, the key and its line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSyntax {
    /// gitleaks' `title` (for the reader).
    #[serde(default)]
    pub title: Option<String>,
    /// gitleaks' top-level `description` (for the reader).
    #[serde(default)]
    pub description: Option<String>,
    /// gitleaks' `minVersion` (of gitleaks; not checked).
    #[serde(default, rename = "minVersion", alias = "minversion")]
    pub min_version: Option<String>,
    /// `[[rules]]`
    #[serde(default)]
    pub rules: Vec<RuleSyntax>,
    /// gitleaks' `[extend]`: the rules this file builds on. Without it a file's rules are the
    /// whole rule set.
    #[serde(default)]
    pub extend: Option<toml::Spanned<ExtendSyntax>>,
    /// gitleaks' older single global `[allowlist]`.
    #[serde(default)]
    pub allowlist: Option<toml::Spanned<AllowlistSyntax>>,
    /// gitleaks' global `[[allowlists]]`: what no rule (or only the `targetRules`) reports.
    #[serde(default)]
    pub allowlists: Vec<toml::Spanned<AllowlistSyntax>>,
}

/// gitleaks' `[extend]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendSyntax {
    /// Build on sidekey's built-in rules.
    #[serde(default, rename = "useDefault", alias = "usedefault")]
    pub use_default: bool,
    /// Build on another config file (relative to this one's directory, or else to the current
    /// directory as gitleaks reads it).
    #[serde(default)]
    pub path: Option<toml::Spanned<String>>,
    /// Rules of the extended set (by id) left out.
    #[serde(default, rename = "disabledRules", alias = "disabledrules")]
    pub disabled_rules: Vec<toml::Spanned<String>>,
}

/// One rule as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSyntax {
    /// Unique id, e.g. `github-pat`.
    pub id: String,
    /// What it finds.
    #[serde(default)]
    pub description: String,
    /// The family it belongs to (for per-family metrics and reports). When not given:
    /// `generic` if the id contains "generic" (gitleaks' test), else `custom`.
    #[serde(default)]
    pub family: Option<String>,
    /// The provider or product whose credential it finds (`"GitHub"`, `"Stripe"`); generic
    /// rules have none. The README's coverage list is made from it.
    #[serde(default)]
    pub provider: Option<String>,
    /// The pattern (Rust `regex` syntax). A rule with `path` and no `regex` reports files.
    pub regex: Option<String>,
    /// The capture group holding the secret (0 = the whole match); when not given, the first
    /// group that took part in the match (the whole match for a regex without groups).
    #[serde(default, rename = "secretGroup", alias = "secretgroup")]
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
    /// Only files whose path matches this pattern (with no `regex`: report those files).
    #[serde(default)]
    pub path: Option<String>,
    /// gitleaks' `tags` (for the reader; not reported).
    #[serde(default)]
    pub tags: Vec<String>,
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

impl RuleSyntax {
    /// The rule's regex, unless missing or empty (gitleaks reads `regex = ""` as none).
    fn regex(&self) -> Option<&str> {
        self.regex.as_deref().filter(|r| !r.is_empty())
    }

    /// The rule's path regex, unless missing or empty.
    fn path(&self) -> Option<&str> {
        self.path.as_deref().filter(|p| !p.is_empty())
    }

    /// Its allowlists, the older single one included.
    fn all_allowlists(&self) -> impl Iterator<Item = &AllowlistSyntax> {
        self.allowlists.iter().chain(self.allowlist.iter())
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// What it finds.
    pub description: String,
    /// Family (when not given: `generic` if the id says so, else `custom`; see [`RuleSyntax::family`]).
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
    /// What this rule does not report: its own allowlists and the config's `[[allowlists]]`
    /// that name it in `targetRules`.
    pub allowlists: Vec<Arc<Allowlist>>,
    /// Matches never leave the line of a keyword hit (and the next): see [`RuleSyntax::window`].
    pub line_window: bool,
    /// Example templates (kept for `rules check` and tests).
    pub examples: Vec<String>,
    /// Negative example templates.
    pub negative_examples: Vec<String>,
}

/// Why a candidate a rule matched is not reported, as `--explain` says it (the words never
/// hold the candidate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dropped<'a> {
    /// Its entropy (bits per byte) is below the rule's minimum.
    Entropy { bits: f64, min: f64 },
    /// Its checksum is not valid.
    Checksum,
    /// The rule's allowlist (with its description, if it has one) leaves it out.
    RuleAllowlist(Option<&'a str>),
    /// The config's global allowlist (with its description, if it has one) leaves it out.
    ConfigAllowlist(Option<&'a str>),
    /// A generic rule's hex value whose bytes count or repeat.
    TestVector,
}

impl std::fmt::Display for Dropped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Entropy { bits, min } => write!(f, "entropy {bits:.2} bits per byte is below the rule's {min}"),
            Dropped::Checksum => f.write_str("its checksum is not valid (a made-up or mistyped token)"),
            Dropped::RuleAllowlist(Some(d)) => write!(f, "the rule's allowlist ({d})"),
            Dropped::RuleAllowlist(None) => f.write_str("the rule's allowlist (a placeholder, example or reference)"),
            Dropped::ConfigAllowlist(Some(d)) => write!(f, "the config's allowlist ({d})"),
            Dropped::ConfigAllowlist(None) => f.write_str("the config's allowlist"),
            Dropped::TestVector => f.write_str("a test vector (hex whose bytes count or repeat)"),
        }
    }
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
        let pattern = syntax.regex().ok_or_else(|| {
            fail(match syntax.path() {
                Some(_) => "no regex (a rule with only a path reports files: load it with its config)".into(),
                None => "no regex and no path: it would never report anything".into(),
            })
        })?;
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
            .path()
            .map(|p| Regex::new(p).map_err(|e| fail(format!("invalid path regex: {e}"))))
            .transpose()?;
        let allowlists = compile_allowlists(&syntax, eager, allow_cache).map_err(fail)?;
        Ok(Rule {
            description: syntax.description.clone(),
            family: family(&syntax),
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
            allowlists,
            examples: syntax.examples.clone(),
            negative_examples: syntax.negative_examples.clone(),
            id: syntax.id,
        })
    }

    /// The capture group holding the secret: as the rule says, else 1 when the regex has a
    /// group, else 0 (the whole match). (When the rule does not say, the engine takes the
    /// first group that took part in each match: [`Rule::secret_in`].)
    pub fn secret_group(&self) -> usize {
        self.secret_group
            .unwrap_or_else(|| if self.regex.get().captures_len() > 1 { 1 } else { 0 })
    }

    /// The secret of one match: the group the rule names, or else (as gitleaks) the first
    /// group that took part in the match, or the whole match for a regex without groups.
    pub fn secret_in<'h>(&self, caps: &Captures<'h>) -> Option<regex::bytes::Match<'h>> {
        match self.secret_group {
            Some(group) => caps.get(group),
            None if caps.len() == 1 => caps.get(0),
            None => caps.iter().skip(1).flatten().find(|m| !m.is_empty()),
        }
    }

    /// Whether `secret` passes this rule's entropy, checksum and allowlists, the secret alone
    /// known (no path, commit or surrounding text).
    pub fn accepts(&self, secret: &[u8]) -> bool {
        self.admits(&Candidate {
            path: None,
            commit: None,
            bytes: secret,
            matched: 0..secret.len(),
            secret: 0..secret.len(),
        })
    }

    /// Whether the found secret `c` passes this rule's entropy, checksum and allowlists.
    pub fn admits(&self, c: &Candidate<'_>) -> bool {
        self.rejects(c).is_none()
    }

    /// Why this rule drops the found secret `c` (its entropy, checksum or an allowlist);
    /// `None` when it is kept. Nothing is allocated: the scan asks this of every candidate.
    pub fn rejects(&self, c: &Candidate<'_>) -> Option<Dropped<'_>> {
        let secret = c.secret();
        if let Some(min) = self.entropy {
            let bits = entropy(secret);
            if bits < min {
                return Some(Dropped::Entropy { bits, min });
            }
        }
        if let Some(sum) = &self.checksum {
            if !sum.verify(secret) {
                return Some(Dropped::Checksum);
            }
        }
        let list = self.allowlists.iter().find(|a| a.allows(c))?;
        Some(Dropped::RuleAllowlist(list.description.as_deref()))
    }

    /// Whether this rule's allowlists leave out everything in `path` at `commit`.
    pub fn allows_file(&self, path: Option<&str>, commit: Option<&str>) -> bool {
        self.allowlists.iter().any(|a| a.allows_file(path, commit))
    }
}

/// A rule with a `path` and no `regex` (gitleaks' path-only rule): every file whose path
/// matches is reported, whatever it holds.
#[derive(Debug)]
pub struct FileRule {
    /// Unique id.
    pub id: String,
    /// What it finds.
    pub description: String,
    /// Family (when not given: `generic` if the id says so, else `custom`; see [`RuleSyntax::family`]).
    pub family: String,
    /// The paths it reports.
    pub path: regex::Regex,
    /// Its allowlists' commits and paths leave files out (regexes and stopwords have no secret
    /// to look at).
    pub allowlists: Vec<Arc<Allowlist>>,
}

impl FileRule {
    /// Compiles a rule with a path and no regex.
    fn compile(file: &str, syntax: &RuleSyntax, cache: &mut HashMap<String, Arc<Pattern>>) -> Result<FileRule, Error> {
        let fail = |reason: String| Error::Rule {
            file: file.to_owned(),
            id: syntax.id.clone(),
            reason,
        };
        let path = regex::Regex::new(syntax.path().unwrap_or_default())
            .map_err(|e| fail(format!("invalid path regex: {e}")))?;
        Ok(FileRule {
            id: syntax.id.clone(),
            description: syntax.description.clone(),
            family: family(syntax),
            path,
            allowlists: compile_allowlists(syntax, true, cache).map_err(fail)?,
        })
    }

    /// Whether this rule reports the file at `path` (introduced by `commit`).
    pub fn reports(&self, path: &str, commit: Option<&str>) -> bool {
        self.path.is_match(path) && !self.allowlists.iter().any(|a| a.allows_file(Some(path), commit))
    }
}

/// A rule's family as written, else (for a rule from a gitleaks config) `generic` when its id
/// says so — gitleaks' own test of a generic rule — and `custom` otherwise, so that a config's
/// rule for its own tokens is preferred over a generic rule that reports the same secret.
fn family(syntax: &RuleSyntax) -> String {
    match &syntax.family {
        Some(family) => family.clone(),
        None if syntax.id.to_ascii_lowercase().contains("generic") => "generic".to_owned(),
        None => "custom".to_owned(),
    }
}

/// A rule's own allowlists, compiled; `targetRules` has no place there.
fn compile_allowlists(
    syntax: &RuleSyntax,
    eager: bool,
    cache: &mut HashMap<String, Arc<Pattern>>,
) -> Result<Vec<Arc<Allowlist>>, String> {
    syntax
        .all_allowlists()
        .map(|list| {
            if list.target_rules.is_some() {
                return Err("targetRules belongs in a top-level [[allowlists]], not in a rule's".to_owned());
            }
            Allowlist::compile(list, eager, cache).map(Arc::new)
        })
        .collect()
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

/// Parses a rules file (`file` names it in errors) and compiles its own rules, every regex
/// now; rules with a path and no regex are left to [`load`] (they are not [`Rule`]s).
pub fn parse(file: &str, text: &str) -> Result<(FileSyntax, Vec<Rule>), Error> {
    let syntax = parse_syntax(file, text)?;
    check_ids(file, &syntax.rules)?;
    let mut cache = HashMap::new();
    let mut rules = Vec::with_capacity(syntax.rules.len());
    for r in &syntax.rules {
        if r.regex().is_none() && r.path().is_some() {
            continue;
        }
        rules.push(Rule::compile_with(file, r.clone(), &mut cache, true)?);
    }
    Ok((syntax, rules))
}

/// Reads a rules file as written. An error names the file and the line: an unknown key (a
/// gitleaks feature sidekey does not implement is refused, never ignored), a wrong type, a
/// value out of its set.
pub fn parse_syntax(file: &str, text: &str) -> Result<FileSyntax, Error> {
    toml::from_str(text).map_err(|e| Error::Config {
        file: file.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        message: explain(e.message()),
    })
}

/// Refuses empty and repeated ids within one file.
fn check_ids(file: &str, rules: &[RuleSyntax]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        let reason = if r.id.trim().is_empty() {
            "empty id"
        } else if !seen.insert(r.id.as_str()) {
            "duplicate id"
        } else {
            continue;
        };
        return Err(Error::Rule {
            file: file.to_owned(),
            id: r.id.clone(),
            reason: reason.into(),
        });
    }
    Ok(())
}

/// The 1-based line of byte `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    memchr::memchr_iter(b'\n', &text.as_bytes()[..at.min(text.len())]).count() + 1
}

/// toml's message, said in a config's words: an unknown key is one sidekey-scan does not
/// implement (gitleaks features it lacks are named), not a typo it could skip.
fn explain(message: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
    let why = match key {
        "required" => "gitleaks' composite rules ([[rules.required]]) are not implemented by sidekey-scan",
        "skipReport" | "skipreport" => {
            "gitleaks' skipReport (for composite rules) is not implemented by sidekey-scan"
        }
        "url" => "[extend] url is not implemented (gitleaks does not implement it either): save the file and name it in [extend] path",
        _ => "sidekey-scan does not implement it",
    };
    let known = expected
        .trim_start_matches(',')
        .trim()
        .strip_prefix("expected one of ")
        .or_else(|| expected.trim_start_matches(',').trim().strip_prefix("expected "))
        .map(|keys| {
            // Without the all-lowercase spellings also accepted (gitleaks reads keys in any case).
            let mut seen = std::collections::HashSet::new();
            let keys: Vec<&str> = keys
                .split(", ")
                .filter(|k| seen.insert(k.to_ascii_lowercase()))
                .collect();
            format!(" (keys here: {})", keys.join(", "))
        })
        .unwrap_or_default();
    format!("unknown key `{key}`: {why}{known}")
}

/// The rules of a built-in file, from its JSON form.
#[derive(Deserialize)]
struct BuiltinFile {
    rules: Vec<RuleSyntax>,
}

/// Rules as written, each with the file it comes from.
type RulesAsWritten = Vec<(String, RuleSyntax)>;

/// The built-in rules as written, being read on another thread by [`prefetch_builtin`].
static PREFETCHED: std::sync::Mutex<Option<std::thread::JoinHandle<RulesAsWritten>>> = std::sync::Mutex::new(None);

/// Starts reading the built-in rules on another thread, for the next [`builtin_syntax`]: a
/// scan of git (`--staged`) asks git for the repository meanwhile, instead of one after the
/// other.
pub fn prefetch_builtin() {
    let mut prefetched = PREFETCHED.lock().unwrap_or_else(|e| e.into_inner());
    if prefetched.is_none() {
        *prefetched = std::thread::Builder::new()
            .name("rules".into())
            .spawn(read_builtin)
            .ok();
    }
}

/// The built-in rules as written, each with the file it comes from, in order.
pub(crate) fn builtin_syntax() -> RulesAsWritten {
    let prefetched = PREFETCHED.lock().unwrap_or_else(|e| e.into_inner()).take();
    match prefetched.map(std::thread::JoinHandle::join) {
        Some(Ok(rules)) => rules,
        _ => read_builtin(),
    }
}

/// Reads [`BUILTIN`].
fn read_builtin() -> RulesAsWritten {
    let mut all = Vec::new();
    for (file, json) in BUILTIN {
        let name = format!("{file} (built in)");
        let syntax: BuiltinFile = serde_json::from_str(json).expect("the built-in rules parse (checked by tests)");
        all.extend(syntax.rules.into_iter().map(|r| (name.clone(), r)));
    }
    all
}

/// The built-in rules.
pub fn builtin() -> Vec<Rule> {
    let mut cache = HashMap::new();
    builtin_syntax()
        .into_iter()
        .map(|(file, r)| {
            Rule::compile_with(&file, r, &mut cache, false).expect("the built-in rules compile (checked by tests)")
        })
        .collect()
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

#[cfg(test)]
mod tests;
