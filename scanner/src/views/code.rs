//! String constants in source code, in the forms the rules' assignment pattern
//! (`name = "value"`, `name: Type = "value"`, `"name": "value"`) does not read:
//!
//! | form                                   | languages          |
//! |----------------------------------------|--------------------|
//! | `#define NAME "value"`                 | C, C++, Objective-C |
//! | `NAME: &str = "value"`, `&[u8] = b".."`| Rust               |
//! | `NAME = @"value"`                      | Objective-C        |
//! | `NAME = []byte("value")`               | Go                 |
//! | `char NAME[] = "value"`                | C                  |
//!
//! A literal search per form the file's language writes finds the lines worth a look
//! (`#define`, `str = "`...); only those lines are matched against the forms.

use std::sync::LazyLock;

use regex::Regex;

use super::View;

/// Literals, one of which each form contains, by the languages that write it (a file's
/// extension). Each is searched with `memchr::memmem` (a SIMD search keyed on its rarest
/// bytes): one automaton over all of them spent a sixth of a scan of Rust sources verifying
/// candidates such as every `&str` of a signature.
fn triggers(ext: &str) -> &'static [&'static str] {
    match ext {
        "rs" => &["str = \"", "[u8] = b\""],
        "go" => &["[]byte(\""],
        "m" | "mm" => &["#define", "@\"", "[] = \""],
        _ => &["#define", "[] = \""],
    }
}

static FORMS: LazyLock<Regex> = LazyLock::new(|| {
    let value = r#"(?:"([^"\\\n]{8,})"|'([^'\\\n]{8,})'|`([^`\\\n]{8,})`)"#;
    let forms = [
        r"#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(?:@|L|u8|u|U)?".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*:\s*&(?:'static\s+)?(?:str|\[u8\])\s*=\s*b?".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*@".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?::=|=)\s*\[\]byte\(\s*".to_owned() + value,
        r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\[[A-Za-z0-9_]*\]\s*=\s*".to_owned() + value,
    ];
    Regex::new(&forms.map(|f| format!("(?:{f})")).join("|")).expect("the code forms compile")
});

/// Adds the constants of `text`, a file with extension `ext`, to `view`.
pub fn pairs(text: &str, ext: &str, view: &mut View) {
    let bytes = text.as_bytes();
    let mut starts: Vec<usize> = triggers(ext)
        .iter()
        .flat_map(|t| memchr::memmem::find_iter(bytes, t.as_bytes()))
        .map(|hit| memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |i| i + 1))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    // Lines counted up to `counted` (starts are in order).
    let (mut counted, mut number) = (0, 1);
    for start in starts {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
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
