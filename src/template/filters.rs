//! The filters a placeholder may apply (`{{ db.password | json }}`): each writes a value in
//! the syntax of one kind of file, so that the matching reader parses it back to exactly the
//! value, whatever it holds (quotes, newlines, `$`, backticks, backslashes, `#`, `=`, spaces
//! at either end, any Unicode).
//!
//! | filter | writes | the reader it is for |
//! |---|---|---|
//! | `json` | a JSON string literal, quotes included | any JSON parser |
//! | `yaml` | a double-quoted YAML scalar (a JSON string that also escapes what YAML reads differently) | YAML 1.1 and 1.2 parsers (PyYAML, libyaml, serde_yaml…) |
//! | `shell` | a POSIX single-quoted word (`'` as `'\''`) | `sh`, `bash`, `. file` |
//! | `env` | a double-quoted `.env` value | python-dotenv (`load_dotenv`, `dotenv_values`, with their default interpolation) |
//! | `urlencode` | percent-encoding of every byte but the unreserved `A-Z a-z 0-9 - . _ ~` | any URL decoder (RFC 3986) |
//! | `base64` | standard base64 with padding (RFC 4648) | any base64 decoder |
//!
//! Each output is built in a buffer sized for it up front (so it never reallocates and leaves
//! a copy behind) and handed back as a [`SecretString`]. A value that the syntax cannot hold
//! (a NUL byte in a shell word or an environment variable) is an error naming the filter,
//! never the value.

use std::fmt::Write as _;

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::secret::SecretString;

/// The filters, by name, in the order messages list them.
pub const NAMES: &[&str] = &["json", "yaml", "shell", "env", "urlencode", "base64"];

/// Applies the filter `name` to `value`; `Err` says why the value cannot be written that way.
/// `name` is one of [`NAMES`].
pub(super) fn apply(name: &str, value: &str) -> Result<SecretString, &'static str> {
    match name {
        "json" => Ok(json(value)),
        "yaml" => Ok(yaml(value)),
        "shell" => shell(value),
        "env" => env(value),
        "urlencode" => Ok(urlencode(value)),
        "base64" => Ok(base64(value)),
        _ => unreachable!("only the filters of NAMES are registered"),
    }
}

/// A JSON string literal: serde_json's escaping (`"`, `\`, control characters), written into
/// a buffer of the worst-case size (every byte as `\u00XX`).
pub fn json(value: &str) -> SecretString {
    let mut out = Vec::with_capacity(6 * value.len() + 2);
    serde_json::to_writer(&mut out, value).expect("writing a string into memory does not fail");
    SecretString::from(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Characters a JSON string may hold as they are but a YAML double-quoted scalar may not:
/// DEL and the C1 controls (not printable in YAML: PyYAML refuses the document), NEL, LINE
/// SEPARATOR and PARAGRAPH SEPARATOR (line breaks to YAML 1.1, so they would be folded), the
/// byte order mark and the non-characters U+FFFE/U+FFFF.
fn yaml_escaped(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// A double-quoted YAML scalar: the [`json`] literal (every JSON string is a valid YAML
/// double-quoted scalar with the same escapes) with the characters of [`yaml_escaped`]
/// written as `\uXXXX` too.
pub fn yaml(value: &str) -> SecretString {
    let json = json(value);
    let extra = json.expose().chars().filter(|c| yaml_escaped(*c)).count();
    if extra == 0 {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 6 * extra);
    for c in json.expose().chars() {
        if yaml_escaped(c) {
            write!(out, "\\u{:04x}", c as u32).expect("writing into a String does not fail");
        } else {
            out.push(c);
        }
    }
    SecretString::from(out)
}

/// A POSIX shell word: single quotes keep every character as it is but `'` itself, which
/// closes the quotes, is escaped, and reopens them (`'\''`). A NUL byte cannot be in a shell
/// string.
pub fn shell(value: &str) -> Result<SecretString, &'static str> {
    if value.contains('\0') {
        return Err("a shell word cannot hold a NUL byte");
    }
    let quotes = value.matches('\'').count();
    let mut out = String::with_capacity(value.len() + 3 * quotes + 2);
    out.push('\'');
    for (i, part) in value.split('\'').enumerate() {
        if i > 0 {
            out.push_str("'\\''");
        }
        out.push_str(part);
    }
    out.push('\'');
    Ok(SecretString::from(out))
}

/// How [`env`] writes one character (`None`: as it is).
fn env_escape(c: char, next: Option<char>) -> Option<&'static str> {
    Some(match c {
        '\\' => "\\\\",
        '"' => "\\\"",
        '\n' => "\\n",
        // Python reads text files with universal newlines: a bare CR would become LF.
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\u{b}' => "\\v",
        '\u{c}' => "\\f",
        // python-dotenv expands `${NAME}` and `${NAME:-default}` in every value, quoted or
        // not, and has no escape for `$`. `${:-$}` is a variable with an empty name, which no
        // environment holds, and the default `$`: it expands to `$`, and the `{` after it is
        // then plain text.
        '$' if next == Some('{') => "${:-$}",
        _ => return None,
    })
}

/// A double-quoted value of a `.env` file as python-dotenv reads it: inside `"…"` it decodes
/// `\\`, `\"`, `\'` and `\a \b \f \n \r \t \v` and keeps every other character as it is,
/// newlines included; then (by default) it expands `${…}`, which [`env_escape`] defuses. A NUL
/// byte cannot be in an environment variable.
pub fn env(value: &str) -> Result<SecretString, &'static str> {
    if value.contains('\0') {
        return Err("an environment variable cannot hold a NUL byte");
    }
    let pairs = || value.chars().zip(value.chars().skip(1).map(Some).chain([None]));
    let size = pairs()
        .map(|(c, next)| env_escape(c, next).map_or(c.len_utf8(), str::len))
        .sum::<usize>();
    let mut out = String::with_capacity(size + 2);
    out.push('"');
    for (c, next) in pairs() {
        match env_escape(c, next) {
            Some(escaped) => out.push_str(escaped),
            None => out.push(c),
        }
    }
    out.push('"');
    Ok(SecretString::from(out))
}

/// Every byte but the unreserved characters of RFC 3986 (section 2.3).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encoding of the UTF-8 bytes (`%XX`, upper-case hex) of everything but the
/// unreserved characters: safe in any part of a URL (user, password, path segment, query).
pub fn urlencode(value: &str) -> SecretString {
    let mut out = String::with_capacity(3 * value.len());
    for chunk in percent_encoding::utf8_percent_encode(value, NOT_UNRESERVED) {
        out.push_str(chunk);
    }
    SecretString::from(out)
}

/// Standard base64 (RFC 4648 section 4) with padding, of the value's UTF-8 bytes.
pub fn base64(value: &str) -> SecretString {
    let mut out = String::with_capacity(value.len().div_ceil(3) * 4);
    base64::engine::general_purpose::STANDARD.encode_string(value, &mut out);
    SecretString::from(out)
}
