//! The engine: one keyword pass ([`keywords`]) over every rule's keywords finds which rules can match
//! at all; only those rules' regexes run, and only their secrets that pass entropy, checksum
//! and allowlists (the rule's and the config's) become [`Match`]es with line and column. Rules
//! that match paths alone ([`FileRule`]) are asked per file ([`Engine::file_rules`]). The
//! engine knows no file format and no report format; compiled rules are shared, so one
//! `Engine` serves every thread.

use regex::bytes::RegexSet;
use std::collections::HashMap;
use std::ops::Range;

use crate::rules::{Allowlist, Candidate, Dropped, FileRule, Rule, RuleSet};

mod keywords;

use keywords::Keywords;

/// A secret found by a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index of the rule in [`Engine::rules`].
    pub rule: usize,
    /// Byte range of the whole match.
    pub span: Range<usize>,
    /// Byte range of the secret within the blob.
    pub secret: Range<usize>,
    /// 1-based line of the secret's first byte.
    pub line: usize,
    /// 1-based column (in characters) of the secret's first byte.
    pub column: usize,
}

/// Blobs up to this size are searched whole by each rule whose keyword occurs; in larger ones
/// a rule's regex only runs in windows around its keyword hits.
const WHOLE: usize = 64 * 1024;
/// How far before a keyword hit a window starts: this many lines back...
const BACK_LINES: usize = 16;
/// ...but no more than this many bytes.
const BACK_MAX: usize = 8 * 1024;
/// How far after a keyword hit a window ends (a PEM private key fits).
const FORWARD: usize = 16 * 1024;

/// Compiled rules plus the keyword pass over all their keywords.
pub struct Engine {
    rules: Vec<Rule>,
    /// The keyword pass over every rule's keywords (a hit names the keyword's index).
    keywords: Keywords,
    /// For each keyword pattern, the rules that listed it.
    keyword_rules: Vec<Vec<usize>>,
    /// For each keyword pattern: whether a rule with a line window lists it (its hits' places
    /// are needed even in small blobs), and whether another rule does.
    keyword_reach: Vec<(bool, bool)>,
    /// Rules with neither keywords nor a literal every match must contain: one regex set pass
    /// over each blob tells which of them can match (one set per rule when together they
    /// exceed the regex size limit).
    unanchored: Vec<(RegexSet, Vec<usize>)>,
    /// What no rule reports (a config's `[[allowlists]]` without `targetRules`).
    allowlists: Vec<Allowlist>,
    /// Paths not scanned at all (`--exclude`, `.sidekeyignore`).
    excludes: Option<ignore::gitignore::Gitignore>,
    /// `--explain`: say on stderr why each candidate a rule matched was dropped.
    explain: bool,
    /// Rules that report files by their path alone.
    file_rules: Vec<FileRule>,
}

/// The regex sets over the `unanchored` rules: one set for all when it fits the size limit,
/// else one per rule (each regex compiled on its own, so a set of one does too).
fn unanchored_sets(rules: &[Rule], unanchored: Vec<usize>) -> Vec<(RegexSet, Vec<usize>)> {
    if unanchored.is_empty() {
        return Vec::new();
    }
    let set = |indexes: &[usize]| RegexSet::new(indexes.iter().map(|i| rules[*i].regex.as_str()));
    match set(&unanchored) {
        Ok(all) => vec![(all, unanchored)],
        Err(_) => unanchored
            .into_iter()
            .filter_map(|i| Some((set(&[i]).ok()?, vec![i])))
            .collect(),
    }
}

