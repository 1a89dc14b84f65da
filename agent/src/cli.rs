//! Command-line interface (clap): one subcommand per user task, as docs/agent.md lists them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use nix::sys::signal::Signal;

/// Parses the command line, exiting with a usage error (2) as clap does. A Vault-style
/// single-dash long option (`-config=FILE`, `-socket PATH`) is refused with a pointer to the
/// two-dash form: clap would read it as the short option and a value (`-c onfig=FILE`, a config
/// file named "onfig=FILE").
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(message) = single_dash_long(&args[1.min(args.len())..]) {
        Cli::command()
            .error(clap::error::ErrorKind::UnknownArgument, message)
            .exit();
    }
    Cli::parse_from(args)
}

/// The message for the first argument (before `--`) that is a long option of this program
/// written with one dash, e.g. `-config=FILE`.
fn single_dash_long(args: &[std::ffi::OsString]) -> Option<String> {
    let cmd = Cli::command();
    let mut longs = Vec::new();
    collect_longs(&cmd, &mut longs);
    let args = args.iter().map(|a| a.to_string_lossy());
    for arg in args.take_while(|a| a != "--") {
        let Some(rest) = arg.strip_prefix('-').filter(|r| !r.starts_with('-')) else {
            continue;
        };
        let (name, value) = match rest.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (rest, None),
        };
        if name.len() > 1 && longs.iter().any(|l| l == name) {
            let fix = match value {
                Some(value) => format!("--{name} {value}"),
                None => format!("--{name}"),
            };
            return Some(format!(
                "unexpected argument '{arg}': long options take two dashes here; use '{fix}'"
            ));
        }
    }
    None
}

