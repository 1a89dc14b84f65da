//! `sidekey-scan PATH`: findings with the path as typed, line and column; hidden files
//! scanned, `.git/` not; inline allows; SARIF that Microsoft's SARIF Multitool validates;
//! baselines that survive moved lines; bad input exits 2 naming it.

use std::path::Path;
use std::process::{Command, Output};

use rand::SeedableRng;
use sidekey_scanner::rules::examples::expand;

use crate::support::bin;

/// A checksum-valid GitHub token made at run time.
fn github_token(seed: u64) -> String {
    expand("{github:ghp}", &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap()
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("sidekey-scan"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn findings_name_the_path_as_typed_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (github_token(1), github_token(2), github_token(3));
    write(
        dir.path(),
        "src/app/config.py",
        &format!("import os\n\nTOKEN = \"{a}\"\n"),
    );
    write(dir.path(), "src/.env", &format!("GITHUB_TOKEN={b}\n"));
    write(
        dir.path(),
        "src/test_fixture.py",
        &format!("FAKE = \"{c}\"  # sidekey:allow\n"),
    );
    write(dir.path(), "src/.git/config", &format!("token = {c}\n"));

    let out = scan(dir.path(), &["src", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{report:#}");
    let config = findings
        .iter()
        .find(|f| f["path"] == "src/app/config.py")
        .expect("src/app/config.py");
    assert_eq!(
        (config["line"].as_u64(), config["column"].as_u64()),
        (Some(3), Some(10))
    );
    assert_eq!(config["ruleId"], "github-pat");
    assert!(
        findings.iter().any(|f| f["path"] == "src/.env"),
        "hidden files are scanned"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&a) && !text.contains(&b),
        "secrets are redacted by default"
    );

    let out = scan(dir.path(), &["src/app/config.py", "--no-redact", "--format", "json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&a));
    // Nothing to find: exit 0.
    write(dir.path(), "clean/readme.txt", "nothing to see\n");
    assert_eq!(scan(dir.path(), &["clean"]).status.code(), Some(0));
}

#[test]
fn sarif_validates_and_a_baseline_suppresses_exactly_the_known_findings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (github_token(11), github_token(12));
    write(dir.path(), "repo/app.yaml", &format!("github:\n  token: {a}\n"));
    let out = scan(dir.path(), &["repo", "--format", "sarif", "--output", "baseline.sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("baseline.sarif")).unwrap()).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "repo/app.yaml"
    );
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
    assert!(result["partialFingerprints"]["sidekey/v1"].is_string());
    assert_eq!(result["properties"]["verified"], "unknown");
    // What GitHub code scanning shows: the rule's help, tags and severity.
    let rule = &sarif["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], result["ruleId"]);
    assert!(rule["fullDescription"]["text"]
        .as_str()
        .unwrap()
        .contains(rule["id"].as_str().unwrap()));
    assert!(rule["help"]["text"].as_str().unwrap().contains("revoke"), "{rule:#}");
    let severity: f64 = rule["properties"]["security-severity"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((7.0..=9.0).contains(&severity), "{rule:#}");
    assert!(rule["properties"]["tags"]
        .as_array()
        .unwrap()
        .contains(&"security".into()));

    let multitool = std::env::var("SIDEKEY_TEST_SARIF_MULTITOOL").expect("tests/run.sh installs the SARIF Multitool");
    let validated = Command::new(multitool)
        .arg("validate")
        .arg(dir.path().join("baseline.sarif"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&validated.stdout);
    assert!(
        validated.status.success() && log.contains("Analysis completed successfully"),
        "{log}"
    );
    assert!(!log.contains(": error "), "SARIF Multitool reports errors:\n{log}");

    // The known finding, moved two lines down, stays suppressed; a new one is reported.
    write(
        dir.path(),
        "repo/app.yaml",
        &format!("# moved\n\ngithub:\n  token: {a}\n  other: {b}\n"),
    );
    let out = scan(
        dir.path(),
        &["repo", "--format", "json", "--baseline", "baseline.sarif"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["line"], 5);
    // A JSON report works as a baseline too: with the one new finding in it, nothing is left.
    let json_baseline = scan(dir.path(), &["repo", "--format", "json", "--output", "all.json"]);
    assert_eq!(json_baseline.status.code(), Some(1));
    assert_eq!(
        scan(dir.path(), &["repo", "--baseline", "all.json"]).status.code(),
        Some(0)
    );
}

#[test]
fn bad_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = scan(dir.path(), &["no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir"));

    write(
        dir.path(),
        "rules.toml",
        "[[rules]]\nid = \"mine\"\nregex = '''(unclosed'''\nkeywords = [\"x\"]\n",
    );
    let out = scan(dir.path(), &[".", "--config", "rules.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rules.toml") && stderr.contains("mine") && stderr.contains("invalid regex"),
        "{stderr}"
    );

    write(dir.path(), "base.json", "{\"not\": \"a report\"}");
    let out = scan(dir.path(), &[".", "--baseline", "base.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("base.json"));
}
