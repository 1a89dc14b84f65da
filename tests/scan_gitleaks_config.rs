//! Configs users bring from gitleaks (issue 16), honoured as gitleaks defines them: a
//! `.gitleaks.toml` at the root of the scan (the directory scanned, or the repository of
//! `--git`) is picked up, `GITLEAKS_CONFIG` and `GITLEAKS_CONFIG_TOML` name one; without
//! `[extend]` a config replaces the built-in rules, `[extend]` builds on them (`useDefault`) or
//! on another file (`path`) less `disabledRules`; allowlists with every key (`paths`,
//! `regexes` and `regexTarget`, `stopwords`, `commits`, `condition`, `targetRules`);
//! path-only rules; `.gitleaksignore` fingerprints; and a key sidekey does not implement is
//! refused with its file and line. The configs are of the shapes found in the wild (gitleaks'
//! README and projects' `.gitleaks.toml`); every secret is made at run time.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use serde_json::Value;
use sidekey_scanner::rules::examples::expand;

use crate::support::git::isolated;
use crate::support::scan_report as scan;

/// A value of `template` (sidekey's example templates), made at run time.
fn make(template: &str, seed: u64) -> String {
    expand(template, &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

/// A checksum-valid GitHub token (the built-in `github-pat` rule).
fn github(seed: u64) -> String {
    make("{github:ghp}", seed)
}

/// An AWS access key id (the built-in `aws-access-key-id` rule).
fn aws(seed: u64) -> String {
    make("AKIA{upper:16}", seed)
}

/// A token of the config's own `acme-internal-token` rule.
fn acme(seed: u64) -> String {
    make("acme_{lower:32}", seed)
}

/// A custom rule in gitleaks' form (no keywords, a secret group).
const ACME_RULE: &str = r#"
[[rules]]
id = "acme-internal-token"
description = "ACME internal API token"
regex = '''\b(acme_[a-z0-9]{32})\b'''
secretGroup = 1
tags = ["internal", "key"]
"#;

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `path ruleId` of each finding, in report order.
fn found(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["path"].as_str().unwrap(), f["ruleId"].as_str().unwrap()))
        .collect()
}

