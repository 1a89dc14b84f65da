//! YAML's key/value pairs, read with `yaml-rust2`'s event parser (which gives each scalar's
//! line and column). Every scalar value of a mapping is a pair under its key qualified by the
//! key above it (`twilio: {auth_token: ...}` is `twilio_auth_token`); a mapping with `name`
//! (or `key`) and `value` is also a pair under the name (Kubernetes `env`, Helm and CI lists);
//! a value under `data`/`binaryData` that decodes from base64 to text is added decoded
//! (Kubernetes Secrets). Block and folded scalars arrive as the text they stand for.

use base64::Engine as _;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use super::View;

enum Frame {
    Map {
        /// The key of the entry this mapping is the value of (through sequences).
        entry: Option<String>,
        /// The key whose value comes next, when a key has been read.
        key: Option<String>,
        /// `name:`/`key:` and `value:` seen in this mapping.
        name: Option<String>,
        value: Option<(String, Marker)>,
    },
    Seq {
        /// The key of the entry this sequence is the value of.
        entry: Option<String>,
    },
}

/// Adds the pairs of `text` to `view`.
pub fn pairs(text: &str, view: &mut View) {
    let lines: Vec<&str> = text.lines().collect();
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    // Each event until the end or the first error: what was read before an error stays, and
    // the rest is read line by line.
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => return by_lines(&lines, e.marker().line().saturating_sub(1), view),
        };
        match event {
            Event::StreamEnd => break,
            Event::MappingStart(..) => {
                let entry = open(&mut stack);
                stack.push(Frame::Map {
                    entry,
                    key: None,
                    name: None,
                    value: None,
                });
            }
            Event::SequenceStart(..) => {
                let entry = open(&mut stack);
                stack.push(Frame::Seq { entry });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    name: Some(name),
                    value: Some((value, at)),
                    ..
                }) = stack.pop()
                {
                    view.pair(&name, &value, at.line(), at.col() + 1);
                }
            }
            Event::SequenceEnd => {
                stack.pop();
            }
            Event::Alias(_) => {
                open(&mut stack);
            }
            Event::Scalar(value, ..) => {
                let wrapped = wrapped(&value, lines.get(mark.line().wrapping_sub(1)).copied().unwrap_or(""));
                scalar(&mut stack, value, wrapped, mark, view);
            }
            _ => {}
        }
    }
}

/// YAML the parser refused from line index `from` on (a Helm template, a fragment): a `key:`
/// alone on its line pairs with the more indented scalar line after it, and `- name: X` with a
/// `value: ...` line after it.
fn by_lines(lines: &[&str], from: usize, view: &mut View) {
    let indent = |l: &str| l.len() - l.trim_start().len();
    fn scalar(l: &str) -> Option<&str> {
        let t = l.trim();
        let quoted =
            t.len() >= 2 && (t.starts_with('"') && t.ends_with('"') || t.starts_with('\'') && t.ends_with('\''));
        if quoted {
            Some(&t[1..t.len() - 1])
        } else if t.is_empty()
            || t.starts_with(['-', '#', '{', '[', '|', '>', '&', '*'])
            || t.contains(": ")
            || t.ends_with(':')
        {
            None
        } else {
            Some(t)
        }
    }
    for i in from..lines.len() {
        let line = lines[i];
        let t = line.trim();
        let Some(next) = lines.get(i + 1) else { break };
        if let Some(key) = t.strip_suffix(':').filter(|k| !k.is_empty() && !k.contains([' ', ':'])) {
            if indent(next) > indent(line) {
                if let Some(value) = scalar(next) {
                    let column = indent(next) + 1 + usize::from(next.trim().len() != value.len());
                    view.pair(key.trim_start_matches("- "), value, i + 2, column);
                }
            }
        } else if let Some(name) = t.strip_prefix("- name:").map(str::trim) {
            if let Some(value) = next.trim().strip_prefix("value:").map(str::trim) {
                let column = next.len() - value.len() + 1;
                view.pair(
                    name.trim_matches(['"', '\'']),
                    value.trim_matches(['"', '\'']),
                    i + 2,
                    column,
                );
            }
        }
    }
}

/// A container (or alias) starts as the value of the pending key, which it uses up; answers
/// the key it sits under (a sequence's items sit under the sequence's key).
fn open(stack: &mut [Frame]) -> Option<String> {
    match stack.last_mut()? {
        Frame::Map { key, .. } => key.take(),
        Frame::Seq { entry } => entry.clone(),
    }
}

/// A scalar: a key, or a value paired with its key (and with `joined`, its unwrapped form).
fn scalar(stack: &mut [Frame], value: String, joined: Option<String>, at: Marker, view: &mut View) {
    let Some(Frame::Map {
        entry,
        key,
        name,
        value: named,
    }) = stack.last_mut()
    else {
        return;
    };
    let Some(k) = key.take() else {
        *key = Some(value);
        return;
    };
    match k.as_str() {
        "name" | "key" => *name = Some(value.clone()),
        "value" => *named = Some((joined.clone().unwrap_or_else(|| value.clone()), at)),
        _ => {}
    }
    let (line, column) = (at.line(), at.col() + 1);
    let qualified = match entry.as_deref() {
        Some(p) => format!("{p}_{k}"),
        None => k.clone(),
    };
    view.pair(&qualified, &value, line, column);
    if let Some(joined) = &joined {
        view.pair(&qualified, joined, line, column);
    }
    if matches!(entry.as_deref(), Some("data" | "binaryData")) {
        if let Some(decoded) = decode(&value) {
            view.pair(&k, &decoded, line, column);
        }
    }
}

/// A value YAML folded from several lines (`>` or a plain or quoted scalar wrapped by an
/// editor) whose pieces are parts of one token: the pieces joined without the spaces folding
/// put between them. `first` is the source line the value starts on: a value that fits on it
/// was not wrapped.
fn wrapped(value: &str, first: &str) -> Option<String> {
    let pieces: Vec<&str> = value.split_whitespace().collect();
    let token = |p: &&str| p.len() >= 4 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-.".contains(&b));
    let on_first_line = pieces.get(1).is_some_and(|second| first.contains(second));
    (pieces.len() >= 2 && pieces.len() <= 16 && pieces.iter().all(token) && !on_first_line).then(|| pieces.concat())
}

/// A base64 value that decodes to text.
fn decode(value: &str) -> Option<String> {
    let compact: String = value.split_whitespace().collect();
    if compact.len() < 8 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    (!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t')).then_some(text)
}
