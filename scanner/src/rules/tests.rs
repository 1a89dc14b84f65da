//! Every rule's examples and negative examples, expanded, run through the engine: the test
//! that keeps the rule set honest.

use rand::SeedableRng;

use super::*;
use crate::engine::Engine;

#[test]
fn the_builtin_rules_compile_with_unique_ids_and_keywords() {
    let rules = builtin();
    assert!(rules.len() >= 150, "only {} built-in rules", rules.len());
    let mut ids = std::collections::HashSet::new();
    for rule in &rules {
        assert!(
            ids.insert(rule.id.as_str()),
            "{}: id used twice in the built-in files",
            rule.id
        );
        assert!(!rule.keywords.is_empty(), "{}: no keywords", rule.id);
        assert!(!rule.examples.is_empty(), "{}: no examples", rule.id);
        assert!(!rule.negative_examples.is_empty(), "{}: no negative examples", rule.id);
    }
}

#[test]
fn every_rule_finds_its_examples_and_none_of_its_negative_examples() {
    let engine = Engine::new(builtin());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut failures = Vec::new();
    for (i, rule) in engine.rules().iter().enumerate() {
        for template in &rule.examples {
            let text = examples::expand(template, &mut rng).unwrap_or_else(|e| panic!("{}: {e}", rule.id));
            if !rule.keywords.iter().any(|k| text.to_lowercase().contains(k.as_str())) {
                failures.push(format!("{}: example has none of the keywords: {template}", rule.id));
            }
            let found = engine.scan(text.as_bytes(), None);
            if !found.iter().any(|m| m.rule == i) {
                let others: Vec<&str> = found.iter().map(|m| engine.rules()[m.rule].id.as_str()).collect();
                failures.push(format!(
                    "{}: missed example {template:?} (found by: {others:?})",
                    rule.id
                ));
            }
        }
        for template in &rule.negative_examples {
            let text = examples::expand(template, &mut rng).unwrap_or_else(|e| panic!("{}: {e}", rule.id));
            if engine.scan(text.as_bytes(), None).iter().any(|m| m.rule == i) {
                failures.push(format!("{}: matched negative example {template:?}", rule.id));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rule example failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn matches_carry_line_and_column_of_the_secret() {
    let (_, rules) = parse(
        "t.toml",
        r#"
[[rules]]
id = "t"
regex = '''token=([a-z0-9]{8})'''
keywords = ["token="]
examples = ["token={lower:8}"]
negative_examples = ["token=short"]
"#,
    )
    .unwrap();
    let engine = Engine::new(rules);
    let found = engine.scan("first line\n  é token=abcd1234 \n".as_bytes(), None);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].column), (2, 11));
}

#[test]
fn bad_rules_are_refused_with_file_and_id() {
    let e = parse("mine.toml", "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n").unwrap_err();
    assert!(e.to_string().starts_with("mine.toml: rule \"x\": invalid regex"), "{e}");
    let e = parse("mine.toml", "[[rules]]\nid = \"x\"\nregex = 'a'\nsecretGroup = 2\n").unwrap_err();
    assert!(e.to_string().contains("secretGroup 2"), "{e}");
    assert!(parse("mine.toml", "[[rules]\n").is_err());
}

#[test]
fn entropy_is_in_bits_per_byte() {
    assert_eq!(entropy(b"aaaa"), 0.0);
    assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
}

#[test]
fn every_builtin_regex_compiles_and_names_an_existing_group() {
    // Built-in regexes are compiled on first use; this compiles all of them.
    for rule in builtin() {
        assert!(rule.secret_group() < rule.regex.get().captures_len(), "{}", rule.id);
        for allow in &rule.allow_regexes {
            allow.get();
        }
    }
}

#[test]
fn every_example_is_found_deep_inside_a_large_file_too() {
    // Past 64 KiB the engine runs regexes only in windows around keyword hits; each example,
    // placed after 100 KiB of other lines, must still be found (a window must reach the start
    // of a match whose keyword comes late, as in Kubernetes manifests and kubeconfigs).
    let engine = Engine::new(builtin());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xb16);
    let filler = "let value = compute(input, 42); // nothing to see\n".repeat(2100);
    let mut failures = Vec::new();
    for (i, rule) in engine.rules().iter().enumerate() {
        for template in &rule.examples {
            let example = examples::expand(template, &mut rng).unwrap();
            let text = format!("{filler}{example}\n{filler}");
            if !engine.scan(text.as_bytes(), None).iter().any(|m| m.rule == i) {
                failures.push(format!("{}: missed {template:?} in a large file", rule.id));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The provider list of `docs/providers.md`, made from the built-in rules.
fn providers_markdown(rules: &[Rule]) -> String {
    let mut by: std::collections::BTreeMap<String, (String, Vec<&str>)> = std::collections::BTreeMap::new();
    for rule in rules {
        if let Some(p) = &rule.provider {
            let entry = by.entry(p.to_lowercase()).or_insert_with(|| (p.clone(), Vec::new()));
            entry.1.push(rule.id.as_str());
        }
    }
    let generic = rules.iter().filter(|r| r.provider.is_none()).count();
    let mut out = format!(
        "# Providers and credential types sidekey-scan recognises\n\n\
         Generated from the built-in rules (`config/rules.toml`, `config/rules/*.toml`) by\n\
         `SIDEKEY_BLESS=1 cargo test -p sidekey-scanner --lib providers`; a test keeps it current.\n\n\
         {} providers and credential types, {} rules ({} of them generic: assignments, headers,\n\
         URLs with a password, found whatever the provider).\n\n\
         | provider | rules |\n|---|---|\n",
        by.len(),
        rules.len(),
        generic
    );
    for (name, ids) in by.values() {
        out.push_str(&format!("| {} | {} |\n", name.replace('|', "\\|"), ids.join(", ")));
    }
    out
}

#[test]
fn the_providers_list_is_current_and_every_provider_rule_names_its_provider() {
    let rules = builtin();
    for rule in &rules {
        assert_eq!(
            rule.provider.is_none(),
            rule.family == "generic",
            "{}: a provider rule names its provider; a generic one none",
            rule.id
        );
    }
    let want = providers_markdown(&rules);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/providers.md");
    if std::env::var_os("SIDEKEY_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/providers.md is out of date: run SIDEKEY_BLESS=1 cargo test -p sidekey-scanner --lib providers"
    );
}
