//! `sidekey-scan`: parse the command line, hand it to the library's scan plan (or install a
//! hook), and map the outcome to the exit code (0 no findings, 1 findings, 2 error, 3 part of
//! the input not scanned) in one place. Everything else is in the library ([`sidekey_scanner::plan`]).
#![forbid(unsafe_code)]

mod cli;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use sidekey_scanner::hook;
use sidekey_scanner::plan::{Options, Outcome, RevokeMode, ScanPlan};
use sidekey_scanner::report;
use sidekey_scanner::source::git::Repo;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(generated) = cli.generate() {
        return generated;
    }
    let outcome = match cli.command {
        Some(cli::Command::InstallHook { pre_push, force, extra }) => {
            install_hook(pre_push, force, &extra).map(|()| Outcome::Clean)
        }
        None => ScanPlan::from_options(&options(cli.scan)).and_then(|plan| {
            let outcome = plan.run();
            // The process ends next: freeing the compiled rules piece by piece took about a
            // tenth of a pre-commit hook's run, for memory the kernel takes back at once.
            std::mem::forget(plan);
            outcome
        }),
    };
    match outcome {
        Ok(Outcome::Found(_)) => ExitCode::from(1),
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete(n)) => {
            eprintln!(
                "sidekey-scan: incomplete: {n} part(s) of the input could not be scanned (listed above), so \
                 finding nothing there proves nothing. Fix or remove them, leave their paths out in the \
                 config's [allowlist], or pass --allow-skipped to accept an incomplete scan."
            );
            ExitCode::from(3)
        }
        Err(e) => {
            // Errors may quote the input (a path, git's or Vault's answer): each line is made
            // printable, the lines of a multi-line message (a regex error) are kept.
            let text = format!("{e:#}");
            let lines: Vec<_> = text.split('\n').map(report::printable).collect();
            eprintln!("sidekey-scan: {}", lines.join("\n"));
            ExitCode::from(2)
        }
    }
}

/// The plan's options from what the user typed.
fn options(args: cli::ScanArgs) -> Options {
    Options {
        paths: args.paths,
        exclude: args.exclude,
        explain: args.explain,
        format: args.format.into(),
        output: args.output,
        config: args.config,
        gitleaks_config: std::env::var_os("GITLEAKS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(Into::into),
        gitleaks_config_toml: std::env::var("GITLEAKS_CONFIG_TOML").ok().filter(|v| !v.is_empty()),
        baseline: args.baseline,
        no_redact: args.no_redact,
        git: args.git,
        staged: args.staged,
        pre_push: args.pre_push,
        artifact: args.artifact,
        max_member_mib: args.max_member_mib,
        max_expanded_mib: args.max_expanded_mib,
        max_depth: args.max_depth,
        verify: args.verify,
        revoke: args.revoke.map(|m| match m.as_str() {
            "dry-run" => RevokeMode::DryRun,
            _ => RevokeMode::On,
        }),
        incident_log: args.incident_log,
        agent_socket: args.agent_socket,
        vault_addr: args.vault_addr.or_else(|| from_env(&["VAULT_ADDR", "BAO_ADDR"])),
        vault_token_file: args.vault_token_file,
        vault_cacert: args.vault_cacert,
        registry: args.registry,
        fingerprint_key_file: args.fingerprint_key_file,
        aws_endpoint_url: args.aws_endpoint_url,
        no_progress: args.no_progress,
        allow_skipped: args.allow_skipped,
    }
}

/// Writes the pre-commit (or pre-push) hook into the current repository.
fn install_hook(pre_push: bool, force: bool, extra: &[String]) -> anyhow::Result<()> {
    let repo = Repo::open(Path::new("."))?;
    let kind = if pre_push {
        hook::Hook::PrePush
    } else {
        hook::Hook::PreCommit
    };
    let me = std::env::current_exe().context("cannot tell where sidekey-scan is installed")?;
    let path = hook::install(&repo.hooks_dir()?, kind, &me, extra, force)?;
    eprintln!("sidekey-scan: installed the {} hook at {}", kind.name(), path.display());
    Ok(())
}

/// The first of `vars` that is set and not empty.
fn from_env(vars: &[&str]) -> Option<String> {
    vars.iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}
