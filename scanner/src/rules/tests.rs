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
fn the_builtin_rules_read_from_json_are_the_toml_files_rules() {
    // The binary reads the build script's JSON; people edit (and errors name) the TOML.
    let from_json = builtin_syntax();
    let mut from_toml = Vec::new();
    for (file, _) in BUILTIN {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let syntax = parse_syntax(file, &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            syntax.extend.is_none() && syntax.allowlist.is_none() && syntax.allowlists.is_empty(),
            "{file}: only [[rules]] in a built-in file"
        );
        from_toml.extend(syntax.rules);
    }
    assert_eq!(from_json.len(), from_toml.len());
    for ((_, json), toml) in from_json.iter().zip(&from_toml) {
        assert_eq!(
            format!("{json:?}"),
            format!("{toml:?}"),
            "{}: JSON and TOML differ",
            toml.id
        );
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
        for pattern in rule.allowlists.iter().flat_map(|a| a.patterns()) {
            pattern.get();
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

// === gitleaks configs (rules/config.rs, rules/allowlist.rs) ===

/// The rule set of a config given as text (relative `[extend] path`s read from the current
/// directory).
fn load_text(text: &str) -> Result<RuleSet, Error> {
    load(Some(&Source::Text {
        name: "t.toml".into(),
        text: text.into(),
    }))
}

/// `(rule id, secret)` of each finding of `set` in `text` at `path`, introduced by `commit`.
fn found(set: RuleSet, text: &str, path: &str, commit: Option<&str>) -> Vec<(String, String)> {
    let engine = Engine::with_rules(set);
    engine
        .scan_at(text.as_bytes(), Some(path), commit)
        .iter()
        .map(|m| (engine.rules()[m.rule].id.clone(), text[m.secret.clone()].to_owned()))
        .collect()
}

const TOK: &str = "[[rules]]\nid = \"tok\"\nregex = '''tok_([a-z0-9]{12})'''\nkeywords = [\"tok_\"]\n";

#[test]
fn unknown_keys_are_refused_naming_file_key_and_line() {
    let cases = [
        (
            "title = \"x\"\n\nfoo = 1\n",
            3,
            "unknown key `foo`: sidekey-scan does not implement it",
        ),
        (
            "[[rules]]\nid = \"a\"\nregex = 'a'\n\n[[rules.allowlists]]\nregexes = ['b']\nfiles = ['c']\n",
            7,
            "unknown key `files`",
        ),
        (
            "[[rules]]\nid = \"a\"\nregex = 'a'\n[[rules.required]]\nid = \"b\"\n",
            4,
            "unknown key `required`: gitleaks' composite rules",
        ),
        (
            "[[rules]]\nid = \"a\"\nregex = 'a'\nskipReport = true\n",
            4,
            "unknown key `skipReport`",
        ),
        (
            "[extend]\nurl = \"https://example.test/x.toml\"\n",
            2,
            "[extend] url is not implemented",
        ),
        (
            "[[rules]]\nid = \"a\"\nregex = 'a'\n[[rules.allowlists]]\ncondition = \"XOR\"\nregexes = ['b']\n",
            5,
            "unknown variant `XOR`",
        ),
        (
            "[[rules]]\nid = \"a\"\nregex = 'a'\n[[rules.allowlists]]\nregexTarget = \"file\"\nregexes = ['b']\n",
            5,
            "unknown variant `file`",
        ),
    ];
    for (text, line, says) in cases {
        let e = load_text(text).unwrap_err().to_string();
        assert!(e.starts_with(&format!("t.toml:{line}: ")), "{text:?}: {e}");
        assert!(e.contains(says), "{text:?}: {e}");
    }
    // What gitleaks has only for the reader is accepted.
    let cosmetic = format!(
        "title = \"t\"\ndescription = \"d\"\nminVersion = \"v8.25.0\"\n[extend]\nuseDefault = true\n{TOK}tags = [\"x\"]\n"
    );
    assert!(load_text(&cosmetic).is_ok());
}

#[test]
fn a_config_without_extend_replaces_the_builtin_rules_and_one_with_it_adds_to_them() {
    let alone = load_text(TOK).unwrap();
    assert_eq!((alone.rules.len(), alone.builtin), (1, false));
    let extended = load_text(&format!("[extend]\nuseDefault = true\n\n{TOK}")).unwrap();
    assert!(extended.builtin);
    assert_eq!(extended.rules.len(), builtin().len() + 1);
    assert_eq!(
        extended.rules.last().unwrap().id,
        "tok",
        "added after the built-in rules"
    );
    // Without rules of its own and without [extend], a config would find nothing.
    let e = load_text("[allowlist]\npaths = ['''^vendor/''']\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no rules") && e.contains("useDefault = true"), "{e}");
}

#[test]
fn extending_merges_a_rule_into_the_base_rule_of_its_id() {
    let base = builtin();
    let pat = base.iter().find(|r| r.id == "github-pat").unwrap();
    let set = load_text(
        "[extend]\nuseDefault = true\n[[rules]]\nid = \"github-pat\"\nkeywords = [\"mytoken\"]\n\
         [[rules.allowlists]]\nregexTarget = \"line\"\nregexes = ['''MY-ghp-''']\n",
    )
    .unwrap();
    let merged = set.rules.iter().find(|r| r.id == "github-pat").unwrap();
    assert_eq!(merged.regex.as_str(), pat.regex.as_str(), "the regex is inherited");
    assert_eq!(merged.description, pat.description);
    assert_eq!(merged.allowlists.len(), pat.allowlists.len() + 1, "allowlists add up");
    assert!(merged.keywords.ends_with(&["mytoken".to_owned()]));
    assert_eq!(merged.keywords.len(), pat.keywords.len() + 1, "keywords add up");

    // What the config sets wins.
    let set = load_text(
        "[extend]\nuseDefault = true\n[[rules]]\nid = \"github-pat\"\ndescription = \"ours\"\nregex = '''ours_[0-9]{4}'''\nsecretGroup = 0\n",
    )
    .unwrap();
    let merged = set.rules.iter().find(|r| r.id == "github-pat").unwrap();
    assert_eq!(
        (merged.description.as_str(), merged.regex.as_str()),
        ("ours", "ours_[0-9]{4}")
    );
}

#[test]
fn disabled_rules_leave_base_rules_out_and_a_missing_one_is_a_warning() {
    let set = load_text("[extend]\nuseDefault = true\ndisabledRules = [\"github-pat\", \"no-such-rule\"]\n").unwrap();
    assert_eq!(set.rules.len(), builtin().len() - 1);
    assert!(!set.rules.iter().any(|r| r.id == "github-pat"));
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    assert!(set.warnings[0].starts_with("t.toml:3: ") && set.warnings[0].contains("no-such-rule"));
    // Nothing to disable rules of: refused rather than ignored.
    let e = load_text(&format!("[extend]\ndisabledRules = [\"tok\"]\n{TOK}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:2: ") && e.contains("without useDefault or path"),
        "{e}"
    );
}

#[test]
fn extend_path_is_read_relative_to_the_config_two_levels_deep_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    };
    write(
        "base/common.toml",
        &format!("[extend]\nuseDefault = true\ndisabledRules = [\"github-pat\"]\n{TOK}"),
    );
    let top = write(
        "top.toml",
        "[extend]\npath = \"base/common.toml\"\ndisabledRules = [\"tok\"]\n[[rules]]\nid = \"mine\"\nregex = '''mine_[0-9]{6}'''\n",
    );
    let set = load(Some(&Source::File(top.clone()))).unwrap();
    assert!(set.builtin, "the base extends the built-in rules");
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert!(
        ids.contains(&"mine") && !ids.contains(&"tok") && !ids.contains(&"github-pat"),
        "{ids:?}"
    );
    assert_eq!(set.rules.len(), builtin().len());

    // A third level is refused, as is a config that extends itself.
    write("base/common.toml", "[extend]\npath = \"deeper.toml\"\n");
    write("base/deeper.toml", "[extend]\nuseDefault = true\n");
    let e = load(Some(&Source::File(top.clone()))).unwrap_err().to_string();
    assert!(e.contains("deeper.toml:1: [extend] nested too deep"), "{e}");
    let looped = write("loop.toml", "[extend]\npath = \"loop.toml\"\n");
    let e = load(Some(&Source::File(looped))).unwrap_err().to_string();
    assert!(e.contains("nested too deep"), "{e}");
    // A missing file and both bases at once are errors naming the line.
    write("top.toml", "\n[extend]\npath = \"nowhere.toml\"\n");
    let e = load(Some(&Source::File(top.clone()))).unwrap_err().to_string();
    assert!(
        e.contains("top.toml:3: [extend] path \"nowhere.toml\": no such file"),
        "{e}"
    );
    write("top.toml", "[extend]\nuseDefault = true\npath = \"base/common.toml\"\n");
    let e = load(Some(&Source::File(top))).unwrap_err().to_string();
    assert!(e.contains("both useDefault and path"), "{e}");
}

