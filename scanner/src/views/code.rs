//! String constants in source code, in the forms the rules' assignment pattern
//! (`name = "value"`, `name: Type = "value"`, `"name": "value"`) does not read:
//!
//! | form                                   | languages          |
//! |----------------------------------------|--------------------|
//! | `#define NAME "value"`                 | C, C++, Objective-C |
//! | `NAME: &str = "value"`, `&[u8] = b".."`| Rust               |
//! | `NAME = @"value"`                      | Objective-C        |
//! | `NAME = []byte("value")`, `NAME = Buffer.from("value")` | Go, JavaScript |
//! | `char NAME[] = "value"`                | C                  |
//!
//! One pass of a small literal automaton finds the lines worth a look (`#define`, `&str =`...);
//! only those lines are matched against the forms.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use super::View;

/// Literals, one of which every form contains; each rare in code that has none of the forms,
/// and starting with bytes that are rare too, so that the automaton's SIMD prefilter skips
/// most of a file (a trigger starting with a space or `str` made the pass cost a sixth of a
/// scan of Rust sources). Go's typed `NAME string = "..."` is therefore not looked for.
const TRIGGERS: &[&str] = &[
    "#define",
    "&str =",
    "&'static str =",
    "&[u8] =",
    "@\"",
    "[]byte(",
    "Buffer.from(",
    "[] =",
];

static FINDER: LazyLock<AhoCorasick> = LazyLock::new(|| AhoCorasick::new(TRIGGERS).expect("literal patterns"));

static FORMS: LazyLock<Regex> = LazyLock::new(|| {
    let value = r#"(?:"([^"\\\n]{8,})"|'([^'\\\n]{8,})'|`([^`\\\n]{8,})`)"#;
    let forms = [
        r"#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(?:@|L|u8|u|U)?".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*:\s*&(?:'static\s+)?(?:str|\[u8\])\s*=\s*b?".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*@".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?::=|=)\s*(?:\[\]byte|Buffer\.from)\(\s*b?".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\[[A-Za-z0-9_]*\]\s*=\s*".to_owned() + value,
    ];
    Regex::new(&forms.map(|f| format!("(?:{f})")).join("|")).expect("the code forms compile")
});

/// Adds the constants of `text` to `view`.
pub fn pairs(text: &str, view: &mut View) {
    let bytes = text.as_bytes();
    let mut last_line_start = usize::MAX;
    // Lines counted up to `counted` (hits come in order).
    let (mut counted, mut number) = (0, 1);
    for hit in FINDER.find_iter(bytes) {
        let start = memchr::memrchr(b'\n', &bytes[..hit.start()]).map_or(0, |i| i + 1);
        if start == last_line_start {
            continue;
        }
        last_line_start = start;
        let end = memchr::memchr(b'\n', &bytes[hit.end()..]).map_or(bytes.len(), |i| hit.end() + i);
        let line = &text[start..end];
        number += memchr::memchr_iter(b'\n', &bytes[counted..start]).count();
        counted = start;
        for caps in FORMS.captures_iter(line) {
            let groups: Vec<_> = caps.iter().skip(1).flatten().collect();
            let [name, value] = groups[..] else { continue };
            if value.len() > 512 {
                continue;
            }
            let column = line[..value.start()].chars().count() + 1;
            view.pair(name.as_str(), value.as_str(), number, column);
        }
    }
}