impl Engine {
    /// Builds the engine for `rules`. A rule without keywords gets the literals its regex
    /// requires as keywords (as gitleaks configs often omit them); rules with none go into one
    /// regex set.
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut patterns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut unanchored = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let derived;
            let keywords = if rule.keywords.is_empty() {
                derived = required_literals(rule.regex.as_str());
                if derived.is_empty() {
                    unanchored.push(i);
                }
                &derived
            } else {
                &rule.keywords
            };
            for k in keywords {
                match index.get(k) {
                    Some(p) => keyword_rules[*p].push(i),
                    None => {
                        index.insert(k.clone(), patterns.len());
                        patterns.push(k.clone());
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        let keywords = Keywords::new(&patterns);
        let keyword_reach = keyword_rules
            .iter()
            .map(|rs| {
                (
                    rs.iter().any(|r| rules[*r].line_window),
                    rs.iter().any(|r| !rules[*r].line_window),
                )
            })
            .collect();
        let unanchored = unanchored_sets(&rules, unanchored);
        Engine {
            rules,
            keywords,
            keyword_rules,
            keyword_reach,
            unanchored,
            allowlists: Vec::new(),
            excludes: None,
            explain: false,
            file_rules: Vec::new(),
        }
    }

    /// The engine for a loaded rule set: its rules, its rules that match paths alone, and its
    /// global allowlists (a broker-owned credential is still reported anywhere: the scan
    /// matches those by fingerprint, not through the engine).
    pub fn with_rules(set: RuleSet) -> Engine {
        let mut engine = Engine::new(set.rules);
        engine.allowlists = set.allowlists;
        engine.file_rules = set.file_rules;
        engine
    }

    /// The same engine, saying on stderr why each candidate a rule's regex matched was not
    /// reported (`--explain`): the rule, the place, the secret's first characters and the
    /// reason (entropy, checksum, an allowlist, a test vector, vendored code).
    pub fn with_explain(mut self, explain: bool) -> Engine {
        self.explain = explain;
        self
    }

    /// The same engine, leaving out the paths `excludes` matches (gitignore syntax:
    /// `--exclude` globs and `.sidekeyignore`).
    pub fn with_excludes(mut self, excludes: ignore::gitignore::Gitignore) -> Engine {
        self.excludes = Some(excludes);
        self
    }

    /// Whether `path` (a file, blob or archive member, or a directory when `dir`) is excluded
    /// from the scan: matched by an exclude pattern, itself, through a parent directory, or
    /// through the archive that holds it (`a.zip!x` is excluded with `a.zip`).
    pub fn excluded(&self, path: &str, dir: bool) -> bool {
        let Some(excludes) = &self.excludes else {
            return false;
        };
        let path = path.strip_prefix("./").unwrap_or(path);
        let outer = path.split('!').next().unwrap_or(path);
        let is_dir = dir && outer == path;
        excludes.matched_path_or_any_parents(outer, is_dir).is_ignore()
    }

    /// Whether everything in `path` is left out: by the global allowlists, whatever the
    /// commit, or by an exclude (a leading `./` is not part of the path).
    pub fn path_allowed(&self, path: &str) -> bool {
        let path = path.strip_prefix("./").unwrap_or(path);
        self.excluded(path, false) || self.allowlists.iter().any(|a| a.allows_file(Some(path), None))
    }

    /// The rules that report the file at `path` (introduced by `commit`) for its path alone.
    pub fn file_rules<'a>(&'a self, path: &'a str, commit: Option<&'a str>) -> impl Iterator<Item = &'a FileRule> {
        let path = path.strip_prefix("./").unwrap_or(path);
        let allowed = self.allowlists.iter().any(|a| a.allows_file(Some(path), commit));
        self.file_rules
            .iter()
            .filter(move |r| !allowed && r.reports(path, commit))
    }

    /// The rules, in the order [`Match::rule`] indexes.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Finds every secret in `bytes`. `path` (as the user would type it) feeds rules' `path`
    /// filters.
    pub fn scan(&self, bytes: &[u8], path: Option<&str>) -> Vec<Match> {
        self.scan_at(bytes, path, None)
    }

