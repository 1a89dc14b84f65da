//! One function per subcommand; `dispatch` picks it.

mod aws_credential_process;
mod check;
mod exec;
mod generate;
mod get;
mod hash_token;
mod health;
mod revoke;
mod run;
mod store;

use std::path::Path;

use sidekey::Config;

use crate::cli::{Command, StoreCommand};

/// A usage mistake the user can fix (exit 2), as opposed to a refusal or failure (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit with this status and no message: `exec` passes on its command's own exit status.
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct Exit(pub u8);

/// The embedded default config (docs/config.md: the agent runs with no external service).
const DEV_CONFIG: &str = include_str!("../../config/dev.toml");

/// How much of this machine a loaded config is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Everything it names: files, directories, groups, the socket (`run`, `check`).
    Host,
    /// The same but the socket, which is not bound (`run --once`).
    Unbound,
    /// The text only (`check --portable`).
    Portable,
}

/// Loads `path`, or the embedded `config/dev.toml` when none is given, held to `hold`.
fn load(path: Option<&Path>, hold: Hold) -> Result<Config, sidekey::config::Error> {
    use sidekey::config as cfg;
    let embedded = Path::new("config/dev.toml (embedded)");
    match (path, hold) {
        (Some(path), Hold::Host) => cfg::load(path),
        (Some(path), Hold::Unbound) => cfg::load_unbound(path),
        (Some(path), Hold::Portable) => cfg::load_portable(path),
        (None, Hold::Host) => cfg::parse(embedded, DEV_CONFIG),
        (None, Hold::Unbound) => cfg::parse_unbound(embedded, DEV_CONFIG),
        (None, Hold::Portable) => cfg::parse_portable(embedded, DEV_CONFIG),
    }
}

/// `text` on one line: control characters (newlines in a backend's error, say) become spaces,
/// so a probe's or a script's one line stays one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Runs one subcommand.
pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            config,
            log_format,
            once,
            timeout,
        } => {
            let how = run::How {
                log_format,
                embedded: config.is_none(),
                once: once.then_some(timeout),
            };
            let hold = if once { Hold::Unbound } else { Hold::Host };
            run::run(load(config.as_deref(), hold)?, how)
        }
        Command::Check { config, portable } => {
            let hold = if portable { Hold::Portable } else { Hold::Host };
            check::check(load(config.as_deref(), hold)?)
        }
        Command::Get { name, field, socket } => get::get(&name, field.as_deref(), &socket.socket),
        Command::Health { socket, timeout } => health::health(&socket.socket, timeout),
        Command::Revoke {
            secret,
            value_stdin,
            fingerprint,
            socket,
        } => revoke::revoke(secret, value_stdin, fingerprint, &socket.socket),
        Command::Exec {
            env,
            on_change,
            grace,
            socket,
            command,
        } => exec::exec(exec::Plan {
            env,
            on_change,
            grace,
            socket: socket.socket,
            command,
        }),
        Command::AwsCredentialProcess { name, socket } => aws_credential_process::print(&name, &socket.socket),
        Command::Store {
            command: StoreCommand::Set { config, name },
        } => store::set(&config, &name),
        Command::HashToken => hash_token::hash_token(),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { dir } => generate::man(dir.as_deref()),
    }
}