/// `sidekey-scan` exits 2 for `args` in `dir`; answers its stderr.
fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = crate::support::scan_output(dir, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = isolated("git", dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A new repository in `dir/repo`.
fn repo(dir: &Path) -> PathBuf {
    let path = dir.join("repo");
    std::fs::create_dir(&path).unwrap();
    git(&path, &["init", "-q", "-b", "main"]);
    path
}

/// Writes and commits `files`; answers the commit id.
fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, text) in files {
        write(repo, path, text);
        git(repo, &["add", path]);
    }
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// `sidekey-scan --git ARGS --format json` in `dir`, git isolated: exit code, report, stderr.
fn scan_git(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = isolated(crate::support::bin("sidekey-scan"), dir)
        .arg("--git")
        .args(args)
        .args(["--format", "json", "--no-progress"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

#[test]
fn a_gitleaks_toml_at_the_root_is_picked_up_in_directory_and_git_scans() {
    let tmp = tempfile::tempdir().unwrap();
    // The common shape: the default rules, one of the project's own, vendored code left out.
    let config = format!(
        "title = \"project gitleaks config\"\n\n[extend]\nuseDefault = true\n{ACME_RULE}\n\
         [allowlist]\ndescription = \"global allow list\"\npaths = [\n  '''gitleaks\\.toml''',\n  \
         '''(.*?)(jpg|gif|doc|pdf|bin)$''',\n  '''(^|/)vendor/''',\n]\n"
    );
    let files = [
        (".gitleaks.toml", config.clone()),
        ("app/.env", format!("ACME={}\nGITHUB_TOKEN={}\n", acme(1), github(2))),
        ("vendor/lib/settings.py", format!("TOKEN = \"{}\"\n", github(3))),
    ];
    let project = tmp.path().join("project");
    for (path, text) in &files {
        write(&project, path, text);
    }
    let want = ["app/.env acme-internal-token", "app/.env github-pat"];

    // The current directory, and a directory named on the command line.
    let (code, report, stderr) = scan(&project, &[], &[]);
    assert_eq!((code, found(&report)), (1, want.map(String::from).to_vec()), "{stderr}");
    assert!(
        stderr.contains("using .gitleaks.toml (found at the root of the scan)")
            && stderr.contains("the built-in rules extended"),
        "stderr says which config is used: {stderr}"
    );
    let (code, report, stderr) = scan(tmp.path(), &["project"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        found(&report),
        ["project/app/.env acme-internal-token", "project/app/.env github-pat"],
        "{stderr}"
    );
    assert!(stderr.contains("using project/.gitleaks.toml"), "{stderr}");
    // Several paths have no one root: the built-in rules alone (the vendored token is found,
    // the project's own token is not).
    let (_, report, stderr) = scan(&project, &["app", "vendor"], &[]);
    assert_eq!(
        found(&report),
        ["app/.env github-pat", "vendor/lib/settings.py github-pat"],
        "{stderr}"
    );
    assert!(!stderr.contains("gitleaks.toml"), "{stderr}");

    // --git, from a subdirectory: the repository's root config.
    let repo = repo(tmp.path());
    for (path, text) in &files {
        commit(&repo, &[(path, text)], &format!("add {path}"));
    }
    let (code, report, stderr) = scan_git(&repo.join("app"), &[]);
    assert_eq!((code, found(&report)), (1, want.map(String::from).to_vec()), "{stderr}");
    assert!(
        stderr.contains("/repo/.gitleaks.toml (found at the root of the scan)"),
        "{stderr}"
    );

    // --config wins over the root's file.
    write(&project, "other.toml", "[extend]\nuseDefault = true\n");
    let (_, report, stderr) = scan(&project, &["--config", "other.toml"], &[]);
    assert_eq!(
        found(&report),
        ["app/.env github-pat", "vendor/lib/settings.py github-pat"],
        "{stderr}"
    );
}

#[test]
fn gitleaks_config_and_gitleaks_config_toml_name_the_config_in_gitleaks_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    write(
        &dir,
        "deploy.env",
        &format!("ACME={}\nAWS_ACCESS_KEY_ID={}\n", acme(4), aws(5)),
    );
    // At the root: the built-in rules less AWS's.
    write(
        &dir,
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\ndisabledRules = [\"aws-access-key-id\"]\n",
    );
    // Elsewhere: the project's own rule only.
    let elsewhere = tmp.path().join("ci/gitleaks.toml");
    write(tmp.path(), "ci/gitleaks.toml", ACME_RULE);
    let env_path = elsewhere.to_str().unwrap();
    let only_acme = vec!["deploy.env acme-internal-token".to_owned()];

    let (_, report, stderr) = scan(&dir, &[], &[]);
    assert_eq!(found(&report), Vec::<String>::new(), "{stderr}");
    let (_, report, stderr) = scan(&dir, &[], &[("GITLEAKS_CONFIG", env_path)]);
    assert_eq!(found(&report), only_acme, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "using {env_path} (from GITLEAKS_CONFIG): 1 rule(s), the built-in rules are not used"
        )),
        "{stderr}"
    );
    let (_, report, stderr) = scan(&dir, &[], &[("GITLEAKS_CONFIG_TOML", ACME_RULE)]);
    assert_eq!(found(&report), only_acme, "{stderr}");
    assert!(stderr.contains("the config in GITLEAKS_CONFIG_TOML"), "{stderr}");
    // GITLEAKS_CONFIG before GITLEAKS_CONFIG_TOML, --config before both.
    let with_default = "[extend]\nuseDefault = true\n";
    let (_, report, _) = scan(
        &dir,
        &[],
        &[("GITLEAKS_CONFIG", env_path), ("GITLEAKS_CONFIG_TOML", with_default)],
    );
    assert_eq!(found(&report), only_acme);
    write(&dir, "all.toml", &format!("[extend]\nuseDefault = true\n{ACME_RULE}"));
    let (_, report, stderr) = scan(
        &dir,
        &["--config", "all.toml"],
        &[("GITLEAKS_CONFIG", env_path), ("GITLEAKS_CONFIG_TOML", with_default)],
    );
    assert_eq!(
        found(&report),
        ["deploy.env acme-internal-token", "deploy.env aws-access-key-id"],
        "{stderr}"
    );
    assert!(!stderr.contains("using"), "--config named it: nothing to say: {stderr}");
    // A GITLEAKS_CONFIG that does not exist is an error naming it.
    let stderr = refused(&dir, &["."], &[("GITLEAKS_CONFIG", "/nonexistent/gitleaks.toml")]);
    assert!(stderr.contains("/nonexistent/gitleaks.toml: cannot read"), "{stderr}");
}

#[test]
fn without_extend_a_config_replaces_the_builtin_rules() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        "app.env",
        &format!("GITHUB_TOKEN={}\nACME={}\n", github(6), acme(7)),
    );

    write(dir, "own.toml", &format!("title = \"ours only\"\n{ACME_RULE}"));
    let (code, report, stderr) = scan(dir, &["--config", "own.toml"], &[]);
    assert_eq!(
        (code, found(&report)),
        (1, vec!["app.env acme-internal-token".to_owned()]),
        "the built-in github-pat no longer fires: {stderr}"
    );
    assert!(
        stderr.contains("using own.toml: 1 rule(s), the built-in rules are not used"),
        "even a --config says so when it drops the built-in rules: {stderr}"
    );
    write(dir, "own.toml", &format!("[extend]\nuseDefault = true\n{ACME_RULE}"));
    let (_, report, _) = scan(dir, &["--config", "own.toml"], &[]);
    assert_eq!(found(&report), ["app.env github-pat", "app.env acme-internal-token"]);

    // An allowlist alone, without [extend], would find nothing: refused, saying how to fix it.
    write(dir, "allow.toml", "[allowlist]\npaths = ['''^vendor/''']\n");
    let stderr = refused(dir, &["--config", "allow.toml", "."], &[]);
    assert!(
        stderr.contains("allow.toml: no rules") && stderr.contains("useDefault = true"),
        "{stderr}"
    );
}

#[test]
fn extend_follows_a_path_merges_rules_by_id_and_disables_rules() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // An organisation's shared base (its path relative to the config that extends it).
    write(
        dir,
        "ci/gitleaks/base.toml",
        &format!("[extend]\nuseDefault = true\n{ACME_RULE}\n[[allowlists]]\npaths = ['''^third_party/''']\n"),
    );
    // gitleaks' README: extend a rule of the base to allow a custom prefix on its line.
    write(
        dir,
        "ci/gitleaks/repo.toml",
        "[extend]\npath = \"base.toml\"\ndisabledRules = [\"aws-access-key-id\"]\n\n\
         [[rules]]\nid = \"github-pat\"\n  [[rules.allowlists]]\n  regexTarget = \"line\"\n  regexes = [ '''MY-ghp-''' ]\n",
    );
    write(
        dir,
        "src/settings.env",
        &format!(
            "GITHUB_TOKEN={}\nLEGACY=MY-ghp-{}\nAWS_ACCESS_KEY_ID={}\nACME={}\n",
            github(8),
            github(9),
            aws(10),
            acme(11)
        ),
    );
    write(dir, "third_party/x.env", &format!("ACME={}\n", acme(12)));
    let (code, report, stderr) = scan(dir, &["--config", "ci/gitleaks/repo.toml", "src", "third_party"], &[]);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{} {}",
                f["path"].as_str().unwrap(),
                f["line"],
                f["ruleId"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "src/settings.env:1 github-pat",
            "src/settings.env:4 acme-internal-token"
        ],
        "the merged rule skips its allowed line, AWS's rule is disabled, the base's allowlist holds: {stderr}"
    );

    // A disabled rule that is not there is a warning; a base that is not there an error.
    write(
        dir,
        "typo.toml",
        "[extend]\nuseDefault = true\ndisabledRules = [\"github-path\"]\n",
    );
    let (_, _, stderr) = scan(dir, &["--config", "typo.toml", "src"], &[]);
    assert!(
        stderr.contains("warning: typo.toml:3: [extend] disabledRules: no rule \"github-path\""),
        "{stderr}"
    );
    write(dir, "lost.toml", "[extend]\npath = \"gone.toml\"\n");
    let stderr = refused(dir, &["--config", "lost.toml", "src"], &[]);
    assert!(
        stderr.contains("lost.toml:2: [extend] path \"gone.toml\": no such file"),
        "{stderr}"
    );
}

