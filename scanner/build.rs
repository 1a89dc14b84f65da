//! The scanner's build script: the version metadata every binary gets (`build/version.rs`),
//! the built-in rules converted once, here, from TOML to JSON, and the keyword pass's table of
//! common grams as a ready hash table (no parsing or building when a scan starts).
//!
//! Parsing the ~900 KB of rule TOML was most of `sidekey-scan`'s start-up, which a pre-commit
//! hook pays on every commit; the same data as JSON deserializes into the same `RuleSyntax`
//! several times faster. The TOML files stay the source (they are what people edit and what
//! the tests check, including that both forms give the same rules).

#[path = "../build/version.rs"]
mod version;

use std::path::PathBuf;

/// The built-in rule files, in order: `config/rules.toml` (its header documents the format;
/// generic rules last) and provider rules in `config/rules/`, one file per range of providers.
/// The one list of them: `src/rules.rs`'s `BUILTIN` is generated from it.
const RULE_FILES: &[&str] = &[
    "config/rules.toml",
    "config/rules/providers-a-l.toml",
    "config/rules/providers-m-z.toml",
];

fn main() {
    version::main();
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut builtin = String::from("&[\n");
    for (i, file) in RULE_FILES.iter().enumerate() {
        let path = root.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json = serde_json::to_string(&value).expect("a TOML value is JSON");
        let json_path = out.join(format!("rules-{i}.json"));
        std::fs::write(&json_path, json).expect("OUT_DIR is writable");
        builtin.push_str(&format!(
            "    ({file:?}, include_str!({:?})),\n",
            json_path.display().to_string()
        ));
    }
    builtin.push_str("]\n");
    std::fs::write(out.join("builtin.rs"), builtin).expect("OUT_DIR is writable");
    common_grams(
        &root.join("scanner/src/engine/common-grams.txt"),
        &out.join("common_grams.rs"),
    );
}

/// `engine/common-grams.txt` (one gram a line, commonest first, `~` for a space) as an
/// open-addressed table of (gram as a little-endian `u32`, rank): 2^15 slots, a gram's first
/// slot the top 15 bits of `gram * 0x9e37_79b1`, then the next ones (wrapping), 0 an empty slot.
/// `engine/keywords.rs`'s `common_rank` looks up the same way; its test finds every listed gram.
fn common_grams(list: &std::path::Path, out: &std::path::Path) {
    const BITS: u32 = 15;
    println!("cargo:rerun-if-changed={}", list.display());
    let text = std::fs::read_to_string(list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    let mut slots = vec![(0u32, 0u16); 1 << BITS];
    for (rank, line) in text.lines().enumerate() {
        let bytes: [u8; 4] = line
            .replace('~', " ")
            .as_bytes()
            .try_into()
            .unwrap_or_else(|_| panic!("{}:{}: {line:?} is not four bytes", list.display(), rank + 1));
        let gram = u32::from_le_bytes(bytes);
        assert!(
            rank < (1 << BITS) * 3 / 4,
            "{}: more grams than the table holds well",
            list.display()
        );
        let mut slot = (gram.wrapping_mul(0x9e37_79b1) >> (32 - BITS)) as usize;
        while slots[slot].0 != 0 {
            assert!(
                slots[slot].0 != gram,
                "{}:{}: {line:?} is listed twice",
                list.display(),
                rank + 1
            );
            slot = (slot + 1) % slots.len();
        }
        slots[slot] = (gram, rank as u16);
    }
    let mut rust = String::from("&[\n");
    for (gram, rank) in slots {
        rust.push_str(&format!("    ({gram:#010x}, {rank}),\n"));
    }
    rust.push_str("]\n");
    std::fs::write(out, rust).expect("OUT_DIR is writable");
}
