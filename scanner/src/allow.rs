//! What the user said to ignore: an inline `sidekey:allow` (or `gitleaks:allow`) on the line,
//! a baseline — an earlier JSON or SARIF report whose fingerprints are known findings — and
//! gitleaks' `.gitleaksignore` ([`GitleaksIgnore`]: findings named the way gitleaks
//! fingerprints them, by place rather than by content).

use std::collections::HashSet;
use std::path::Path;

use crate::finding::Finding;

/// Whether the line holding byte `at` of `bytes` carries an inline allow comment.
pub fn inline(bytes: &[u8], at: usize) -> bool {
    let start = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let end = bytes[at..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    let line = &bytes[start..end];
    [&b"sidekey:allow"[..], b"gitleaks:allow"]
        .iter()
        .any(|marker| line.windows(marker.len()).any(|w| w == *marker))
}

/// Fingerprints of a baseline report (sidekey JSON or SARIF).
pub fn baseline(path: &Path) -> anyhow::Result<HashSet<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read baseline: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: baseline is not JSON (line {}): {e}", path.display(), e.line()))?;
    let mut prints = HashSet::new();
    if let Some(findings) = value.get("findings").and_then(|f| f.as_array()) {
        prints.extend(
            findings
                .iter()
                .filter_map(|f| f["fingerprint"].as_str().map(str::to_owned)),
        );
    } else if let Some(runs) = value.get("runs").and_then(|r| r.as_array()) {
        for result in runs.iter().filter_map(|r| r["results"].as_array()).flatten() {
            if let Some(fp) = result["partialFingerprints"]["sidekey/v1"].as_str() {
                prints.insert(fp.to_owned());
            }
        }
    } else {
        anyhow::bail!(
            "{}: not a sidekey JSON or SARIF report (no \"findings\" or \"runs\")",
            path.display()
        );
    }
    Ok(prints)
}

/// gitleaks' `.gitleaksignore`: one finding a line, as gitleaks fingerprints it —
/// `FILE:RULE-ID:LINE`, or `COMMIT:FILE:RULE-ID:LINE` for a finding of a history scan; blank
/// lines and lines starting with `#` are skipped, `\` in a path reads as `/`. A finding is left
/// out when either form names it (a file reported for its path alone is at line 0, as gitleaks
/// has it, or line 1, as sidekey reports it).
#[derive(Debug, Default)]
pub struct GitleaksIgnore {
    entries: HashSet<String>,
}

impl GitleaksIgnore {
    /// Reads `path`; answers the entries and the lines (1-based) that are not a fingerprint
    /// (kept, as gitleaks keeps them, but worth a warning).
    pub fn load(path: &Path) -> anyhow::Result<(GitleaksIgnore, Vec<usize>)> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a `.gitleaksignore` (see [`GitleaksIgnore::load`]).
    pub fn parse(text: &str) -> (GitleaksIgnore, Vec<usize>) {
        let mut entries = HashSet::new();
        let mut odd = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts: Vec<String> = line.split(':').map(str::to_owned).collect();
            match parts.len() {
                3 => parts[0] = parts[0].replace('\\', "/"),
                4 => parts[1] = parts[1].replace('\\', "/"),
                _ => odd.push(i + 1),
            }
            entries.insert(parts.join(":"));
        }
        (GitleaksIgnore { entries }, odd)
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `f` is named here.
    pub fn ignores(&self, f: &Finding) -> bool {
        let lines: &[usize] = if f.is_file() { &[0, 1] } else { &[f.line] };
        lines.iter().any(|line| {
            let global = format!("{}:{}:{line}", f.path, f.rule_id);
            self.entries.contains(&global)
                || f.commit
                    .as_ref()
                    .is_some_and(|c| self.entries.contains(&format!("{}:{global}", c.id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitleaksignore_names_findings_by_place_with_or_without_the_commit() {
        let (ignore, odd) = GitleaksIgnore::parse(
            "# known\n\nsrc\\app.env:github-pat:3\n0123abcd:cfg/x.env:stripe:7\nnot-a-fingerprint\n",
        );
        assert_eq!(odd, vec![5]);
        assert_eq!(ignore.len(), 3);
        let mut f = crate::finding::test_finding("github-pat", "vcs", "src/app.env", 3, "s3cr3t");
        assert!(ignore.ignores(&f), "the global form, backslashes read as slashes");
        f.line = 4;
        assert!(!ignore.ignores(&f), "another line");
        let mut g = crate::finding::test_finding("stripe", "payments", "cfg/x.env", 7, "s3cr3t");
        assert!(!ignore.ignores(&g), "the commit form needs the commit");
        g.commit = Some(std::sync::Arc::new(crate::source::Commit {
            id: "0123abcd".into(),
            author: "a".into(),
            email: "a@example.test".into(),
            date: "2026-01-01T00:00:00Z".into(),
        }));
        assert!(ignore.ignores(&g));
    }

    #[test]
    fn inline_allows_cover_only_their_own_line() {
        let text = b"a = 1\nkey = x # sidekey:allow\nother = y\n";
        assert!(inline(text, 8));
        assert!(!inline(text, 1));
        assert!(!inline(text, 30));
        assert!(inline(b"k = v // gitleaks:allow", 3));
    }
}