#[test]
fn allowlists_honour_every_key_and_condition() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (a, b, c, d) = (github(13), github(14), github(15), github(16));
    write(dir, "docs/example.md", &format!("token: {a}\n"));
    write(dir, "tests/fixtures/app.env", &format!("GITHUB_TOKEN={b}\n"));
    write(dir, "app/prod.env", &format!("GITHUB_TOKEN={c}\n"));
    write(dir, "app/dev.env", &format!("GITHUB_TOKEN={d} # sample\n"));
    let run = |allowlists: &str| -> Vec<String> {
        write(dir, "cfg.toml", &format!("[extend]\nuseDefault = true\n\n{allowlists}"));
        let (_, report, stderr) = scan(dir, &["--config", "cfg.toml", "docs", "tests", "app"], &[]);
        assert!(!stderr.contains("error"), "{stderr}");
        found(&report)
            .into_iter()
            .map(|f| f.split(' ').next().unwrap().to_owned())
            .collect()
    };
    let all = [
        "app/dev.env",
        "app/prod.env",
        "docs/example.md",
        "tests/fixtures/app.env",
    ];
    assert_eq!(run(""), all);
    // paths, regexes (the secret, by default), stopwords: any one is enough.
    let or = format!(
        "[[allowlists]]\ndescription = \"docs and fixtures\"\npaths = ['''^docs/''', '''(^|/)fixtures/''']\n\
         [[allowlists]]\nregexes = ['''^{}''']\n[[allowlists]]\nstopwords = [\"{}\"]\n",
        &c[..12],
        d[4..12].to_lowercase()
    );
    assert_eq!(run(&or), Vec::<String>::new());
    // AND: the path and the line's marker together.
    let and = "[[allowlists]]\ncondition = \"AND\"\npaths = ['''^app/''']\nregexTarget = \"line\"\nregexes = ['''# sample$''']\n";
    assert_eq!(run(and), ["app/prod.env", "docs/example.md", "tests/fixtures/app.env"]);
    // regexTarget = "match": the whole match (the rule's regex, here the token itself).
    let by_match = format!("[[allowlists]]\nregexTarget = \"match\"\nregexes = ['''^{}$''']\n", a);
    assert_eq!(
        run(&by_match),
        ["app/dev.env", "app/prod.env", "tests/fixtures/app.env"]
    );
    // targetRules: only the rules named.
    let targeted = "[[allowlists]]\ntargetRules = [\"aws-access-key-id\"]\npaths = ['''^app/''']\n\
                    [[allowlists]]\ntargetRules = [\"github-pat\"]\npaths = ['''^docs/''']\n";
    assert_eq!(run(targeted), ["app/dev.env", "app/prod.env", "tests/fixtures/app.env"]);
    // A rule's own allowlist with the same keys.
    let per_rule =
        "[[rules]]\nid = \"github-pat\"\n[rules.allowlist]\npaths = ['''^tests/''']\nstopwords = [\"zzzz-never\"]\n";
    assert_eq!(run(per_rule), ["app/dev.env", "app/prod.env", "docs/example.md"]);
}

