//! One function per subcommand; `dispatch` picks it.

mod check;
mod generate;
mod get;
mod hash_token;
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

/// The embedded default config (docs/config.md: the agent runs with no external service).
const DEV_CONFIG: &str = include_str!("../../config/dev.toml");

/// Loads `path`, or the embedded `config/dev.toml` when none is given.
fn load(path: Option<&Path>) -> Result<Config, sidekey::config::Error> {
    match path {
        Some(path) => sidekey::config::load(path),
        None => sidekey::config::parse(Path::new("config/dev.toml (embedded)"), DEV_CONFIG),
    }
}

/// Runs one subcommand.
pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config, log_format } => run::run(load(config.as_deref())?, log_format),
        Command::Check {
            config: Some(path),
            portable: true,
        } => check::check(sidekey::config::load_portable(&path)?),
        Command::Check { config, .. } => check::check(load(config.as_deref())?),
        Command::Get { name, field, socket } => get::get(&name, field.as_deref(), &socket),
        Command::Revoke {
            secret,
            value_stdin,
            fingerprint,
            socket,
        } => revoke::revoke(secret, value_stdin, fingerprint, &socket),
        Command::Store {
            command: StoreCommand::Set { config, name },
        } => store::set(&config, &name),
        Command::HashToken => hash_token::hash_token(),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { dir } => generate::man(dir.as_deref()),
    }
}
