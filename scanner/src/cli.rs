//! Command-line interface (clap), as PRODUCT.md lists it.

use std::path::PathBuf;

use clap::Parser;

/// sidekey-scan: find leaked secrets in files (git history, staged changes and artifacts
/// are coming).
///
/// Exit codes: 0 no findings; 1 findings (after baseline and inline allows); 2 error.
/// A line containing `sidekey:allow` or `gitleaks:allow` is not reported.
#[derive(Debug, Parser)]
#[command(name = "sidekey-scan", version, about, long_about = None)]
pub struct Cli {
    /// Files and directories to scan (default: the current directory). Hidden files are
    /// scanned; .git/ is not.
    pub paths: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: sidekey_scanner::report::Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Extra rules (sidekey or gitleaks TOML): a rule with a built-in id replaces it.
    #[arg(long, value_name = "RULES.toml")]
    pub config: Option<PathBuf>,
    /// An earlier JSON or SARIF report: its findings are not reported again.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Show secrets in full instead of redacted.
    #[arg(long)]
    pub no_redact: bool,
    /// Scan git history (not implemented yet).
    #[arg(long, value_name = "RANGE", num_args = 0..=1, default_missing_value = "--all")]
    pub git: Option<String>,
    /// Scan what `git commit` would add (not implemented yet).
    #[arg(long)]
    pub staged: bool,
    /// Scan archives and images (not implemented yet).
    #[arg(long, value_name = "FILE")]
    pub artifact: Vec<PathBuf>,
}