#[test]
fn commits_allowlists_leave_out_what_those_commits_introduced_in_history() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let first = commit(
        &repo,
        &[("a.env", &format!("GITHUB_TOKEN={}\n", github(17)))],
        "fixture",
    );
    let second = commit(&repo, &[("b.env", &format!("ACME={}\n", acme(18)))], "acme");
    commit(&repo, &[("c.env", &format!("GITHUB_TOKEN={}\n", github(19)))], "real");
    let history = |config: &str| -> Vec<String> {
        write(&repo, ".gitleaks.toml", config);
        let (_, report, stderr) = scan_git(&repo, &[]);
        report["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{stderr}"))
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["path"].as_str().unwrap(),
                    &f["commit"].as_str().unwrap()[..7]
                )
            })
            .collect()
    };
    let ours = format!("[extend]\nuseDefault = true\n{ACME_RULE}");
    assert_eq!(history(&ours).len(), 3);
    // Global: the commit's findings are gone, whatever the rule (ids are case-insensitive).
    let global = format!("{ours}\n[[allowlists]]\ncommits = [\"{}\"]\n", first.to_uppercase());
    let got = history(&global);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got.iter().any(|f| f.starts_with("a.env")), "{got:?}");
    // A rule's own: only that rule's findings in that commit.
    let per_rule = format!(
        "[extend]\nuseDefault = true\n{ACME_RULE}\n[[rules.allowlists]]\ncommits = [\"{second}\", \"{first}\"]\n"
    );
    let got = history(&per_rule);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().any(|f| f.starts_with("a.env")) && !got.iter().any(|f| f.starts_with("b.env")));
}