    /// As [`Engine::scan`], for content that `commit` introduced (allowlists' `commits`).
    pub fn scan_at(&self, bytes: &[u8], path: Option<&str>, commit: Option<&str>) -> Vec<Match> {
        let path = path.map(|p| p.strip_prefix("./").unwrap_or(p));
        if self.allowlists.iter().any(|a| a.allows_file(path, commit)) {
            return Vec::new();
        }
        let whole = bytes.len() <= WHOLE;
        // Small blobs: which keywords occur (and a list of them, not to walk every keyword for
        // each blob). Large ones: where, as (keyword, offset).
        let mut seen = vec![false; self.keyword_rules.len()];
        let mut seen_list: Vec<u32> = Vec::new();
        let mut hits: Vec<(u32, usize)> = Vec::new();
        let mut line_hits: Vec<(u32, usize)> = Vec::new();
        // Per keyword, the last hit kept: hits closer than this to it fall in the same window
        // and are dropped (a run of `AAAA…` would otherwise keep one per byte).
        let mut last = vec![usize::MAX; if whole { 0 } else { self.keyword_rules.len() }];
        self.keywords.for_each(bytes, |pattern, start| {
            let (line, wide) = self.keyword_reach[pattern];
            if line {
                line_hits.push((pattern as u32, start));
            }
            if wide && whole {
                if !seen[pattern] {
                    seen[pattern] = true;
                    seen_list.push(pattern as u32);
                }
            } else if wide && (last[pattern] == usize::MAX || start >= last[pattern] + FORWARD / 2) {
                last[pattern] = start;
                hits.push((pattern as u32, start));
            }
        });
        // (rule, offset of a hit of one of its keywords); `usize::MAX`: search the whole blob.
        let wide = |r: &&usize| !self.rules[**r].line_window;
        let mut todo: Vec<(u32, usize)> = Vec::new();
        for pattern in seen_list {
            todo.extend(
                self.keyword_rules[pattern as usize]
                    .iter()
                    .filter(wide)
                    .map(|r| (*r as u32, usize::MAX)),
            );
        }
        for (pattern, at) in &hits {
            todo.extend(
                self.keyword_rules[*pattern as usize]
                    .iter()
                    .filter(wide)
                    .map(|r| (*r as u32, *at)),
            );
        }
        for (pattern, at) in &line_hits {
            let line = |r: &&usize| self.rules[**r].line_window;
            todo.extend(
                self.keyword_rules[*pattern as usize]
                    .iter()
                    .filter(line)
                    .map(|r| (*r as u32, *at)),
            );
        }
        for (set, rules) in &self.unanchored {
            todo.extend(set.matches(bytes).iter().map(|i| (rules[i] as u32, usize::MAX)));
        }
        todo.sort_unstable();
        todo.dedup();
        let mut matches = Vec::new();
        let vendored = path.is_some_and(vendored);
        if vendored && self.explain && todo.iter().any(|(r, _)| self.rules[*r as usize].family == "generic") {
            let path = crate::report::printable(path.unwrap_or("-"));
            eprintln!("explain: {path}: generic rules are not run in vendored third-party code or test-vector files");
        }
        for group in todo.chunk_by(|a, b| a.0 == b.0) {
            let index = group[0].0 as usize;
            let rule = &self.rules[index];
            if vendored && rule.family == "generic" {
                continue;
            }
            if let (Some(filter), Some(path)) = (&rule.path, path) {
                if !filter.is_match(path.as_bytes()) {
                    continue;
                }
            }
            if rule.allows_file(path, commit) {
                continue;
            }
            let at = (path, commit);
            if group.last().is_some_and(|(_, at)| *at == usize::MAX) {
                self.find(index, bytes, 0..bytes.len(), at, &mut matches);
            } else if rule.line_window {
                for window in line_windows(bytes, group.iter().map(|(_, at)| *at)) {
                    self.find(index, bytes, window, at, &mut matches);
                }
            } else {
                for window in windows(bytes, group.iter().map(|(_, at)| *at)) {
                    self.find(index, bytes, window, at, &mut matches);
                }
            }
        }
        self.settle(bytes, matches)
    }

    /// Runs rule `index` over `bytes[window]` of the content at `(path, commit)`, keeping the
    /// secrets it accepts and no allowlist leaves out (a generic rule's secret must not be a
    /// test vector: see [`test_vector`]).
    fn find(
        &self,
        index: usize,
        bytes: &[u8],
        window: Range<usize>,
        (path, commit): (Option<&str>, Option<&str>),
        out: &mut Vec<Match>,
    ) {
        let rule = &self.rules[index];
        let base = window.start;
        for caps in rule.regex.get().captures_iter(&bytes[window]) {
            let whole = caps.get(0).expect("group 0 always exists");
            let Some(secret) = rule.secret_in(&caps).filter(|s| !s.is_empty()) else {
                continue;
            };
            let found = Candidate {
                path,
                commit,
                bytes,
                matched: base + whole.start()..base + whole.end(),
                secret: base + secret.start()..base + secret.end(),
            };
            let dropped = if rule.family == "generic" && test_vector(secret.as_bytes()) {
                Some(Dropped::TestVector)
            } else {
                rule.rejects(&found).or_else(|| {
                    let list = self.allowlists.iter().find(|a| a.allows(&found))?;
                    Some(Dropped::ConfigAllowlist(list.description.as_deref()))
                })
            };
            match dropped {
                None => out.push(Match {
                    rule: index,
                    span: found.matched,
                    secret: found.secret,
                    line: 0,
                    column: 0,
                }),
                Some(why) if self.explain => explain(rule, path, bytes, found.secret.clone(), &why),
                Some(_) => {}
            }
        }
    }

