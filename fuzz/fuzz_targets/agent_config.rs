//! The agent's config: arbitrary text through `sidekey::config::parse`, the raw TOML model and
//! every validation step `sidekey-agent check` runs (durations, globs, templates, addresses).
//! An error must name the file; nothing may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    match sidekey::config::parse(file, text) {
        Ok(config) => {
            // What `check` prints, and every secret's derived settings.
            let _ = (config.backends.len(), config.access.len(), config.files.len());
            for spec in config.secrets.values() {
                let _ = (spec.source.kind_name(), spec.source.rotate_every());
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("fuzz.toml"), "error does not name the file: {message}");
            let _ = e.key();
        }
    }
});
