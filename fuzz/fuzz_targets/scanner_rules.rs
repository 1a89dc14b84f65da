//! Scanner rules: arbitrary text as a `--config` rules file (sidekey's format, a superset of
//! gitleaks' `[[rules]]`, `[extend]`, `[rules.allowlist]`); when it loads, the engine is built
//! from its rules and run on the file itself and on a fixed sample.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidekey_scanner::engine::Engine;
use sidekey_scanner::rules;

const SAMPLE: &[u8] = b"user = admin\npassword = \"c2lkZWtleS1mdXp6LXNhbXBsZQ\"\ntoken: abcdef0123456789abcdef\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((_, rules)) = rules::parse("fuzz.toml", text) else {
        return;
    };
    let engine = Engine::new(rules);
    for (bytes, path) in [(data, Some("fuzz.toml")), (SAMPLE, None)] {
        for m in engine.scan(bytes, path) {
            assert!(m.rule < engine.rules().len());
            assert!(m.span.start <= m.span.end && m.span.end <= bytes.len());
            assert!(m.secret.end <= bytes.len() && m.line >= 1 && m.column >= 1);
        }
    }
});
