//! `sidekey-scan`: parse the command line, pick the source, scan, report, and map the outcome
//! to the exit code (0 no findings, 1 findings, 2 error) in one place.
#![forbid(unsafe_code)]

mod cli;

use std::collections::HashSet;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use sidekey_scanner::engine::Engine;
use sidekey_scanner::scan::Scan;
use sidekey_scanner::source::git::Repo;
use sidekey_scanner::source::{self, files, Limits, Sink};
use sidekey_scanner::{allow, hook, report, rules};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(generated) = cli.generate() {
        return generated;
    }
    let outcome = match cli.command {
        Some(cli::Command::InstallHook { pre_push, force, extra }) => {
            install_hook(pre_push, force, &extra).map(|()| false)
        }
        None => scan(&cli.scan),
    };
    match outcome {
        Ok(true) => ExitCode::from(1),
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sidekey-scan: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Scans; answers whether anything was found.
fn scan(args: &cli::ScanArgs) -> anyhow::Result<bool> {
    let engine = Engine::new(load_rules(args.config.as_deref())?);
    let mut known = match &args.baseline {
        Some(path) => allow::baseline(path)?,
        None => HashSet::new(),
    };
    let owned = owned(args)?;
    let limits = Limits {
        max_member: args.max_member_mib.saturating_mul(1024 * 1024),
        max_expanded: args.max_expanded_mib.saturating_mul(1024 * 1024),
        max_depth: args.max_depth,
    };
    let cwd = PathBuf::from(".");

    let (findings, skipped) = if let Some(range) = &args.git {
        let repo = Repo::open(&cwd)?;
        let revs: Vec<String> = range.split_whitespace().map(str::to_owned).collect();
        run(&engine, owned.as_ref(), known, args, |scan| {
            repo.history(&revs, scan, &limits)
        })?
    } else if let Some(remote) = &args.pre_push {
        let repo = Repo::open(&cwd)?;
        let mut lines = String::new();
        std::io::stdin()
            .read_to_string(&mut lines)
            .context("reading the pre-push refs from stdin")?;
        let revs = repo.pre_push_revs(Some(remote.as_str()).filter(|r| !r.is_empty()), &lines)?;
        if revs.is_empty() {
            return Ok(false);
        }
        run(&engine, owned.as_ref(), known, args, |scan| {
            repo.history(&revs, scan, &limits)
        })?
    } else if args.staged {
        let repo = Repo::open(&cwd)?;
        let changes = repo.staged()?;
        let ids: Vec<&str> = changes
            .iter()
            .flat_map(|c| std::iter::once(c.new.as_str()).chain(c.old.as_deref()))
            .collect();
        let blobs = repo.blobs(&ids)?;
        let mut blobs = ids
            .iter()
            .copied()
            .zip(blobs)
            .collect::<std::collections::HashMap<_, _>>();
        // Secrets the file already held at HEAD are not this commit's doing.
        let (before, _) = run(&engine, None, HashSet::new(), args, |scan| {
            for c in &changes {
                if let Some(old) = c.old.as_deref().and_then(|id| blobs.get(id)) {
                    blob(&c.path, old, scan, &limits);
                }
            }
            Ok(())
        })?;
        known.extend(before.into_iter().map(|f| f.fingerprint));
        run(&engine, owned.as_ref(), known, args, |scan| {
            for c in &changes {
                if let Some(new) = blobs.remove(c.new.as_str()) {
                    blob(&c.path, &new, scan, &limits);
                }
            }
            Ok(())
        })?
    } else if !args.artifact.is_empty() {
        for path in &args.artifact {
            artifact_check(path)?;
        }
        run(&engine, owned.as_ref(), known, args, |scan| {
            files::walk(&args.artifact, scan, &limits);
            Ok(())
        })?
    } else {
        let roots = if args.paths.is_empty() {
            vec![cwd]
        } else {
            args.paths.clone()
        };
        for root in &roots {
            std::fs::metadata(root).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", root.display()))?;
        }
        run(&engine, owned.as_ref(), known, args, |scan| {
            files::walk(&roots, scan, &limits);
            Ok(())
        })?
    };

    let (mut findings, skipped) = (findings, skipped);
    // Liveness at the issuers (AWS STS, Vault lookup-self): only when asked.
    let issuers = sidekey_scanner::verify::Options {
        aws_endpoint_url: args.aws_endpoint_url.clone(),
        vault_addr: args.vault_addr.clone(),
    };
    let live = args
        .verify
        .then(|| sidekey_scanner::verify::check(&mut findings, &issuers));
    // Owned credentials are revoked through the agent, else at Vault with the operator's token.
    let vault = match (&args.revoke, &owned, &args.agent_socket, &args.vault_addr) {
        (Some(_), Some(_), None, Some(addr)) => Some(sidekey_scanner::registry::Vault::new(
            addr,
            args.vault_token_file.as_deref(),
        )?),
        _ => None,
    };
    let via = match (&args.agent_socket, &vault) {
        (Some(socket), _) => Some(sidekey_scanner::response::Via::Agent(socket)),
        (None, Some(vault)) => Some(sidekey_scanner::response::Via::Vault(vault)),
        (None, None) => None,
    };
    if let (Some(mode), Some(owned), Some(via)) = (&args.revoke, &owned, via) {
        let mut log = incident_log(args.incident_log.as_deref())?;
        sidekey_scanner::response::revoke_owned(&mut findings, owned, via, mode == "dry-run", &mut log)?;
    }
    if let (Some(mode), Some(live)) = (&args.revoke, &live) {
        let mut log = incident_log(args.incident_log.as_deref())?;
        sidekey_scanner::response::revoke_live(&mut findings, live, &issuers, mode == "dry-run", &mut log)?;
    }
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: cannot write report: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let colour = args.output.is_none() && std::io::stdout().is_terminal();
    report::write(&mut out, args.format, &findings, &skipped, args.no_redact, colour)?;
    if args.format != report::Format::Human || args.output.is_some() {
        for s in &skipped {
            eprintln!("sidekey-scan: skipped {}: {}", s.path, s.reason);
        }
    }
    Ok(!findings.is_empty())
}

/// Where incident lines go: appended to `path`, else stderr.
fn incident_log(path: Option<&Path>) -> anyhow::Result<Box<dyn std::io::Write>> {
    Ok(match path {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot write incidents: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stderr().lock()),
    })
}

