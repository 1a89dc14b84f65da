//! Command-line interface (clap), as docs/scanner.md ("Commands") lists it.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `-V`: the version and the commit it was built from, e.g. "0.1.0 (abc1234 2026-12-06)"
/// ("unknown" without git; see build.rs).
pub const VERSION: &str = env!("SIDEKEY_VERSION");

/// `--version`: the same, and the target it was built for.
pub const LONG_VERSION: &str = concat!(env!("SIDEKEY_VERSION"), "\ntarget: ", env!("SIDEKEY_TARGET"));

/// sidekey-scan: find leaked secrets in files, git history, staged changes, archives and
/// container images.
///
/// Examples:
///   sidekey-scan                      scan the current directory (archives inside are opened)
///   sidekey-scan --git                every blob in the history of every ref, each once
///   sidekey-scan --git origin/main..  what this branch adds
///   sidekey-scan --staged             what `git commit` would add (the pre-commit hook)
///   sidekey-scan --artifact app.jar image.tar
///   sidekey-scan install-hook         refuse commits that add secrets
///   sidekey-scan --completions bash   a shell completion script (--man: the manual page)
///
/// Exit codes: 0 no findings; 1 findings (after baseline and inline allows); 2 error;
/// 3 no findings, but part of the input could not be scanned (see --allow-skipped).
/// A line containing `sidekey:allow` or `gitleaks:allow` is not reported.
#[derive(Debug, Parser)]
#[command(name = "sidekey-scan", version = VERSION, long_version = LONG_VERSION, about, long_about, verbatim_doc_comment)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Print a shell completion script to stdout and exit. A flag, not a subcommand, so that
    /// `sidekey-scan completions` still scans a directory of that name.
    #[arg(long, value_enum, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print the manual page (roff) to stdout and exit, e.g. `sidekey-scan --man | man -l -`.
    #[arg(long, exclusive = true)]
    pub man: bool,
}

impl Cli {
    /// Prints what `--completions` or `--man` asked for and answers the exit code; `None` when
    /// neither was given (the scan or subcommand runs).
    pub fn generate(&self) -> Option<std::process::ExitCode> {
        use clap::CommandFactory as _;
        let mut text = Vec::new();
        if let Some(shell) = self.completions {
            // Into memory first: clap_complete panics on a write error such as a closed pipe.
            clap_complete::generate(shell, &mut Cli::command(), "sidekey-scan", &mut text);
        } else if self.man {
            clap_mangen::Man::new(Cli::command())
                .date(env!("SIDEKEY_COMMIT_DATE"))
                .render(&mut text)
                .expect("rendering into memory cannot fail");
        } else {
            return None;
        }
        let mut out = std::io::stdout().lock();
        Some(match out.write_all(&text).and_then(|()| out.flush()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sidekey-scan: writing to stdout: {e}");
                std::process::ExitCode::from(2)
            }
        })
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a git hook into the current repository that runs sidekey-scan: pre-commit
    /// (`--staged`) by default, or pre-push.
    InstallHook {
        /// Install the pre-push hook (scans the commits being pushed) instead.
        #[arg(long)]
        pre_push: bool,
        /// Replace a hook that sidekey did not write (it is kept as HOOK.sidekey-backup).
        #[arg(long)]
        force: bool,
        /// More sidekey-scan options for the hook to pass, after `--`; e.g.
        /// `-- --verify --revoke --agent-socket /run/sidekey/agent.sock --fingerprint-key-file /etc/sidekey/fp.key`.
        #[arg(last = true, value_name = "OPTION")]
        extra: Vec<String>,
    },
}

