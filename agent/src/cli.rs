//! Command-line interface (clap): one subcommand per user task, as PRODUCT.md lists them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// `-V`: the version and the commit it was built from, e.g. "0.1.0 (abc1234 2026-12-06)"
/// ("unknown" without git; see build.rs).
pub const VERSION: &str = env!("SIDEKEY_VERSION");

/// `--version`: the same, and the target it was built for.
pub const LONG_VERSION: &str = concat!(env!("SIDEKEY_VERSION"), "\ntarget: ", env!("SIDEKEY_TARGET"));

/// sidekey-agent: keeps short-lived credentials alive and serves them over a Unix socket.
///
/// Exit codes: 0 ok; 1 the request was refused or failed (the message says why);
/// 2 bad usage or config.
#[derive(Debug, Parser)]
#[command(name = "sidekey-agent", version = VERSION, long_version = LONG_VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: fetch, renew and serve the configured secrets until SIGTERM/SIGINT.
    ///
    /// Logs go to stderr (RUST_LOG=debug for more; --log-format json for a log pipeline). The socket is created 0660 and removed on
    /// a graceful stop.
    Run {
        /// The agent config (TOML). Without it, the embedded config/dev.toml is used: local
        /// generated secrets, no external service.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log lines as text (for people) or json (one JSON object per line, for a log
        /// pipeline). Secret values are never logged in either.
        #[arg(long, value_enum, value_name = "FORMAT", env = "SIDEKEY_LOG_FORMAT", default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config: exit 0, or 2 with a message naming the file, key and reason.
    Check {
        /// The agent config (TOML); without it, the embedded config/dev.toml.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Read a secret from a running agent and print it as JSON, or one field raw.
    ///
    /// Example: sidekey-agent get db --field password --socket ./sidekey.sock
    Get {
        /// The secret's name ([secrets.NAME] in the agent's config).
        name: String,
        /// Print only this field of the secret's data, raw (no JSON quoting, no newline).
        #[arg(long, short, value_name = "F")]
        field: Option<String>,
        /// The agent's socket.
        #[arg(
            long,
            short,
            value_name = "PATH",
            env = "SIDEKEY_SOCKET",
            default_value = "/run/sidekey/agent.sock"
        )]
        socket: PathBuf,
    },
    /// Revoke a leaked credential through a running agent: at its issuer (the exact lease),
    /// then a fresh one is served to every client. The caller needs an [[access]] rule with
    /// `revoke = true`. A leaked value is read from stdin, never from the command line.
    ///
    /// Examples: sidekey-agent revoke --secret db
    ///           pbpaste | sidekey-agent revoke --value-stdin
    #[command(group(clap::ArgGroup::new("what").required(true).args(["secret", "value_stdin", "fingerprint"])))]
    Revoke {
        /// Revoke what this secret serves now.
        #[arg(long, value_name = "NAME")]
        secret: Option<String>,
        /// Read the leaked value from stdin (one trailing newline ignored).
        #[arg(long)]
        value_stdin: bool,
        /// Revoke the credential with this fingerprint (HMAC-SHA256 hex, as sidekey-scan reports).
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
        /// The agent's socket.
        #[arg(
            long,
            short,
            value_name = "PATH",
            env = "SIDEKEY_SOCKET",
            default_value = "/run/sidekey/agent.sock"
        )]
        socket: PathBuf,
    },
    /// Manage values in the embedded local store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Read a bearer token from stdin and print its argon2id hash for [agent] tokens.
    HashToken,
    /// Print a shell completion script to stdout.
    ///
    /// Examples: sidekey-agent completions bash > /etc/bash_completion.d/sidekey-agent
    ///           sidekey-agent completions zsh > "${fpath[1]}/_sidekey-agent"
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, or write one page per subcommand into DIR.
    ///
    /// Examples: sidekey-agent man | man -l -
    ///           sidekey-agent man --dir /usr/local/share/man/man1
    Man {
        /// Write sidekey-agent.1, sidekey-agent-run.1, ... into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Set the value of a `local.static` secret, read from stdin.
    ///
    /// A JSON object on stdin becomes the secret's data; anything else becomes
    /// {"value": "..."} (one trailing newline removed). A running agent serves the new value
    /// within its `refresh` (default 5s). Example:
    /// printf '%s' "$SMTP_PASSWORD" | sidekey-agent store set --config config/dev.toml smtp
    Set {
        /// The agent config naming the local backend.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// The secret's name; must be a `kind = "local.static"` secret in the config.
        name: String,
    },
}

/// How `run` writes its log lines (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-06T19:10:13Z  INFO target: message key=value`, coloured on a terminal.
    Text,
    /// One JSON object per line: timestamp, level, target, fields (message included), spans.
    Json,
}
