//! What the user said to ignore: an inline `sidekey:allow` (or `gitleaks:allow`) on the line,
//! and a baseline — an earlier JSON or SARIF report whose fingerprints are known findings.

use std::collections::HashSet;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_allows_cover_only_their_own_line() {
        let text = b"a = 1\nkey = x # sidekey:allow\nother = y\n";
        assert!(inline(text, 8));
        assert!(!inline(text, 1));
        assert!(!inline(text, 30));
        assert!(inline(b"k = v // gitleaks:allow", 3));
    }
}
