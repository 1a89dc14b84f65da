//! The engine: one Aho-Corasick pass over every rule's keywords finds which rules can match
//! at all; only those rules' regexes run, and only their secrets that pass entropy, checksum
//! and allowlists become [`Match`]es with line and column. The engine knows no file format and
//! no report format; compiled rules are shared, so one `Engine` serves every thread.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::rules::Rule;

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

/// Compiled rules plus the keyword automaton.
pub struct Engine {
    rules: Vec<Rule>,
    keywords: AhoCorasick,
    /// For each keyword pattern, the rules that listed it.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: tried on every blob.
    keywordless: Vec<usize>,
}

impl Engine {
    /// Builds the engine for `rules`.
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut keywordless = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                keywordless.push(i);
            }
            for k in &rule.keywords {
                match patterns.iter().position(|p| p == k) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        patterns.push(k.clone());
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("keyword literals always build an automaton");
        Engine {
            rules,
            keywords,
            keyword_rules,
            keywordless,
        }
    }

    /// The rules, in the order [`Match::rule`] indexes.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Finds every secret in `bytes`. `path` (as the user would type it) feeds rules' `path`
    /// filters.
    pub fn scan(&self, bytes: &[u8], path: Option<&str>) -> Vec<Match> {
        let mut candidate = vec![false; self.rules.len()];
        for i in &self.keywordless {
            candidate[*i] = true;
        }
        for hit in self.keywords.find_overlapping_iter(bytes) {
            for rule in &self.keyword_rules[hit.pattern().as_usize()] {
                candidate[*rule] = true;
            }
        }
        let mut matches = Vec::new();
        for (i, rule) in self.rules.iter().enumerate().filter(|(i, _)| candidate[*i]) {
            if let (Some(filter), Some(path)) = (&rule.path, path) {
                if !filter.is_match(path.as_bytes()) {
                    continue;
                }
            }
            for caps in rule.regex.captures_iter(bytes) {
                let whole = caps.get(0).expect("group 0 always exists");
                let Some(secret) = caps.get(rule.secret_group).filter(|s| !s.is_empty()) else {
                    continue;
                };
                if rule.accepts(secret.as_bytes()) {
                    matches.push(Match {
                        rule: i,
                        span: whole.range(),
                        secret: secret.range(),
                        line: 0,
                        column: 0,
                    });
                }
            }
        }
        self.settle(bytes, matches)
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
