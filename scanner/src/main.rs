//! `sidekey-scan`: parse the command line, scan, report, and map the outcome to the exit code
//! (0 no findings, 1 findings, 2 error) in one place.
#![forbid(unsafe_code)]

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use sidekey::SecretString;
use sidekey_scanner::engine::Engine;
use sidekey_scanner::finding::Finding;
use sidekey_scanner::{allow, report, rules, source};

fn main() -> ExitCode {
    match run(cli::Cli::parse()) {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sidekey-scan: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Scans; answers whether anything was found.
fn run(cli: cli::Cli) -> anyhow::Result<bool> {
    if cli.git.is_some() || cli.staged || !cli.artifact.is_empty() {
        anyhow::bail!("--git, --staged and --artifact are not implemented in this version yet; scan paths for now");
    }
    let engine = Engine::new(load_rules(cli.config.as_deref())?);
    let known = match &cli.baseline {
        Some(path) => allow::baseline(path)?,
        None => Default::default(),
    };
    let roots = if cli.paths.is_empty() {
        vec![".".into()]
    } else {
        cli.paths.clone()
    };
    for root in &roots {
        std::fs::metadata(root).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", root.display()))?;
    }
    let found = Mutex::new(Vec::new());
    let skipped = source::files::walk(&roots, &|path, bytes| {
        let mut here: Vec<Finding> = engine
            .scan(bytes, Some(path))
            .into_iter()
            .filter(|m| !allow::inline(bytes, m.secret.start))
            .map(|m| {
                let secret = SecretString::from(String::from_utf8_lossy(&bytes[m.secret.clone()]).into_owned());
                Finding::new(&engine.rules()[m.rule], path.to_owned(), m.line, m.column, secret)
            })
            .filter(|f| !known.contains(&f.fingerprint))
            .collect();
        found.lock().expect("never poisoned").append(&mut here);
    });
    let mut findings = found.into_inner().expect("never poisoned");
    findings.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));

    let mut out: Box<dyn std::io::Write> = match &cli.output {
        Some(path) => Box::new(
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: cannot write report: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let colour = cli.output.is_none() && std::io::stdout().is_terminal();
    report::write(&mut out, cli.format, &findings, &skipped, cli.no_redact, colour)?;
    for s in &skipped {
        if cli.format != report::Format::Human || cli.output.is_some() {
            eprintln!("sidekey-scan: skipped {}: {}", s.path, s.reason);
        }
    }
    Ok(!findings.is_empty())
}

/// The built-in rules plus those of `--config`: a rule with a built-in id replaces it, others
/// are added (gitleaks' `[extend] useDefault = true` reads the same way).
fn load_rules(config: Option<&std::path::Path>) -> anyhow::Result<Vec<rules::Rule>> {
    let mut all = rules::builtin();
    if let Some(path) = config {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read rules: {e}", path.display()))?;
        let (_, extra) = rules::parse(&path.display().to_string(), &text)?;
        for rule in extra {
            match all.iter().position(|r| r.id == rule.id) {
                Some(i) => all[i] = rule,
                None => all.push(rule),
            }
        }
    }
    Ok(all)
}
