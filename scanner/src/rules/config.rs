//! Loading a config with gitleaks' semantics: the rule set a scan runs with ([`RuleSet`]).
//!
//! - No config: the built-in rules.
//! - A config without `[extend]` is the whole rule set: the built-in rules are not used (as
//!   gitleaks' own defaults are not). `[extend] useDefault = true` builds on the built-in
//!   rules, `[extend] path = "base.toml"` on another config (itself read the same way, at most
//!   [`MAX_DEPTH`] levels deep); `disabledRules` leaves rules of that base out.
//! - A rule whose id is in the base is merged into it (gitleaks' extend): what the config sets
//!   replaces the base's `description`, `regex`, `secretGroup`, `entropy`, `path` (and
//!   sidekey's own keys), while `keywords`, `tags` and allowlists are added to the base's.
//! - A config's `[[allowlists]]` (and `[allowlist]`) apply to every rule, or with `targetRules`
//!   to the rules named; the base's allowlists are kept.
//!
//! Every key is honoured or refused (see [`super::parse_syntax`]); a rule id that
//! `targetRules` names must exist; an empty rule set is refused (a config without `[extend]`
//! and without rules of its own would find nothing).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{builtin_syntax, check_ids, line_of, parse_syntax, Allowlist, Error, FileRule, Rule, RuleSyntax};

/// How many `[extend]` levels are followed (gitleaks' limit): a config may extend one that
/// extends another; a third `[extend]` is refused.
pub const MAX_DEPTH: usize = 2;

/// Where a config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file (`--config`, `GITLEAKS_CONFIG`, a `.gitleaks.toml` found at the scanned root).
    File(PathBuf),
    /// A config's text (`GITLEAKS_CONFIG_TOML`), with the name errors give it; a relative
    /// `[extend] path` in it is read from the current directory.
    Text {
        /// What errors call it.
        name: String,
        /// The TOML.
        text: String,
    },
}

/// The rules a scan runs with.
#[derive(Debug)]
pub struct RuleSet {
    /// Rules with a regex, in order (built-in first when extended, then the config's).
    pub rules: Vec<Rule>,
    /// Rules with a path and no regex: they report files.
    pub file_rules: Vec<FileRule>,
    /// The config's allowlists without `targetRules`: what no rule reports.
    pub allowlists: Vec<Allowlist>,
    /// Whether the built-in rules are part of the set (no config, or one that extends them).
    pub builtin: bool,
    /// What is worth a word on stderr (a disabled rule that is not in the base).
    pub warnings: Vec<String>,
}

/// The rule set for `config`: the built-in rules without one.
pub fn load(config: Option<&Source>) -> Result<RuleSet, Error> {
    let Some(source) = config else {
        return compile(base_rules(), Vec::new(), true, Vec::new());
    };
    let (name, text, dir) = match source {
        Source::File(path) => (
            path.display().to_string(),
            read(&path.display().to_string(), path)?,
            path.parent().map(Path::to_owned),
        ),
        Source::Text { name, text } => (name.clone(), text.clone(), None),
    };
    let mut warnings = Vec::new();
    let layer = resolve(&name, &text, dir.as_deref(), 0, &mut warnings)?;
    if layer.rules.is_empty() {
        return Err(Error::Config {
            file: name,
            line: None,
            message: "no rules: a config without [extend] replaces the built-in rules, and this one has no \
                      [[rules]] of its own; to keep the built-in rules, add `[extend]` with `useDefault = true`"
                .into(),
        });
    }
    compile(layer.rules, layer.allowlists, layer.builtin, warnings)
}

/// A rule as written, with the file it was last written in and whether it is only the
/// built-in one (compiled on first use) or touched by a config (compiled now).
struct Entry {
    file: String,
    syntax: RuleSyntax,
    builtin: bool,
}