    /// One match per secret (a provider rule wins over a generic one), in order, with lines and
    /// columns filled in.
    fn settle(&self, bytes: &[u8], mut matches: Vec<Match>) -> Vec<Match> {
        let generic = |m: &Match| self.rules[m.rule].family == "generic";
        matches.sort_by_key(|m| (m.secret.start, m.secret.end, generic(m), m.rule));
        matches.dedup_by(|later, kept| later.secret == kept.secret);
        if matches.is_empty() {
            return matches;
        }
        let newlines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        for m in &mut matches {
            let before = newlines.partition_point(|n| *n < m.secret.start);
            let line_start = if before == 0 { 0 } else { newlines[before - 1] + 1 };
            m.line = before + 1;
            m.column = String::from_utf8_lossy(&bytes[line_start..m.secret.start])
                .chars()
                .count()
                + 1;
        }
        matches
    }
}

/// One `--explain` line on stderr: a candidate of `rule` at `secret` in `bytes` was dropped
/// for `why`. The secret is shown by its first four characters only.
fn explain(rule: &Rule, path: Option<&str>, bytes: &[u8], secret: Range<usize>, why: &Dropped<'_>) {
    let line = memchr::memchr_iter(b'\n', &bytes[..secret.start]).count() + 1;
    let shown: String = String::from_utf8_lossy(&bytes[secret]).chars().take(4).collect();
    let shown = crate::report::printable(&shown);
    let path = crate::report::printable(path.unwrap_or("-"));
    eprintln!("explain: {path}:{line}: {} dropped {shown}…: {why}", rule.id);
}

/// Whether `path` is inside third-party code a project carries (vendored libraries, installed
/// packages): `vendor/`, `third_party/`, `node_modules/`, `site-packages/`... or a file of test
/// vectors. Generic rules (`password = ...`) are not run there: such code is full of the
/// library's own test keys and vectors, and a leak of the project's secrets is found by the
/// provider rules, which still run.
pub fn vendored(path: &str) -> bool {
    const DIRS: &[&str] = &[
        "vendor",
        "vendors",
        "third_party",
        "third-party",
        "thirdparty",
        "3rdparty",
        "node_modules",
        "bower_components",
        "site-packages",
        "dist-packages",
        "Pods",
        "Carthage",
    ];
    let mut parts = path.split(['/', '\\', '!']).filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            let name = part.to_ascii_lowercase();
            return name.contains("test_vector") || name.contains("testvector") || name.ends_with(".rsp");
        }
        if DIRS.contains(&part) {
            return true;
        }
    }
    false
}

/// Whether a secret is a made-up test vector rather than a key: hex (at least 16 digits) whose
/// bytes count up or down by a fixed step (`000102030405…`, `0f0e0d…`) or repeat a pattern of
/// one to four bytes (`0b0b0b…`, `deadbeefdeadbeef…`), as RFC and library test vectors are.
pub fn test_vector(secret: &[u8]) -> bool {
    if secret.len() < 16 || !secret.len().is_multiple_of(2) || !secret.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let Ok(bytes) = hex::decode(secret) else { return false };
    let step = bytes[1].wrapping_sub(bytes[0]);
    let counts = bytes.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step);
    let repeats = (1..=4).any(|n| bytes.len() >= 2 * n && bytes.iter().zip(&bytes[n..]).all(|(a, b)| a == b));
    counts || repeats
}

