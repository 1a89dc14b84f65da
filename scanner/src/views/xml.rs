//! XML's key/value pairs (.NET `web.config`/`app.config`, Maven `settings.xml`, Java
//! properties XML, plists...), read with the `xmlparser` tokenizer (which gives byte spans):
//!
//! - every attribute is a pair under `element_attribute` (`<user password="..."/>`);
//! - an element with a `key`/`name` attribute pairs it with its other attributes
//!   (`<add key="Twilio:ApiKey" value="..."/>` is `Twilio_ApiKey`,
//!   `<add name="Main" connectionString="..."/>` is `Main_connectionString`) and with its text
//!   (`<entry key="api.token">...</entry>`);
//! - element text is a pair under `parent_element` (`<server><password>...` is
//!   `server_password`); a plist `<key>K</key><string>V</string>` is a pair under `K`.
//!
//! Entities (`&amp;`, `&#38;`...) are decoded in values.

use xmlparser::{ElementEnd, Token, Tokenizer};

use super::{line_starts, position, View};

struct Element<'a> {
    name: &'a str,
    /// The value of its `key`/`name` attribute.
    key: Option<String>,
}

/// Adds the pairs of `text` to `view`.
pub fn pairs(text: &str, view: &mut View) {
    let starts = line_starts(text.as_bytes());
    let at = |offset: usize| position(text, &starts, offset);
    let mut stack: Vec<Element> = Vec::new();
    let mut name = "";
    let mut attributes: Vec<(&str, &str, usize)> = Vec::new();
    // The text of the last plist `<key>`, paired with the next element's text.
    let mut plist_key: Option<String> = None;
    for token in Tokenizer::from(text) {
        // What was read before a malformed part stays.
        let Ok(token) = token else { break };
        match token {
            Token::ElementStart { local, .. } => {
                name = local.as_str();
                attributes.clear();
            }
            Token::Attribute {
                prefix, local, value, ..
            } if prefix.as_str() != "xmlns" && local.as_str() != "xmlns" => {
                attributes.push((local.as_str(), value.as_str(), value.start()));
            }
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open | ElementEnd::Empty => {
                    let key = element(name, &attributes, view, &at);
                    if matches!(end, ElementEnd::Open) {
                        stack.push(Element { name, key });
                    }
                }
                ElementEnd::Close(..) => {
                    stack.pop();
                }
            },
            Token::Text { text: t } | Token::Cdata { text: t, .. } => {
                let value = t.as_str().trim();
                let Some(top) = stack.last() else { continue };
                if value.is_empty() {
                    continue;
                }
                let value = decode(value);
                let (line, column) = at(t.start() + (t.as_str().len() - t.as_str().trim_start().len()));
                if top.name == "key" {
                    plist_key = Some(value);
                    continue;
                }
                let key = match (&top.key, plist_key.take(), stack.len().checked_sub(2)) {
                    (Some(k), _, _) => k.clone(),
                    (None, Some(k), _) => k,
                    (None, None, Some(parent)) => format!("{}_{}", stack[parent].name, top.name),
                    (None, None, None) => top.name.to_owned(),
                };
                view.pair(&key, &value, line, column);
            }
            _ => {}
        }
    }
}

/// Adds an element's attribute pairs; answers the value of its `key`/`name` attribute.
fn element(
    name: &str,
    attributes: &[(&str, &str, usize)],
    view: &mut View,
    at: &impl Fn(usize) -> (usize, usize),
) -> Option<String> {
    let is_key = |a: &str| a.eq_ignore_ascii_case("key") || a.eq_ignore_ascii_case("name");
    let key = attributes.iter().find(|(a, ..)| is_key(a)).map(|(_, v, _)| decode(v));
    for (attribute, value, offset) in attributes {
        let value = decode(value);
        let (line, column) = at(*offset);
        view.pair(&format!("{name}_{attribute}"), &value, line, column);
        if let Some(k) = key.as_deref().filter(|_| !is_key(attribute)) {
            if attribute.eq_ignore_ascii_case("value") {
                view.pair(k, &value, line, column);
            } else {
                view.pair(&format!("{k}_{attribute}"), &value, line, column);
            }
        }
    }
    key
}

/// `value` with XML's entities and character references decoded (an unknown one is kept).
fn decode(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
