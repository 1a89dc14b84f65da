//! Reports: the sink of findings. Human (colour on a TTY, redacted), JSON (flat records) and
//! SARIF 2.1.0; none knows a regex or a source.
//!
//! Invariant: the human report writes no text from the scanned input as it is. Paths, member
//! names, authors, rule descriptions and skip reasons go through [`printable`], so a file name
//! holding an escape sequence, a newline (`\n::error::` in a CI log) or a bidi override cannot
//! steer the terminal or forge lines; the scanner's stderr lines use it too. JSON and SARIF
//! escape through their own encoders.

use std::borrow::Cow;
use std::io::Write;

use serde_json::json;

use crate::finding::Finding;
use crate::source::Skipped;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Readable lines, secrets redacted.
    Human,
    /// `{"findings": [...], "skipped": [...]}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// Writes `findings` in `format`.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    findings: &[Finding],
    skipped: &[Skipped],
    reveal: bool,
    colour: bool,
) -> std::io::Result<()> {
    match format {
        Format::Human => human(out, findings, skipped, reveal, colour),
        Format::Json => {
            let body = json!({
                "findings": findings.iter().map(|f| f.record(reveal)).collect::<Vec<_>>(),
                "skipped": skipped.iter().map(|s| json!({"path": s.path, "reason": s.reason, "outside": s.outside})).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut *out, &body)?;
            writeln!(out)
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(findings, skipped, reveal))?;
            writeln!(out)
        }
    }
}

fn human(
    out: &mut dyn Write,
    findings: &[Finding],
    skipped: &[Skipped],
    reveal: bool,
    colour: bool,
) -> std::io::Result<()> {
    let (red, dim, reset) = if colour {
        ("\x1b[1;31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let p = printable;
    for f in findings {
        writeln!(
            out,
            "{red}{}{reset} {}:{}:{}",
            p(&f.rule_id),
            p(&f.path),
            f.line,
            f.column
        )?;
        if let Some(c) = &f.commit {
            let id: String = c.id.chars().take(12).collect();
            writeln!(
                out,
                "    commit {} by {} <{}> on {}",
                p(&id),
                p(&c.author),
                p(&c.email),
                p(&c.date)
            )?;
        }
        writeln!(
            out,
            "    {}  {dim}({}; fingerprint {}){reset}",
            p(&f.shown(reveal)),
            p(&f.description),
            &f.fingerprint[..16]
        )?;
    }
    for s in skipped {
        let what = if s.outside { "not scanned" } else { "skipped" };
        writeln!(out, "{dim}{what}{reset} {}: {}", p(&s.path), p(&s.reason))?;
    }
    let counted = skipped.iter().filter(|s| !s.outside).count();
    writeln!(out, "{} finding(s), {counted} skipped", findings.len())
}

/// `text` as a terminal or a CI log may show it: each control character (C0, DEL, C1), Unicode
/// bidi control (the Trojan Source overrides and isolates), line or paragraph separator and
/// zero-width or invisible formatting character is written as an escape in Rust's notation
/// (`\n`, `\t`, `\r`, `\x1b`, `\u{202e}`), and a backslash as `\\` so that an escape is never
/// confused with a name that spells one. Everything else, `é` and `日本` included, is kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether [`printable`] escapes `c`.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c,
            '\u{061c}'                    // Arabic letter mark (bidi)
            | '\u{00ad}'                  // soft hyphen (invisible)
            | '\u{200b}'..='\u{200f}'     // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}'     // line and paragraph separators
            | '\u{202a}'..='\u{202e}'     // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'     // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'     // bidi isolates
            | '\u{feff}'                  // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}') // interlinear annotation
}

/// What was refused, for [`next_steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A commit (`--staged`, the pre-commit hook).
    Commit,
    /// A push (`--pre-push`, the pre-push hook).
    Push,
    /// Nothing: a scan of files, history or artifacts.
    Nothing,
}

/// What to do about findings, in a few lines for a person (the human report's epilogue, on
/// stderr): mark a false positive inline, record an accepted one in a baseline, or take a
/// real one out and revoke it.
pub fn next_steps(refused: Refused) -> String {
    let (head, remove, skip) = match refused {
        Refused::Commit => (
            "the commit was refused. For each finding:",
            "take it out of the commit (git restore --staged FILE)",
            "\n  To skip the check once: git commit --no-verify.",
        ),
        Refused::Push => (
            "the push was refused. For each finding:",
            "rewrite the commit that added it (git rebase -i)",
            "\n  To skip the check once: git push --no-verify.",
        ),
        Refused::Nothing => ("for each finding:", "remove it", ""),
    };
    format!(
        "sidekey-scan: {head}\n  \
         - not a secret (an example, a test value): put `sidekey:allow` in a comment on its line;\n  \
         - accepted as it is: record it in a baseline (sidekey-scan --format json --output .sidekey-baseline.json)\n    \
         and scan with --baseline .sidekey-baseline.json (the hook: sidekey-scan install-hook -- --baseline FILE);\n  \
         - a real secret: {remove}, and revoke it: sidekey-scan --verify --revoke at its issuer,\n    \
         or sidekey-agent revoke --secret NAME for one the broker issued.{skip}"
    )
}

/// The SARIF 2.1.0 log: one run, one result per finding.
/// <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>
pub fn sarif(findings: &[Finding], skipped: &[Skipped], reveal: bool) -> serde_json::Value {
    let mut rule_ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<_> = rule_ids
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.rule_id == *id).expect("id from a finding");
            rule_descriptor(id, f)
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": rule_ids.binary_search(&f.rule_id.as_str()).expect("collected above"),
                "level": "error",
                "message": {"text": format!("{}: {}", f.description, f.shown(reveal))},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri(&f.path)},
                    "region": {"startLine": f.line, "startColumn": f.column},
                }}],
                "partialFingerprints": {"sidekey/v1": f.fingerprint},
                "properties": properties(f),
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sidekey-scan",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "invocations": [invocation(skipped)],
        }],
    })
}