/// Merged windows around keyword hits (`hits` ascending): from the start of the line
/// [`BACK_LINES`] lines before a hit (at most [`BACK_MAX`] bytes back) to [`FORWARD`] bytes
/// after it.
fn windows(bytes: &[u8], hits: impl Iterator<Item = usize>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for hit in hits {
        let end = (hit + FORWARD).min(bytes.len());
        if let Some(last) = out.last_mut().filter(|last| hit <= last.end) {
            // Inside the current window: its start is already far enough back.
            last.end = last.end.max(end);
            continue;
        }
        let floor = hit.saturating_sub(BACK_MAX);
        let mut start = hit;
        for _ in 0..=BACK_LINES {
            match memchr::memrchr(b'\n', &bytes[floor..start]) {
                Some(i) => start = floor + i,
                None => {
                    start = floor;
                    break;
                }
            }
        }
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => out.push(start..end),
        }
    }
    out
}

/// Merged windows for rules whose matches stay on the keyword's line: from the newline before
/// each hit's line to the end of the line after it (each side at most [`BACK_MAX`] bytes, for
/// minified text).
fn line_windows(bytes: &[u8], hits: impl Iterator<Item = usize>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for hit in hits {
        let ceiling = (hit + BACK_MAX).min(bytes.len());
        let mut end = hit;
        for _ in 0..2 {
            match memchr::memchr(b'\n', &bytes[end..ceiling]) {
                Some(i) => end += i + 1,
                None => {
                    end = ceiling;
                    break;
                }
            }
        }
        if let Some(last) = out.last_mut().filter(|last| hit < last.end) {
            last.end = last.end.max(end); // the hit's line start is in already
            continue;
        }
        let floor = hit.saturating_sub(BACK_MAX);
        let start = memchr::memrchr(b'\n', &bytes[floor..hit]).map_or(floor, |i| floor + i);
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => out.push(start..end),
        }
    }
    out
}