#[test]
fn allowlists_combine_their_criteria_with_or_and_and() {
    let text = "x = tok_aaaaaaaaaaaa\ny = tok_bbbbbbbbbbbb\n";
    let secrets = |config: &str, path: &str, commit: Option<&str>| -> Vec<String> {
        found(load_text(&format!("{TOK}{config}")).unwrap(), text, path, commit)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    };
    assert_eq!(secrets("", "a.env", None).len(), 2);
    // OR: a path or a stopword is enough.
    let or = "[[rules.allowlists]]\npaths = ['''^fixtures/''']\nstopwords = [\"AAAA\"]\n";
    assert_eq!(secrets(or, "fixtures/a.env", None), Vec::<String>::new());
    assert_eq!(secrets(or, "a.env", None), ["bbbbbbbbbbbb"]);
    // AND: both must hold.
    let and = "[[rules.allowlists]]\ncondition = \"AND\"\npaths = ['''^fixtures/''']\nstopwords = [\"aaaa\"]\n";
    assert_eq!(secrets(and, "a.env", None).len(), 2);
    assert_eq!(secrets(and, "fixtures/a.env", None), ["bbbbbbbbbbbb"]);
    // Commits (case-insensitive, full ids), alone or with a path.
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let commits = format!("[[rules.allowlists]]\ncommits = [\"{}\"]\n", commit.to_uppercase());
    assert!(secrets(&commits, "a.env", Some(commit)).is_empty());
    assert_eq!(secrets(&commits, "a.env", Some(&commit.replace('0', "f"))).len(), 2);
    assert_eq!(secrets(&commits, "a.env", None).len(), 2);
    let both = format!("[[rules.allowlists]]\ncondition = \"and\"\ncommits = [\"{commit}\"]\npaths = ['''^b''']\n");
    assert_eq!(secrets(&both, "a.env", Some(commit)).len(), 2);
    assert!(secrets(&both, "b.env", Some(commit)).is_empty());
    // An allowlist without any criterion is refused.
    let e = load_text(&format!("{TOK}[[rules.allowlists]]\ndescription = \"nothing\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs at least one of commits, paths, regexes, stopwords"),
        "{e}"
    );
}

