//! Assignments of INI, TOML, Java properties and HCL/Terraform files, qualified by the section
//! or block they are in: `[stripe]` then `secret_key = ...` is `stripe_secret_key`,
//! `provider "datadog" { api_key = ... }` is `datadog_api_key`, `variable "slack_token" {
//! default = ... }` is `slack_token_default`. A properties value continued over several lines
//! with a trailing `\` is added joined. Assignments outside any section, on one line, are left
//! to the raw scan, which reads them as they are.

use super::View;

/// Adds the qualified assignments of `text` to `view`.
pub fn pairs(text: &str, view: &mut View) {
    let mut blocks: Vec<String> = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let number = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';', '!']) || trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "}" || trimmed == "}," {
            blocks.pop();
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let header = header.trim_matches(['[', ']']).trim();
            let parts: Vec<&str> = header.rsplit(['.', ' ']).take(2).collect();
            let name: Vec<&str> = parts.into_iter().rev().map(|p| p.trim_matches('"')).collect();
            section = Some(name.join("_"));
            blocks.clear();
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('{') {
            blocks.push(block_name(head.trim()));
            continue;
        }
        let Some((key, value, column)) = assignment(line) else {
            continue;
        };
        let mut value = value.to_owned();
        let mut joined = false;
        // A properties value continued on the next lines.
        while value.ends_with('\\') && !value.ends_with("\\\\") {
            let Some((_, next)) = lines.next() else { break };
            value.pop();
            value.push_str(next.trim_start());
            joined = true;
        }
        let context = blocks.iter().rfind(|b| !b.is_empty()).or(section.as_ref());
        let qualified = match &context {
            Some(c) => format!("{c}_{key}"),
            None if joined => key.to_owned(),
            None => continue,
        };
        view.pair(&qualified, unquote(&value), number, column);
    }
}

/// The name of an HCL block from its head (`provider "datadog"`, `resource "a" "b"`,
/// `settings =`): its labels joined, or its keyword when it has none.
fn block_name(head: &str) -> String {
    let head = head.trim_end_matches(['=', ':']).trim();
    let labels: Vec<&str> = head
        .split('"')
        .enumerate()
        .filter(|(i, s)| i % 2 == 1 && !s.is_empty())
        .map(|(_, s)| s)
        .collect();
    if labels.is_empty() {
        head.split_whitespace().last().unwrap_or("").to_owned()
    } else {
        labels.join("_")
    }
}

/// `key = value`, `key: value` or `key := value`: the key, the value (trimmed, with an
/// unquoted value's trailing ` #`/` ;` comment removed) and the value's 1-based column.
fn assignment(line: &str) -> Option<(&str, &str, usize)> {
    let start = line.len() - line.trim_start().len();
    let body = &line[start..];
    let key_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '"' | '\'')))
        .unwrap_or(body.len());
    let key = body[..key_len].trim_matches(['"', '\'']);
    if key.is_empty() {
        return None;
    }
    let rest = body[key_len..].trim_start();
    let rest = rest
        .strip_prefix(":=")
        .or_else(|| rest.strip_prefix('='))
        .or_else(|| rest.strip_prefix(':'))?;
    let value = rest.trim();
    if value.is_empty() || value.starts_with(['{', '[']) {
        return None;
    }
    let value = if value.starts_with(['"', '\'']) {
        value
    } else {
        value
            .find(" #")
            .or_else(|| value.find(" ;"))
            .map_or(value, |cut| value[..cut].trim_end())
    };
    let column = line[..line.len() - rest.trim_start().len()].chars().count() + 1;
    Some((key, value, column))
}

/// A value without the quotes around it (and a trailing `,` in HCL maps).
fn unquote(value: &str) -> &str {
    let value = value.strip_suffix(',').unwrap_or(value).trim();
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}