/// Literals (lowercase, at least 3 bytes) of which every match of `pattern` contains one, when
/// the regex's prefixes give such a set; empty otherwise.
fn required_literals(pattern: &str) -> Vec<String> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let Ok(hir) = regex_syntax::ParserBuilder::new().utf8(false).build().parse(pattern) else {
        return Vec::new();
    };
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut extractor = Extractor::new();
        // Case variants (classes of 2) are kept, wider classes end the literal.
        extractor.kind(kind).limit_class(2).limit_total(64);
        let seq = extractor.extract(&hir);
        if let Some(literals) = seq.literals() {
            let words: Vec<String> = literals
                .iter()
                .map(|l| String::from_utf8_lossy(l.as_bytes()).to_lowercase())
                .collect();
            if !words.is_empty() && words.iter().all(|w| w.len() >= 3) {
                let mut words = words;
                words.sort();
                words.dedup();
                return words;
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reach_back_a_few_lines_and_merge() {
        let text: String = (1..=20).map(|i| format!("l{i:02}\n")).collect::<String>() + "key here\n";
        let text = text.as_bytes();
        let hit = text.windows(3).position(|w| w == b"key").unwrap();
        let w = windows(text, [hit].into_iter());
        assert_eq!(
            w,
            vec![4 * 4 - 1..text.len()],
            "from the newline ending line 4: lines 5-20 are in"
        );
        let w = windows(text, [hit, hit + 1].into_iter());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn every_keyword_hit_counts_overlapping_ones_and_any_case() {
        let rules_file = r#"
[[rules]]
id = "tok"
regex = '''(?i)tok_([a-z0-9]{12})'''
keywords = ["tok_", "TOKEN_", "ok_"]
"#;
        let (_, rules) = crate::rules::parse("t.toml", rules_file).unwrap();
        let engine = Engine::new(rules);
        let text = b"a = TOK_abcdef123456\nb = token_x ok_\n";
        assert_eq!(engine.scan(text, None).len(), 1);
        let mut hits = Vec::new();
        engine.keywords.for_each(text, |k, start| hits.push((k, start)));
        hits.sort_unstable();
        assert_eq!(
            hits,
            [(0, 4), (1, 25), (2, 5), (2, 33)],
            "tok_ and the ok_ inside it, token_, ok_"
        );
    }

    #[test]
    fn keywordless_rules_get_the_literals_their_regexes_require() {
        assert_eq!(required_literals(r"(?:ABC|xyz)_[0-9]{4}"), vec!["abc_", "xyz_"]);
        assert_eq!(required_literals(r"[a-f0-9]{40}"), Vec::<String>::new());
        assert_eq!(required_literals(r"[0-9]{6}-secret"), vec!["-secret"]);
    }

    #[test]
    fn keywordless_rules_too_big_for_one_set_get_a_set_each() {
        // Each compiles alone; together they pass the regex size limit (noticed while fuzzing the
        // rule loader: this used to panic).
        let rules_file: String = (1..=12)
            .map(|i| format!("[[rules]]\nid = \"r{i}\"\nregex = '''\\w{{90}}[0-9]{{{i}}}\\b'''\n"))
            .collect();
        let (_, rules) = crate::rules::parse("t.toml", &rules_file).unwrap();
        let engine = Engine::new(rules);
        assert!(engine.unanchored.len() > 1, "one set per rule");
        let text = format!("x {}1234 y\n", "a".repeat(90));
        let found: Vec<&str> = engine
            .scan(text.as_bytes(), None)
            .iter()
            .map(|m| engine.rules()[m.rule].id.as_str())
            .collect();
        assert!(found.contains(&"r4"), "{found:?}");
    }

    #[test]
    fn keywordless_rules_are_found_in_small_and_large_blobs() {
        let rules_file = r#"
[[rules]]
id = "lit"
regex = '''tok_([a-z0-9]{12})'''
[[rules]]
id = "bare"
regex = '''\b([0-9]{3}-[0-9]{3}-[a-z]{6})\b'''
"#;
        let (_, rules) = crate::rules::parse("t.toml", rules_file).unwrap();
        let engine = Engine::new(rules);
        let line = "x = tok_abcdef123456 and 123-456-abcdef\n";
        for filler in [0, 200_000] {
            let text = format!("{}{line}", "filler line\n".repeat(filler / 12));
            let found: Vec<&str> = engine
                .scan(text.as_bytes(), None)
                .iter()
                .map(|m| engine.rules()[m.rule].id.as_str())
                .collect();
            assert_eq!(found, vec!["lit", "bare"], "{filler} bytes before");
        }
    }

    #[test]
    fn line_windows_hold_the_hit_line_and_the_next() {
        let text = b"one\ntwo token here\nthree\nfour\n";
        let hit = text.windows(5).position(|w| w == b"token").unwrap();
        let w = line_windows(text, [hit].into_iter());
        assert_eq!(w, vec![3..text.len() - 5]);
        assert_eq!(&text[w[0].clone()], b"\ntwo token here\nthree\n");
        let second = text.windows(5).position(|w| w == b"three").unwrap();
        assert_eq!(line_windows(text, [hit, second].into_iter()), vec![3..text.len()]);
    }

    #[test]
    fn vendored_code_and_vector_files_are_told_apart_from_the_projects_own() {
        for path in [
            "vendor/github.com/x/crypto/hmac_test.go",
            "web/node_modules/jws/test/data.js",
            "lib.zip!third_party/boringssl/aes_test.cc",
            "venv/lib/python3.12/site-packages/cryptography/x.py",
            "crypto/testdata/hmac_test_vectors.txt",
            "nist/KAT_AES/CBCGFSbox128.rsp",
        ] {
            assert!(vendored(path), "{path}");
        }
        for path in [
            "src/vendors.rs",
            "app/config.py",
            "vendor.json",
            "deploy/vendor-values.yaml",
            "tests/test_login.py",
        ] {
            assert!(!vendored(path), "{path}");
        }
    }

    #[test]
    fn test_vectors_count_or_repeat_and_random_hex_is_neither() {
        for v in [
            &b"000102030405060708090a0b0c0d0e0f"[..],
            b"0f0e0d0c0b0a09080706050403020100",
            b"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            b"deadbeefdeadbeefdeadbeef",
            b"AAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(test_vector(v), "{}", String::from_utf8_lossy(v));
        }
        let random = hex::encode(rand::random::<[u8; 16]>());
        assert!(!test_vector(random.as_bytes()), "{random}");
        assert!(!test_vector(b"0001020304050607zz"));
        assert!(!test_vector(b"00010203"));
    }
}