fn collect_longs(cmd: &clap::Command, out: &mut Vec<String>) {
    out.extend(cmd.get_arguments().filter_map(|a| a.get_long()).map(str::to_owned));
    for sub in cmd.get_subcommands() {
        collect_longs(sub, out);
    }
}

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
    /// Logs go to stderr (RUST_LOG=debug for more; --log-format json for a log pipeline). The
    /// socket is created 0660 once every listener is up, and removed on a graceful stop. Under
    /// systemd (Type=notify) it sends READY=1 once every secret is served and every [[file]]
    /// written, and STOPPING=1 at the stop.
    ///
    /// With --once it fetches every secret, writes every [[file]] and runs its on_change, then
    /// exits: 0 when all of it is done, 1 naming each secret or file that is not, within
    /// --timeout. It binds no socket and no port, so nothing is left behind: for init
    /// containers and batch jobs.
    ///
    /// Examples: sidekey-agent run --config /etc/sidekey/agent.toml
    ///           sidekey-agent run --once --timeout 2m --config /etc/sidekey/init.toml
    #[command(verbatim_doc_comment)]
    Run {
        /// The agent config (TOML). Without it, the embedded config/dev.toml is used (local
        /// generated secrets, no external service), with a warning: not for production.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log lines as text (for people) or json (one JSON object per line, for a log
        /// pipeline). Secret values are never logged in either.
        #[arg(long, value_enum, value_name = "FORMAT", env = "SIDEKEY_LOG_FORMAT", default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Fetch every secret, write every [[file]], run each on_change, then exit (0, or 1
        /// naming what failed). Binds no socket and no TCP port; revoke_on_exit does not apply.
        #[arg(long)]
        once: bool,
        /// With --once: how long to wait for everything (e.g. 90s, 5m) before exiting 1 with
        /// each secret or file still missing and why. A file whose template or on_change
        /// fails exits 1 at once.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, requires = "once")]
        timeout: Duration,
    },
    /// Validate a config: exit 0, or 2 with a message naming the file, key and reason.
    ///
    /// By default it also checks what `run` needs on this machine: the files, directories and
    /// group the config names. `--portable` checks the text only (keys, types, values,
    /// references), for a config written for another host.
    ///
    /// Examples: sidekey-agent check --config /etc/sidekey/agent.toml
    ///           sidekey-agent check --portable --config config/agent.example.toml
    Check {
        /// The agent config (TOML); without it, the embedded config/dev.toml.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check the text only: not the files, directories and groups it names on this machine.
        #[arg(long)]
        portable: bool,
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
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Ask a running agent whether it is healthy: exit 0 when every secret is served and every
    /// [[file]] written; 1 when it is degraded, refuses, or does not answer, with one line
    /// saying why (the failing secrets and files, or "no agent at PATH: connection refused").
    ///
    /// For Kubernetes exec readiness probes, systemd and scripts. One GET /v1/health on the
    /// socket: the caller needs an [[access]] rule, as for any route. For a liveness probe,
    /// GET /ping on the TCP listener (no token) says the server is up; restarting an agent
    /// does not end a Vault outage.
    ///
    /// Examples: sidekey-agent health --socket /run/sidekey/agent.sock
    ///           until sidekey-agent health; do sleep 1; done
    #[command(verbatim_doc_comment)]
    Health {
        #[command(flatten)]
        socket: SocketArg,
        /// Give up after this long (e.g. 200ms, 2s). The agent answers from memory in well
        /// under a millisecond; the default stays below Kubernetes' default probe timeout
        /// (1s), so a probe shows this command's reason rather than a kill.
        #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
        timeout: Duration,
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
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Run a command with secrets in its environment, and restart it when they change.
    ///
    /// For apps that read credentials from environment variables and cannot call the socket:
    /// exec reads each secret from a running agent, starts COMMAND directly (no shell) with
    /// the variables set, then long-polls the agent for new versions. The values go only into
    /// COMMAND's environment, never into exec's output or any command line.
    ///
    /// --env VAR=SECRET.FIELD sets VAR to one field of the secret's data; VAR=SECRET to the
    /// secret's value: its only field, else its "value" field, else the whole data as JSON.
    /// A secret whose name has dots is matched whole before a field is split off.
    ///
    /// When a value COMMAND was given changes (--on-change):
    ///   restart      SIGTERM, up to --grace for it to exit, SIGKILL, start it again with the
    ///                new values (the default)
    ///   signal=SIG   send SIG (signal=HUP, signal=SIGUSR1) and keep it running: its
    ///                environment keeps the old values, so it must re-read them another way
    ///   none         start it and watch nothing
    ///
    /// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to exec are passed on.
    /// COMMAND gets a process group of its own: the stop signals (TERM, INT, QUIT, KILL) go to
    /// the whole group, so a wrapper script's children stop with it; others to COMMAND alone.
    /// On a terminal it shares exec's group instead and keeps the terminal. If the agent goes
    /// away, COMMAND keeps its values; exec retries (1 s doubling to 30 s) and says so once.
    ///
    /// Exit: COMMAND's own status (128+N when killed by signal N); 1 when a secret, a field or
    /// the agent is missing or refused (COMMAND is not started); 126 or 127 when COMMAND
    /// cannot be run.
    ///
    /// Examples: sidekey-agent exec --env DATABASE_PASSWORD=db.password -- ./server --port 8080
    ///           sidekey-agent exec -e PGUSER=db.username -e PGPASSWORD=db.password \
    ///               --grace 30s --socket /run/sidekey/agent.sock -- ./worker
    ///           sidekey-agent exec -e KEY=session-key -s sidekey-dev.sock -- sh -c 'echo ${#KEY}'
    #[command(verbatim_doc_comment)]
    Exec {
        /// Set VAR from a secret: VAR=SECRET or VAR=SECRET.FIELD. Repeat for more variables.
        #[arg(long = "env", short = 'e', value_name = "VAR=SECRET[.FIELD]", required = true, value_parser = parse_env)]
        env: Vec<EnvArg>,
        /// What a new value of a secret COMMAND uses does: restart, signal=SIG or none.
        #[arg(long, value_name = "ACTION", default_value = "restart", value_parser = parse_on_change)]
        on_change: OnChange,
        /// How long a restart waits for COMMAND to exit after SIGTERM before SIGKILL.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        grace: Duration,
        #[command(flatten)]
        socket: SocketArg,
        /// The command and its arguments, after `--`; run directly, without a shell.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Print an aws.sts secret as AWS `credential_process` JSON, for the AWS CLI and SDKs.
    ///
    /// In an AWS config file (~/.aws/config, or AWS_CONFIG_FILE):
    ///   [profile deploy]
    ///   credential_process = sidekey-agent aws-credential-process deploy --socket /run/sidekey/agent.sock
    ///
    /// Prints {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    /// with the session's expiry (RFC 3339), so the SDK runs it again before the session ends.
    /// A secret whose data lacks access_key_id, secret_access_key or session_token exits 1
    /// naming the missing fields; a refusal or an unreachable agent exits 1 saying so.
    ///
    /// Example: AWS_PROFILE=deploy aws sts get-caller-identity
    #[command(verbatim_doc_comment)]
    AwsCredentialProcess {
        /// The aws.sts secret's name ([secrets.NAME] in the agent's config).
        name: String,
        #[command(flatten)]
        socket: SocketArg,
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
    /// within its `refresh` (default 5s).
    ///
    /// Example (config/agent.example.toml defines smtp as a local.static secret):
    ///   printf '%s' "$SMTP_PASSWORD" | sidekey-agent store set -c config/agent.example.toml smtp
    #[command(verbatim_doc_comment)]
    Set {
        /// The agent config naming the local backend.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// The secret's name; must be a `kind = "local.static"` secret in the config.
        name: String,
    },
}

/// The agent's socket, as every client command takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct SocketArg {
    /// The agent's socket.
    #[arg(long, short, value_name = "PATH", env = "SIDEKEY_SOCKET", default_value = sidekey_client::DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

/// One `exec --env VAR=SPEC` as typed: the variable, and the secret (and field) naming its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvArg {
    /// The variable's name: letters, digits and `_`, not starting with a digit.
    pub var: String,
    /// `SECRET` or `SECRET.FIELD`; which it is depends on the agent's names (see `cmd::exec`).
    pub spec: String,
}

fn parse_env(text: &str) -> Result<EnvArg, String> {
    let (var, spec) = text.split_once('=').ok_or("expected VAR=SECRET or VAR=SECRET.FIELD")?;
    let mut chars = var.chars();
    let named = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !named {
        return Err(format!(
            "{var:?} is not a variable name (letters, digits and '_', not starting with a digit)"
        ));
    }
    if spec.is_empty() {
        return Err(format!("{var}= names no secret"));
    }
    Ok(EnvArg {
        var: var.to_owned(),
        spec: spec.to_owned(),
    })
}

/// `exec --on-change`: what a new value of a secret the command uses does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Stop it (SIGTERM, then SIGKILL after the grace) and start it again with the new values.
    Restart,
    /// Send it this signal and leave it running.
    Signal(Signal),
    /// Nothing: the command is started and nothing is watched.
    None,
}

fn parse_on_change(text: &str) -> Result<OnChange, String> {
    match text {
        "restart" => Ok(OnChange::Restart),
        "none" => Ok(OnChange::None),
        _ => match text.strip_prefix("signal=") {
            Some(name) => parse_signal(name).map(OnChange::Signal),
            None => Err("expected restart, signal=SIG (e.g. signal=HUP) or none".into()),
        },
    }
}

/// `HUP`, `hup`, `SIGHUP`: a signal by name, with or without its `SIG`.
fn parse_signal(name: &str) -> Result<Signal, String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse()
        .map_err(|_| format!("{name:?} is not a signal name (e.g. HUP, SIGUSR1)"))
}