/// A global allowlist as written, with its file, its line and the line of its `targetRules`.
struct GlobalList {
    file: String,
    line: Option<usize>,
    targets_line: Option<usize>,
    syntax: super::AllowlistSyntax,
}

/// A config with its `[extend]` chain followed.
struct Layer {
    rules: Vec<Entry>,
    allowlists: Vec<GlobalList>,
    builtin: bool,
}

fn base_rules() -> Vec<Entry> {
    builtin_syntax()
        .into_iter()
        .map(|(file, syntax)| Entry {
            file,
            syntax,
            builtin: true,
        })
        .collect()
}

fn read(name: &str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Config {
        file: name.to_owned(),
        line: None,
        message: format!("cannot read: {e}"),
    })
}

/// The config `name` (its text, the directory it is in) with what it extends, `depth`
/// levels below the config the user named.
fn resolve(
    name: &str,
    text: &str,
    dir: Option<&Path>,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<Layer, Error> {
    let syntax = parse_syntax(name, text)?;
    check_ids(name, &syntax.rules)?;
    let at = |span: std::ops::Range<usize>| Some(line_of(text, span.start));
    let fail = |line: Option<usize>, message: String| Error::Config {
        file: name.to_owned(),
        line,
        message,
    };
    let mut base = Layer {
        rules: Vec::new(),
        allowlists: Vec::new(),
        builtin: false,
    };
    if let Some(spanned) = &syntax.extend {
        let extend = spanned.get_ref();
        let path_line = extend.path.as_ref().and_then(|p| at(p.span())).or(at(spanned.span()));
        if extend.use_default && extend.path.is_some() {
            return Err(fail(
                path_line,
                "[extend] has both useDefault and path: choose one (as gitleaks requires)".into(),
            ));
        }
        if (extend.use_default || extend.path.is_some()) && depth >= MAX_DEPTH {
            return Err(fail(
                path_line,
                format!("[extend] nested too deep: configs extend at most {MAX_DEPTH} levels (as gitleaks)"),
            ));
        }
        if extend.use_default {
            base.rules = base_rules();
            base.builtin = true;
        } else if let Some(path) = &extend.path {
            let (file, found) = locate(path.get_ref(), dir);
            let next = found.ok_or_else(|| {
                fail(
                    path_line,
                    format!("[extend] path {:?}: no such file (looked for {file})", path.get_ref()),
                )
            })?;
            let shown = next.display().to_string();
            let text = read(&shown, &next)?;
            base = resolve(&shown, &text, next.parent(), depth + 1, warnings)?;
        } else if let Some(first) = extend.disabled_rules.first() {
            return Err(fail(
                at(first.span()),
                "[extend] disabledRules without useDefault or path: there is nothing to disable rules of".into(),
            ));
        }
        for id in &extend.disabled_rules {
            let before = base.rules.len();
            base.rules.retain(|e| e.syntax.id != *id.get_ref());
            if base.rules.len() == before {
                warnings.push(format!(
                    "{name}:{}: [extend] disabledRules: no rule {:?} in the extended rules",
                    line_of(text, id.span().start),
                    id.get_ref()
                ));
            }
        }
    }
    for rule in syntax.rules {
        match base.rules.iter_mut().find(|e| e.syntax.id == rule.id) {
            Some(entry) => {
                entry.syntax = merge(std::mem::take(&mut entry.syntax), rule);
                entry.file = name.to_owned();
                entry.builtin = false;
            }
            None => base.rules.push(Entry {
                file: name.to_owned(),
                syntax: rule,
                builtin: false,
            }),
        }
    }
    let own = syntax
        .allowlist
        .into_iter()
        .chain(syntax.allowlists)
        .map(|list| GlobalList {
            file: name.to_owned(),
            line: at(list.span()),
            targets_line: list.get_ref().target_rules.as_ref().and_then(|t| at(t.span())),
            syntax: list.into_inner(),
        });
    base.allowlists.splice(0..0, own);
    Ok(base)
}

/// Where an `[extend] path` is: relative to the extending config's directory, or else (as
/// gitleaks reads it) to the current directory. Answers what was looked for, and the file.
fn locate(path: &str, dir: Option<&Path>) -> (String, Option<PathBuf>) {
    let path = Path::new(path);
    let mut tried = Vec::new();
    let candidates = dir
        .filter(|_| path.is_relative())
        .map(|d| d.join(path))
        .into_iter()
        .chain(std::iter::once(path.to_owned()));
    for candidate in candidates {
        if candidate.is_file() {
            return (candidate.display().to_string(), Some(candidate));
        }
        tried.push(candidate.display().to_string());
    }
    tried.dedup();
    (tried.join(" and "), None)
}

/// gitleaks' merge of a config's rule into the base rule of the same id: what `over` sets
/// wins, keywords, tags and allowlists add up.
fn merge(base: RuleSyntax, over: RuleSyntax) -> RuleSyntax {
    let set = |s: String| Some(s).filter(|s| !s.is_empty());
    let mut allowlists: Vec<_> = base.allowlist.into_iter().chain(base.allowlists).collect();
    allowlists.extend(over.allowlist.into_iter().chain(over.allowlists));
    RuleSyntax {
        id: base.id,
        description: set(over.description).unwrap_or(base.description),
        family: over.family.or(base.family),
        provider: over.provider.or(base.provider),
        regex: over.regex.and_then(set).or(base.regex),
        secret_group: over.secret_group.or(base.secret_group),
        keywords: [base.keywords, over.keywords].concat(),
        entropy: over.entropy.or(base.entropy),
        checksum: over.checksum.or(base.checksum),
        path: over.path.and_then(set).or(base.path),
        tags: [base.tags, over.tags].concat(),
        examples: if over.examples.is_empty() {
            base.examples
        } else {
            over.examples
        },
        negative_examples: if over.negative_examples.is_empty() {
            base.negative_examples
        } else {
            over.negative_examples
        },
        allowlists,
        allowlist: None,
        window: over.window.or(base.window),
    }
}

/// Compiles the resolved rules and allowlists; a `targetRules` allowlist joins the rules it
/// names.
fn compile(
    entries: Vec<Entry>,
    lists: Vec<GlobalList>,
    builtin: bool,
    warnings: Vec<String>,
) -> Result<RuleSet, Error> {
    let mut cache = HashMap::new();
    let mut rules = Vec::with_capacity(entries.len());
    let mut file_rules = Vec::new();
    for Entry { file, syntax, builtin } in entries {
        if syntax.regex().is_none() && syntax.path().is_some() {
            file_rules.push(FileRule::compile(&file, &syntax, &mut cache)?);
        } else {
            rules.push(Rule::compile_with(&file, syntax, &mut cache, !builtin)?);
        }
    }
    let mut allowlists = Vec::new();
    for GlobalList {
        file,
        line,
        targets_line,
        syntax,
    } in lists
    {
        let list = Allowlist::compile(&syntax, true, &mut cache).map_err(|message| Error::Config {
            file: file.clone(),
            line,
            message: format!("[[allowlists]]: {message}"),
        })?;
        let Some(targets) = &syntax.target_rules else {
            allowlists.push(list);
            continue;
        };
        let list = Arc::new(list);
        for id in targets.get_ref() {
            if let Some(rule) = rules.iter_mut().find(|r| r.id == *id) {
                rule.allowlists.push(list.clone());
            } else if let Some(rule) = file_rules.iter_mut().find(|r| r.id == *id) {
                rule.allowlists.push(list.clone());
            } else {
                return Err(Error::Config {
                    file,
                    line: targets_line,
                    message: format!("[[allowlists]] targetRules: no rule {id:?}"),
                });
            }
        }
    }
    Ok(RuleSet {
        rules,
        file_rules,
        allowlists,
        builtin,
        warnings,
    })
}
