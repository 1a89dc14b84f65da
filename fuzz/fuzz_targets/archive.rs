//! Archive and image readers: arbitrary bytes as a file handed to the scanner's source
//! dispatch (sniff → zip, tar, gzip, zstd, nested; `docker save` and OCI layouts are tars of
//! tars), scanned by the built-in rules, with small limits; a zip is also read in place as one
//! on disk is (stored zips inside it opened where they lie, larger streamed ones spilled to a
//! temporary file). Cuts must be reported, never followed; nothing may panic.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sidekey_scanner::engine::Engine;
use sidekey_scanner::rules;
use sidekey_scanner::scan::Scan;
use sidekey_scanner::source::{self, archive, Budget, Ctx, Limits};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(rules::builtin()))
}

fn limits() -> Limits {
    Limits {
        max_member: 1024 * 1024,
        max_expanded: 4 * 1024 * 1024,
        max_depth: 4,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let scan = Scan::new(engine(), HashSet::new());
    let budget = Budget::new(&limits);
    source::dispatch_bytes("fuzz.bin", data, &Ctx::top(&scan, &limits, None, &budget));
    if data.starts_with(b"PK") {
        let budget = Budget::new(&limits);
        let _ = archive::open_zip_bytes("fuzz.zip", data, &Ctx::top(&scan, &limits, None, &budget));
    }
    let _ = scan.finish();
});
