//! `sidekey-scan`: the leak scanner (rules, engine, sources, findings, reports, response).
//! Not built yet: this stub tells the user so and exits 2 (error), so no hook or CI job
//! mistakes it for a clean scan.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("sidekey-scan: not yet — the scanner is not implemented in this version (see README)");
    ExitCode::from(2)
}