/// A duration as the config writes them: `500ms`, `90s`, `5m`, `1h 30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 500ms, 90s, 5m)"))?;
    if duration.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(duration)
}

/// How `run` writes its log lines (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-06T19:10:13Z  INFO target: message key=value`, coloured on a terminal.
    Text,
    /// One JSON object per line: timestamp, level, target, fields (message included), spans.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Option<String> {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        single_dash_long(&args)
    }

    #[test]
    fn vault_style_single_dash_options_get_the_two_dash_form() {
        let msg = check(&["run", "-config=/etc/sidekey/agent.toml"]).unwrap();
        assert!(msg.contains("'--config /etc/sidekey/agent.toml'"), "{msg}");
        let msg = check(&["get", "db", "-socket", "/run/s.sock"]).unwrap();
        assert!(msg.contains("'--socket'"), "{msg}");
        assert!(check(&["revoke", "-secret", "db"]).is_some());
    }

    #[test]
    fn short_options_and_operands_pass() {
        assert_eq!(check(&["run", "-c", "agent.toml"]), None);
        assert_eq!(check(&["get", "db", "-f", "password", "-s", "/run/s.sock"]), None);
        assert_eq!(check(&["get", "-", "--", "-config"]), None);
        assert_eq!(check(&["check", "--config=agent.toml"]), None);
    }

    #[test]
    fn exec_env_takes_a_variable_name_and_a_secret() {
        let arg = parse_env("PGPASSWORD=db.password").unwrap();
        assert_eq!((arg.var.as_str(), arg.spec.as_str()), ("PGPASSWORD", "db.password"));
        assert_eq!(parse_env("_x1=s").unwrap().var, "_x1");
        for bad in ["PGPASSWORD", "1X=db", "A-B=db", "=db", "X="] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exec_on_change_names_signals_with_or_without_sig() {
        assert_eq!(parse_on_change("restart"), Ok(OnChange::Restart));
        assert_eq!(parse_on_change("none"), Ok(OnChange::None));
        assert_eq!(parse_on_change("signal=HUP"), Ok(OnChange::Signal(Signal::SIGHUP)));
        assert_eq!(parse_on_change("signal=SIGUSR1"), Ok(OnChange::Signal(Signal::SIGUSR1)));
        assert_eq!(parse_on_change("signal=usr2"), Ok(OnChange::Signal(Signal::SIGUSR2)));
        assert!(parse_on_change("signal=FOO").unwrap_err().contains("\"FOO\""));
        assert!(parse_on_change("reload").is_err());
    }

    #[test]
    fn every_client_command_takes_the_same_socket_option() {
        let cmd = Cli::command();
        for name in ["get", "health", "revoke", "exec", "aws-credential-process"] {
            let sub = cmd.find_subcommand(name).unwrap();
            let socket = sub.get_arguments().find(|a| a.get_id() == "socket").unwrap();
            assert_eq!(socket.get_short(), Some('s'), "{name}");
            assert_eq!(
                socket.get_env().and_then(|e| e.to_str()),
                Some("SIDEKEY_SOCKET"),
                "{name}"
            );
            let default: Vec<_> = socket
                .get_default_values()
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(default, [sidekey_client::DEFAULT_SOCKET], "{name}");
        }
    }
}
