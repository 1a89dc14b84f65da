//! A Jupyter notebook's cells as the text they hold: each cell's `source`, and its outputs'
//! `text` and `text/plain`, decoded from JSON strings and joined, so that what a rule reads
//! is the code as it runs (`API_KEY = "..."`, not `"API_KEY = \"...\"\n",`) and a multi-line
//! value (a PEM key in a cell) is whole again.
//!
//! Notebooks are written by Jupyter with one string of a list per line; each of those lines
//! maps to its own line of the notebook. A notebook on one line (minified) is read with
//! `serde_json`, and everything maps to line 1.

use super::View;

/// Adds the lines of the cells of `text` to `view`.
pub fn lines(text: &str, view: &mut View) {
    if text.lines().nth(2).is_none() {
        return minified(text, view);
    }
    let mut in_list = false;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim();
        if in_list {
            if trimmed.starts_with(']') {
                in_list = false;
                view.line("", number, 1);
                continue;
            }
            let item = trimmed.strip_suffix(',').unwrap_or(trimmed);
            if let Ok(decoded) = serde_json::from_str::<String>(item) {
                let column = line.len() - line.trim_start().len() + 2;
                for piece in decoded.split_inclusive('\n') {
                    view.line(piece.strip_suffix('\n').unwrap_or(piece), number, column);
                }
            }
            continue;
        }
        let Some((key, rest)) = field(trimmed) else { continue };
        if !matches!(key, "source" | "text" | "text/plain") {
            continue;
        }
        let rest = rest.trim();
        if rest == "[" {
            in_list = true;
        } else if let Ok(decoded) = serde_json::from_str::<String>(rest.strip_suffix(',').unwrap_or(rest)) {
            // The other form nbformat allows: one string.
            let column = line.len() - line.trim_start().len() + 1;
            for piece in decoded.lines() {
                view.line(piece, number, column);
            }
            view.line("", number, 1);
        }
    }
}

/// `"key": rest` of a line of pretty-printed JSON.
fn field(line: &str) -> Option<(&str, &str)> {
    let inner = line.strip_prefix('"')?;
    let end = inner.find('"')?;
    let rest = inner[end + 1..].trim_start().strip_prefix(':')?;
    Some((&inner[..end], rest))
}

fn minified(text: &str, view: &mut View) {
    let Ok(notebook) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let cells = notebook.get("cells").and_then(|c| c.as_array());
    for cell in cells.into_iter().flatten() {
        let outputs = cell.get("outputs").and_then(|o| o.as_array());
        let texts = std::iter::once(cell.get("source")).chain(
            outputs
                .into_iter()
                .flatten()
                .flat_map(|o| [o.get("text"), o.get("data").and_then(|d| d.get("text/plain"))]),
        );
        for value in texts.flatten() {
            let joined = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
                _ => continue,
            };
            for line in joined.lines() {
                view.line(line, 1, 1);
            }
            view.line("", 1, 1);
        }
    }
}