/// What to scan and how to report it.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan (default: the current directory). Hidden files are
    /// scanned, .gitignore is not honoured, .git/ is skipped; archives are opened. `-` (or
    /// /dev/stdin) scans standard input.
    pub paths: Vec<PathBuf>,
    /// Leave out paths matching GLOB (gitignore syntax: `vendor/`, `*.min.js`, `docs/**/*.md`),
    /// in every mode; repeatable. Patterns in `.sidekeyignore` at the scan's root (the
    /// repository, or the one directory scanned) are added.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Say on stderr why each candidate a rule matched was not reported: entropy, checksum,
    /// an allowlist (placeholders, examples, references), a test vector, vendored code. The
    /// candidate is shown by its first four characters only.
    #[arg(long)]
    pub explain: bool,
    /// Report format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The rules config (sidekey or gitleaks TOML; see docs/scanner.md, "gitleaks
    /// compatibility"). Without `[extend] useDefault = true` its rules replace the built-in
    /// ones. Default: GITLEAKS_CONFIG (a path), else GITLEAKS_CONFIG_TOML (the text), else
    /// `.gitleaks.toml` at the root of the scan (the repository, or the one directory scanned);
    /// `.gitleaksignore` there is honoured too.
    #[arg(long, value_name = "RULES.toml")]
    pub config: Option<PathBuf>,
    /// An earlier JSON or SARIF report: its findings are not reported again.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Show secrets in full instead of redacted.
    #[arg(long)]
    pub no_redact: bool,
    /// Scan git history: every blob reachable from RANGE (default: all refs) once, attributed
    /// to the commit that introduced it, and the commit messages. RANGE is what `git log`
    /// takes, e.g. `origin/main..HEAD`; several revisions are separated by spaces.
    #[arg(long, value_name = "RANGE", num_args = 0..=1, default_missing_value = "--all",
          conflicts_with_all = ["staged", "pre_push", "artifact", "paths"])]
    pub git: Option<String>,
    /// Scan what `git commit` would add: staged blobs, minus secrets already in HEAD.
    #[arg(long, conflicts_with_all = ["pre_push", "artifact", "paths"])]
    pub staged: bool,
    /// Scan what `git push` would send, reading the pre-push hook's stdin
    /// (`<local ref> <local sha> <remote ref> <remote sha>` lines). REMOTE is the hook's first
    /// argument.
    #[arg(long, value_name = "REMOTE", num_args = 0..=1, default_missing_value = "",
          conflicts_with_all = ["artifact", "paths"])]
    pub pre_push: Option<String>,
    /// Archives and images to scan: zip/jar/whl/apk, tar/tar.gz/tgz/tar.zst, `docker save`
    /// tarballs and OCI image layouts (directories too). Nested archives are reported as A!B!C.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub artifact: Vec<PathBuf>,
    /// Largest archive member opened, in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 256)]
    pub max_member_mib: u64,
    /// Most bytes one archive may expand to, all members and nesting together, in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 4096)]
    pub max_expanded_mib: u64,
    /// Deepest nesting of archives within archives.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_depth: usize,
    /// Check which findings are live. With a fingerprint source (--agent-socket and
    /// --fingerprint-key-file) every token-like string is fingerprinted and matched against the
    /// broker's set, fetched once: a credential the broker issued is reported with
    /// `owned_secret` and `verified = true` even when no rule recognises it. No value leaves
    /// this process. A leaked AWS access key id and secret access key in the same file are
    /// tried with STS GetCallerIdentity (see --aws-endpoint-url); Vault tokens with lookup-self
    /// at --vault-addr. Nothing is sent anywhere without --verify.
    #[arg(long)]
    pub verify: bool,
    /// Revoke what --verify proved to be the broker's, through the agent (the exact lease at
    /// its issuer; every client gets a fresh credential), and what it proved live otherwise: an
    /// AWS access key is deactivated through IAM (its user from GetAccessKeyLastUsed, with the
    /// operator's credentials), a Vault token revokes itself. `--revoke=dry-run` only says what
    /// it would do. Each action is written as an incident (JSON line) to --incident-log or stderr.
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "on", require_equals = true,
          value_parser = ["on", "dry-run"], requires = "verify")]
    pub revoke: Option<String>,
    /// Append incident records (JSON lines: what, where found, what was done, when; never the
    /// value) to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub incident_log: Option<PathBuf>,
    /// The sidekey-agent socket whose fingerprint set --verify matches against.
    #[arg(long, value_name = "PATH", requires = "fingerprint_key_file")]
    pub agent_socket: Option<PathBuf>,
    /// Vault/OpenBao address: --verify reads the agents' published fingerprint registry there
    /// (see --registry) and checks leaked Vault tokens; --revoke revokes owned leases there when
    /// no agent socket is given. Default: VAULT_ADDR, else BAO_ADDR. The token comes from
    /// --vault-token-file, else VAULT_TOKEN or BAO_TOKEN; VAULT_NAMESPACE (or BAO_NAMESPACE)
    /// names the namespace every call goes to.
    #[arg(long, value_name = "URL")]
    pub vault_addr: Option<String>,
    /// A file holding the Vault token for --vault-addr.
    #[arg(long, value_name = "FILE")]
    pub vault_token_file: Option<PathBuf>,
    /// Vault's CA certificate(s), PEM, trusted besides the system's roots (a private CA);
    /// default: VAULT_CACERT, else BAO_CACERT.
    #[arg(long, value_name = "FILE")]
    pub vault_cacert: Option<PathBuf>,
    /// Where agents publish their fingerprints: KV v2 MOUNT/PATH (each agent writes PATH/NAME).
    #[arg(long, value_name = "MOUNT/PATH", default_value = "secret/sidekey/registry")]
    pub registry: String,
    /// The HMAC key the agent fingerprints with (its `fingerprint_key_file`).
    #[arg(long, value_name = "FILE")]
    pub fingerprint_key_file: Option<PathBuf>,
    /// AWS endpoint for --verify (STS GetCallerIdentity with a leaked key pair) and --revoke
    /// (IAM, with the operator's credentials from the standard chain): an emulator or a VPC
    /// endpoint instead of AWS.
    #[arg(long, value_name = "URL", requires = "verify")]
    pub aws_endpoint_url: Option<String>,
    /// No progress line on stderr (it is only shown when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Exit 0 when nothing was found even though part of the input could not be scanned (an
    /// unreadable file, a FIFO or device, an archive cut by a limit, a corrupt archive). By
    /// default such a scan exits 3: a gate must not pass on input it never read.
    #[arg(long)]
    pub allow_skipped: bool,
}

/// Report formats (the library's `report::Format`, named for clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable lines, secrets redacted.
    Human,
    /// `{"findings": [...], "skipped": [...]}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

impl From<Format> for sidekey_scanner::report::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Human => Self::Human,
            Format::Json => Self::Json,
            Format::Sarif => Self::Sarif,
        }
    }
}