#[test]
fn regex_target_picks_the_secret_the_match_or_the_line() {
    let text = "x = tok_aaaaaaaaaaaa # fixture\ny = tok_bbbbbbbbbbbb\n";
    let secrets = |list: &str| -> Vec<String> {
        found(
            load_text(&format!("{TOK}[[rules.allowlists]]\n{list}")).unwrap(),
            text,
            "a.env",
            None,
        )
        .into_iter()
        .map(|(_, s)| s)
        .collect()
    };
    // The secret is the group: `^tok_` is not in it, but is in the match.
    assert_eq!(secrets("regexes = ['''^tok_a''']\n").len(), 2);
    assert_eq!(
        secrets("regexTarget = \"secret\"\nregexes = ['''^aaaa''']\n"),
        ["bbbbbbbbbbbb"]
    );
    assert_eq!(
        secrets("regexTarget = \"match\"\nregexes = ['''^tok_a''']\n"),
        ["bbbbbbbbbbbb"]
    );
    assert_eq!(secrets("regexTarget = \"match\"\nregexes = ['''fixture''']\n").len(), 2);
    assert_eq!(
        secrets("regexTarget = \"line\"\nregexes = ['''# fixture$''']\n"),
        ["bbbbbbbbbbbb"]
    );
}

#[test]
fn global_allowlists_apply_to_every_rule_or_to_their_target_rules() {
    let two = format!("{TOK}[[rules]]\nid = \"key\"\nregex = '''key_([a-z0-9]{{12}})'''\n");
    let text = "a = tok_aaaaaaaaaaaa\nb = key_aaaaaaaaaaaa\n";
    let ids = |config: &str| -> Vec<String> {
        found(load_text(&format!("{two}{config}")).unwrap(), text, "x.env", None)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(ids(""), ["tok", "key"]);
    assert!(
        ids("[allowlist]\nstopwords = [\"aaaa\"]\n").is_empty(),
        "the older [allowlist]"
    );
    assert!(ids("[[allowlists]]\npaths = ['''\\.env$''']\n").is_empty());
    assert_eq!(
        ids("[[allowlists]]\ntargetRules = [\"tok\"]\nstopwords = [\"aaaa\"]\n"),
        ["key"]
    );
    let e = load_text(&format!(
        "{two}\n[[allowlists]]\ntargetRules = [\"nope\"]\nstopwords = [\"a\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("t.toml:") && e.contains("targetRules: no rule \"nope\""),
        "{e}"
    );
    let e = load_text(&format!(
        "{TOK}[[rules.allowlists]]\ntargetRules = [\"tok\"]\nstopwords = [\"a\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("targetRules belongs in a top-level [[allowlists]]"), "{e}");
}

#[test]
fn a_rule_without_secret_group_takes_the_first_group_that_matched() {
    let set = load_text(
        "[[rules]]\nid = \"quoted\"\nregex = '''key = (?:\"([a-z]{8})\"|'([a-z]{8})')'''\nkeywords = [\"key\"]\n",
    )
    .unwrap();
    let got = found(set, "key = \"abcdefgh\"\nkey = 'ijklmnop'\n", "a", None);
    let secrets: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(secrets, ["abcdefgh", "ijklmnop"]);
}

#[test]
fn a_rule_with_a_path_and_no_regex_reports_files() {
    let set = load_text(
        "[[rules]]\nid = \"keystore\"\ndescription = \"a Java keystore\"\npath = '''\\.jks$'''\n\
         [[rules.allowlists]]\npaths = ['''^test/''']\n",
    )
    .unwrap();
    assert_eq!((set.rules.len(), set.file_rules.len()), (0, 1));
    let engine = Engine::with_rules(set);
    let ids = |path| engine.file_rules(path, None).map(|r| r.id.as_str()).collect::<Vec<_>>();
    assert_eq!(ids("app/keys.jks"), ["keystore"]);
    assert!(ids("test/keys.jks").is_empty() && ids("app/keys.txt").is_empty());
    let e = load_text("[[rules]]\nid = \"nothing\"\ndescription = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no regex and no path"), "{e}");
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