/// A rule as GitHub code scanning shows it: its description, what to do (`help`), tags and a
/// `security-severity` (CVSS-like: 9.0 for private keys, 8.0 for provider credentials, 7.0
/// for generic assignments, whose findings are less certain).
fn rule_descriptor(id: &str, f: &Finding) -> serde_json::Value {
    let severity = match f.family.as_str() {
        "private-key" => "9.0",
        "generic" => "7.0",
        _ => "8.0",
    };
    let help = format!(
        "A credential ({}) is in the scanned content. If it is real: revoke it at its issuer \
         (sidekey-scan --verify --revoke, or sidekey-agent revoke --secret NAME for one the broker \
         issued), then remove it from the code and, if it was committed, from the history. If it \
         is not a secret: mark its line with a `sidekey:allow` comment or record it in a baseline.",
        f.description
    );
    json!({
        "id": id,
        "name": id,
        "shortDescription": {"text": f.description},
        "fullDescription": {"text": format!("{} (rule {id}, family {}).", f.description, f.family)},
        "help": {"text": help, "markdown": help},
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "kind": f.family,
            "tags": ["security", "secret", f.family],
            "precision": if f.family == "generic" { "medium" } else { "high" },
            "security-severity": severity,
        },
    })
}

/// The run's invocation: not successful when part of the input was skipped, each skipped part
/// a notification (a warning; a note when it is outside the input).
fn invocation(skipped: &[Skipped]) -> serde_json::Value {
    let notes: Vec<_> = skipped
        .iter()
        .map(|s| {
            json!({
                "level": if s.outside { "note" } else { "warning" },
                "message": {"text": format!("{}: {}", if s.outside { "not scanned" } else { "skipped" }, s.reason)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&s.path)}}}],
            })
        })
        .collect();
    json!({
        "executionSuccessful": skipped.iter().all(|s| s.outside),
        "toolExecutionNotifications": notes,
    })
}

/// A result's `properties` (docs/scanner.md, "Reports"), plus the commit for history findings.
fn properties(f: &Finding) -> serde_json::Value {
    let mut p = json!({"kind": f.family, "verified": f.verified, "owned_secret": f.owned_secret, "revoked": f.revoked});
    if let Some(c) = &f.commit {
        p["commit"] = json!(c.id);
        p["author"] = json!(format!("{} <{}>", c.author, c.email));
        p["date"] = json!(c.date);
    }
    p
}

/// Bytes of a path kept as they are in a SARIF URI: RFC 3986's unreserved set, `/` and `!`.
const URI_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b'!');

/// A relative URI reference for a path: everything outside [`URI_KEEP`] percent-encoded.
fn uri(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, URI_KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_name_the_three_ways_out() {
        let commit = next_steps(Refused::Commit);
        for said in [
            "commit was refused",
            "sidekey:allow",
            "--baseline",
            "--revoke",
            "sidekey-agent revoke",
            "--no-verify",
        ] {
            assert!(commit.contains(said), "{said}: {commit}");
        }
        assert!(!next_steps(Refused::Nothing).contains("--no-verify"));
        assert!(commit.lines().count() <= 8, "short: {commit}");
    }

    #[test]
    fn printable_escapes_what_steers_a_terminal_and_keeps_names_readable() {
        assert!(matches!(printable("src/café/日本.env"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(printable("x\n::error::pwned"), "x\\n::error::pwned");
        assert_eq!(printable("a\r\tb\x7f\u{85}"), "a\\r\\tb\\x7f\\u{85}");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(
            printable("\u{2066}\u{2069}\u{200b}\u{2028}\u{feff}"),
            "\\u{2066}\\u{2069}\\u{200b}\\u{2028}\\u{feff}"
        );
        assert_eq!(
            printable("a\\x1b"),
            "a\\\\x1b",
            "a name that spells an escape is not one"
        );
    }

    #[test]
    fn the_human_report_escapes_paths_members_and_reasons() {
        let mut f = crate::finding::test_finding(
            "r\x1b",
            "f",
            "dir/a\x1b[31m\n::error::x\u{202e}.env!m\n",
            1,
            "secretvalue",
        );
        f.description = "desc\x1b]0;title\x07".into();
        let skipped = [Skipped {
            path: "z.zip!\x1b[2J".into(),
            reason: "bad\nname".into(),
            outside: false,
        }];
        let mut out = Vec::new();
        write(&mut out, Format::Human, &[f], &skipped, false, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}') && !text.contains('\x07'),
            "{text}"
        );
        assert!(text.lines().all(|l| !l.trim_start().starts_with("::")), "{text}");
        assert!(
            text.contains("dir/a\\x1b[31m\\n::error::x\\u{202e}.env!m\\n:1:1"),
            "{text}"
        );
        assert!(text.contains("z.zip!\\x1b[2J: bad\\nname"), "{text}");
    }

    #[test]
    fn uris_escape_what_uris_cannot_hold() {
        assert_eq!(uri("src/app/config.py"), "src/app/config.py");
        assert_eq!(uri("a dir/x.zip!in side.env"), "a%20dir/x.zip!in%20side.env");
    }

    #[test]
    fn sarif_uris_escape_all_but_unreserved_slash_and_bang() {
        assert_eq!(uri("src/app.py"), "src/app.py");
        assert_eq!(uri("a b/c%d!e~f"), "a%20b/c%25d!e~f");
        assert_eq!(uri("café.txt"), "caf%C3%A9.txt");
    }
}