#[test]
fn a_rule_with_a_path_and_no_regex_reports_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(
        dir,
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"pkcs12-file\"\ndescription = \"Found a PKCS #12 file\"\n\
         path = '''(?i)\\.(?:p12|pfx)$'''\n[[rules.allowlists]]\npaths = ['''^testdata/''']\n",
    );
    std::fs::write(dir.join("server.p12"), [0x30u8, 0x82, 0x0a, 0x00, 0x02, 0x01, 0x03]).unwrap();
    write(dir, "testdata/client.pfx", "not really\n");
    write(dir, "README.md", "nothing\n");
    // In an archive, its members are files too.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["keys/backup.PFX", "keys/readme.txt"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, b"bytes\n").unwrap();
    }
    std::fs::write(dir.join("bundle.zip"), zip.finish().unwrap().into_inner()).unwrap();
    let (code, report, stderr) = scan(dir, &[], &[]);
    assert_eq!(
        (code, found(&report)),
        (
            1,
            vec![
                "bundle.zip!keys/backup.PFX pkcs12-file".to_owned(),
                "server.p12 pkcs12-file".to_owned()
            ]
        ),
        "{stderr}"
    );
    let f = &report["findings"][1];
    assert_eq!(
        (f["line"].as_u64(), f["secret"].as_str()),
        (Some(1), Some("file detected"))
    );
    assert_eq!(f["description"], "Found a PKCS #12 file");
}

#[test]
fn gitleaksignore_leaves_out_findings_by_gitleaks_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let text = format!("# settings\nGITHUB_TOKEN={}\nOTHER_TOKEN={}\n", github(20), github(21));
    let id = commit(&repo, &[("config/app.env", &text)], "settings");
    commit(
        &repo,
        &[("later.env", &format!("GITHUB_TOKEN={}\n", github(22)))],
        "later",
    );
    let lines = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{}:{}", f["path"].as_str().unwrap(), f["line"]))
            .collect()
    };
    let (_, report, _) = scan(&repo, &[], &[]);
    assert_eq!(lines(&report), ["config/app.env:2", "config/app.env:3", "later.env:1"]);

    // gitleaks' two forms: FILE:RULE:LINE anywhere, COMMIT:FILE:RULE:LINE in history.
    write(
        &repo,
        ".gitleaksignore",
        &format!(
            "# accepted findings\nconfig/app.env:github-pat:2\n{id}:config/app.env:github-pat:3\n\nnot a fingerprint\n"
        ),
    );
    let (code, report, stderr) = scan(&repo, &[], &[]);
    assert_eq!(
        (code, lines(&report)),
        (1, vec!["config/app.env:3".to_owned(), "later.env:1".to_owned()]),
        "a directory scan has no commit: {stderr}"
    );
    assert!(
        stderr.contains("using .gitleaksignore: 3 finding(s) named there are not reported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: .gitleaksignore:5: not a gitleaks fingerprint"),
        "{stderr}"
    );
    let (code, report, stderr) = scan_git(&repo.join("config"), &[]);
    assert_eq!((code, lines(&report)), (1, vec!["later.env:1".to_owned()]), "{stderr}");
}

#[test]
fn a_key_sidekey_does_not_implement_is_refused_naming_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write(dir, "app.env", &format!("GITHUB_TOKEN={}\n", github(23)));
    // gitleaks' composite rules.
    write(
        dir,
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"pair\"\nregex = '''id_[0-9]{8}'''\n\n\
         [[rules.required]]\nid = \"github-pat\"\nwithinLines = 3\n",
    );
    let stderr = refused(dir, &[], &[]);
    assert!(
        stderr.contains(".gitleaks.toml:8: unknown key `required`: gitleaks' composite rules"),
        "{stderr}"
    );
    // A misspelt key is not skipped either.
    write(
        dir,
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\n\n[allowlist]\npath = ['''^x/''']\n",
    );
    let stderr = refused(dir, &[], &[]);
    assert!(
        stderr.contains(".gitleaks.toml:5: unknown key `path`: sidekey-scan does not implement it (keys here:"),
        "{stderr}"
    );
    // Nor a value out of its set.
    write(
        dir,
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\n[[allowlists]]\nregexTarget = \"file\"\nregexes = ['''x''']\n",
    );
    let stderr = refused(dir, &[], &[]);
    assert!(stderr.contains(".gitleaks.toml:4: unknown variant `file`"), "{stderr}");
}