type Outcome = (Vec<sidekey_scanner::finding::Finding>, Vec<source::Skipped>);

/// Runs `feed` into a new scan (with a progress line on a terminal) and answers its results.
fn run<'e>(
    engine: &'e Engine,
    owned: Option<&'e sidekey_scanner::owned::Owned>,
    known: HashSet<String>,
    args: &cli::ScanArgs,
    feed: impl FnOnce(&Scan<'e>) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let mut scan = Scan::new(engine, known);
    if let Some(owned) = owned {
        scan = scan.with_owned(owned);
    }
    let show = !args.no_progress && std::io::stderr().is_terminal();
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        if show {
            s.spawn(|| progress(&scan.scanned, &done));
        }
        let fed = feed(&scan);
        done.store(1, Ordering::Relaxed);
        fed
    })?;
    Ok(scan.finish())
}

/// The broker's fingerprint set, when `--verify` has a source for it.
fn owned(args: &cli::ScanArgs) -> anyhow::Result<Option<sidekey_scanner::owned::Owned>> {
    if !args.verify {
        if args.agent_socket.is_some() {
            anyhow::bail!("--agent-socket is used by --verify; add --verify");
        }
        return Ok(None);
    }
    let Some(key_file) = args.fingerprint_key_file.as_deref() else {
        if args.agent_socket.is_some() {
            anyhow::bail!("--agent-socket needs --fingerprint-key-file");
        }
        return Ok(None); // no fingerprint source: other checks only
    };
    let key = sidekey::fingerprint::FingerprintKey::load(key_file)
        .map_err(|e| anyhow::anyhow!("--fingerprint-key-file {e}"))?;
    match (&args.agent_socket, &args.vault_addr) {
        (Some(socket), _) => sidekey_scanner::owned::Owned::from_agent(socket, key).map(Some),
        (None, Some(addr)) => {
            let vault = sidekey_scanner::registry::Vault::new(addr, args.vault_token_file.as_deref())?;
            sidekey_scanner::owned::Owned::from_vault(&vault, &args.registry, key).map(Some)
        }
        (None, None) => anyhow::bail!(
            "--fingerprint-key-file needs a fingerprint source: --agent-socket or --vault-addr (the published registry)"
        ),
    }
}

/// A progress line on stderr: bytes scanned and the rate, until `done`.
fn progress(scanned: &AtomicU64, done: &AtomicU64) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} scanning: {msg} ({elapsed})")
            .expect("the template is valid"),
    );
    let start = std::time::Instant::now();
    while done.load(Ordering::Relaxed) == 0 {
        let bytes = scanned.load(Ordering::Relaxed);
        let rate = bytes as f64 / start.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{} MiB at {:.0} MiB/s",
            bytes / (1024 * 1024),
            rate / (1024.0 * 1024.0)
        ));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// Scans one git blob held in memory.
fn blob(path: &str, bytes: &[u8], sink: &dyn Sink, limits: &Limits) {
    let budget = AtomicU64::new(limits.max_expanded);
    let ctx = source::Ctx {
        sink,
        limits,
        commit: None,
        depth: 0,
        budget: &budget,
    };
    source::dispatch_bytes(path, bytes, &ctx);
}

/// An `--artifact` must exist and, when it is a file, be an archive sidekey can open.
fn artifact_check(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if meta.is_dir() {
        return Ok(());
    }
    let mut head = vec![0u8; source::SNIFF_LEN];
    let mut file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let n = file
        .read(&mut head)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    match source::sniff(&head[..n]) {
        source::Kind::Zip | source::Kind::Tar | source::Kind::Gzip | source::Kind::Zstd => Ok(()),
        _ => anyhow::bail!(
            "{}: not an archive sidekey can open (zip/jar/whl/apk, tar, tar.gz, tar.zst, or an image directory); \
             scan plain files without --artifact",
            path.display()
        ),
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

/// The built-in rules plus those of `--config`: a rule with a built-in id replaces it, others
/// are added (gitleaks' `[extend] useDefault = true` reads the same way).
fn load_rules(config: Option<&Path>) -> anyhow::Result<Vec<rules::Rule>> {
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
