//! `sidekey-agent`: parse the command line, dispatch to one `cmd::*` function, and turn the
//! result into an exit code (0 ok, 1 refused or failed, 2 bad usage or config) in one place.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sidekey_agent::{cli, cmd};

fn main() -> ExitCode {
    let cli = cli::parse();
    match cmd::dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(cmd::Exit(code)) = e.downcast_ref::<cmd::Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("sidekey-agent: {e:#}");
            if e.downcast_ref::<cmd::UsageError>().is_some() || e.downcast_ref::<sidekey::config::Error>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
