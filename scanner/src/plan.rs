//! The scan plan: what the user asked for ([`Options`], plain values the binary fills from its
//! command line) checked once and turned into the objects a scan runs with — the engine, the
//! baseline, the broker's fingerprint set, the [`Mode`], the archive limits, the liveness and
//! revocation settings and the report's form ([`ScanPlan`]). [`ScanPlan::run`] then scans,
//! verifies, revokes and reports, and answers an [`Outcome`]; the binary maps it to the exit
//! code.
//!
//! Invariants: every combination of options is checked in [`ScanPlan::from_options`], before
//! anything is read or sent (the broker's set is fetched there, once); nothing here knows the
//! command-line parser. Nothing reaches an issuer, the agent or Vault without `--verify`.

use std::collections::HashSet;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::engine::Engine;
use crate::finding::Finding;
use crate::issuer::vault::Vault;
use crate::owned::Owned;
use crate::report::{self, Format};
use crate::scan::Scan;
use crate::source::git::{self, Repo, Revs};
use crate::source::{self, files, Limits, Sink, Skipped};
use crate::{allow, response, rules, verify};

/// What the user asked for, as typed (the binary fills it from its command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// Files and directories to scan (default: the current directory); `-` is stdin.
    pub paths: Vec<PathBuf>,
    /// `--exclude` globs (gitignore syntax).
    pub exclude: Vec<String>,
    /// `--explain`: why candidates were dropped, on stderr.
    pub explain: bool,
    /// Report format.
    pub format: Format,
    /// Write the report here instead of stdout.
    pub output: Option<PathBuf>,
    /// The rules config (sidekey or gitleaks TOML), `--config`.
    pub config: Option<PathBuf>,
    /// `GITLEAKS_CONFIG`: the config's path when there is no `--config`.
    pub gitleaks_config: Option<PathBuf>,
    /// `GITLEAKS_CONFIG_TOML`: the config's text when there is neither.
    pub gitleaks_config_toml: Option<String>,
    /// An earlier JSON or SARIF report whose findings are not reported again.
    pub baseline: Option<PathBuf>,
    /// Show secrets in full.
    pub no_redact: bool,
    /// `--git [RANGE]`: the revisions, space-separated (`--all` for every ref).
    pub git: Option<String>,
    /// `--staged`.
    pub staged: bool,
    /// `--pre-push [REMOTE]` (empty: no remote named).
    pub pre_push: Option<String>,
    /// `--artifact FILE...`.
    pub artifact: Vec<PathBuf>,
    /// Largest archive member opened, in MiB.
    pub max_member_mib: u64,
    /// Most bytes one archive may expand to, in MiB.
    pub max_expanded_mib: u64,
    /// Deepest nesting of archives.
    pub max_depth: usize,
    /// `--verify`.
    pub verify: bool,
    /// `--revoke[=dry-run]`.
    pub revoke: Option<RevokeMode>,
    /// Append incident records here instead of stderr.
    pub incident_log: Option<PathBuf>,
    /// The agent's socket (fingerprint source, and where owned credentials are revoked).
    pub agent_socket: Option<PathBuf>,
    /// Vault/OpenBao address.
    pub vault_addr: Option<String>,
    /// A file holding the Vault token.
    pub vault_token_file: Option<PathBuf>,
    /// A PEM file of CA certificates Vault's certificate may chain to (besides the system's
    /// roots); else `VAULT_CACERT` / `BAO_CACERT`.
    pub vault_cacert: Option<PathBuf>,
    /// KV v2 `MOUNT/PATH` of the published fingerprint registry.
    pub registry: String,
    /// The HMAC key the agents fingerprint with.
    pub fingerprint_key_file: Option<PathBuf>,
    /// STS and IAM at this URL instead of AWS's.
    pub aws_endpoint_url: Option<String>,
    /// No progress line.
    pub no_progress: bool,
    /// A scan that skipped part of its input exits 0 when it found nothing.
    pub allow_skipped: bool,
}

impl Default for Options {
    /// The command line's defaults: the current directory, human report, 256 MiB members,
    /// 4096 MiB per archive, depth 8, registry `secret/sidekey/registry`.
    fn default() -> Self {
        Options {
            paths: Vec::new(),
            exclude: Vec::new(),
            explain: false,
            format: Format::Human,
            output: None,
            config: None,
            gitleaks_config: None,
            gitleaks_config_toml: None,
            baseline: None,
            no_redact: false,
            git: None,
            staged: false,
            pre_push: None,
            artifact: Vec::new(),
            max_member_mib: 256,
            max_expanded_mib: 4096,
            max_depth: 8,
            verify: false,
            revoke: None,
            incident_log: None,
            agent_socket: None,
            vault_addr: None,
            vault_token_file: None,
            vault_cacert: None,
            registry: "secret/sidekey/registry".to_owned(),
            fingerprint_key_file: None,
            aws_endpoint_url: None,
            no_progress: false,
            allow_skipped: false,
        }
    }
}

/// `--revoke` or `--revoke=dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeMode {
    /// Revoke.
    On,
    /// Only say what would be done.
    DryRun,
}

/// What is scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Files and directories (archives inside are opened).
    Files(Vec<PathBuf>),
    /// Every blob reachable from these revisions, once, and the commit messages.
    Git(Revs),
    /// What `git commit` would add: staged blobs, minus secrets already in HEAD.
    Staged,
    /// What `git push` would send (refs read from stdin), to this remote if named.
    PrePush(Option<String>),
    /// Archives and images.
    Artifact(Vec<PathBuf>),
}

/// How the scan ended (errors are the `Err` of [`ScanPlan::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing found (after the baseline and inline allows).
    Clean,
    /// This many findings.
    Found(usize),
    /// No findings, but this many parts of the input could not be scanned (and
    /// `--allow-skipped` was not given): the scan proves nothing about them.
    Incomplete(usize),
}

/// Where the broker's fingerprints came from; owned credentials are revoked there too.
enum Broker {
    /// The agent's socket.
    Agent(crate::agent::Agent),
    /// The registry the agents publish at Vault (lease revocation with the operator's token).
    Vault(Vault),
}

/// Liveness checks and what to do with what is live.
struct Verify {
    /// Where the issuers are.
    issuers: verify::Options,
    /// `--revoke`: dry run or not, and where incidents go.
    revoke: Option<(RevokeMode, Option<PathBuf>)>,
}

/// The report's form.
struct Reporting {
    format: Format,
    output: Option<PathBuf>,
    reveal: bool,
    progress: bool,
}

/// A checked scan, ready to run.
pub struct ScanPlan {
    engine: Engine,
    known: HashSet<String>,
    /// `.gitleaksignore` at the scanned root.
    ignore: Option<allow::GitleaksIgnore>,
    owned: Option<(Owned, Broker)>,
    mode: Mode,
    /// The repository of `--git`, `--staged` and `--pre-push` (found once: each `git
    /// rev-parse` is a process a pre-commit hook waits for).
    repo: Option<Repo>,
    /// `--staged`'s `git diff`, started before the rules are loaded.
    staged: std::cell::RefCell<Option<git::PendingStaged>>,
    limits: Limits,
    verify: Option<Verify>,
    reporting: Reporting,
    allow_skipped: bool,
}

impl ScanPlan {
    /// Checks `opts` and builds what the scan needs: rules, baseline, the mode (its paths must
    /// be readable, its artifacts archives), and with `--verify` and a fingerprint key the
    /// broker's fingerprint set (fetched now, from the agent or the Vault registry).
    pub fn from_options(opts: &Options) -> anyhow::Result<ScanPlan> {
        let mode = mode(opts)?;
        if !opts.verify {
            if opts.revoke.is_some() {
                bail!("--revoke acts on what --verify proves; add --verify");
            }
            if opts.aws_endpoint_url.is_some() {
                bail!("--aws-endpoint-url is used by --verify; add --verify");
            }
        }
        let in_git = matches!(mode, Mode::Git(_) | Mode::Staged | Mode::PrePush(_));
        if in_git {
            rules::prefetch_builtin(); // while git answers
        }
        // git works out the commit's changes while the repository is found and the rules load.
        let staged = match mode {
            Mode::Staged => Some(Repo::ask_staged(Path::new("."))?),
            _ => None,
        };
        let repo = if in_git {
            Some(Repo::open(Path::new("."))?)
        } else {
            None
        };
        let root = scan_root(&mode, repo.as_ref());
        let mut engine = Engine::with_rules(rule_set(opts, root.as_deref())?).with_explain(opts.explain);
        if let Some(excludes) = excludes(&opts.exclude, root.as_deref())? {
            engine = engine.with_excludes(excludes);
        }
        let ignore = match root.map(|r| in_root(&r, ".gitleaksignore")).filter(|p| p.is_file()) {
            Some(path) => Some(gitleaks_ignore(&path)?),
            None => None,
        };
        let known = match &opts.baseline {
            Some(path) => allow::baseline(path)?,
            None => HashSet::new(),
        };
        match &mode {
            Mode::Files(roots) => {
                for root in roots.iter().filter(|r| !is_stdin(r)) {
                    std::fs::metadata(root).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", root.display()))?;
                }
            }
            Mode::Artifact(paths) => {
                for path in paths {
                    artifact_check(path)?;
                }
            }
            Mode::Git(_) | Mode::Staged | Mode::PrePush(_) => {}
        }
        let owned = owned(opts)?;
        Ok(ScanPlan {
            engine,
            known,
            ignore,
            owned,
            mode,
            repo,
            staged: std::cell::RefCell::new(staged),
            limits: Limits {
                max_member: opts.max_member_mib.saturating_mul(1024 * 1024),
                max_expanded: opts.max_expanded_mib.saturating_mul(1024 * 1024),
                max_depth: opts.max_depth,
            },
            verify: opts.verify.then(|| Verify {
                issuers: verify::Options {
                    aws_endpoint_url: opts.aws_endpoint_url.clone(),
                    vault_addr: opts.vault_addr.clone(),
                    vault_cacert: opts.vault_cacert.clone(),
                },
                revoke: opts.revoke.map(|m| (m, opts.incident_log.clone())),
            }),
            reporting: Reporting {
                format: opts.format,
                output: opts.output.clone(),
                reveal: opts.no_redact,
                progress: !opts.no_progress,
            },
            allow_skipped: opts.allow_skipped,
        })
    }

    /// What is scanned.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Scans, checks liveness and revokes when asked, writes the report; answers what was
    /// found.
    pub fn run(&self) -> anyhow::Result<Outcome> {
        let Some((mut findings, skipped)) = self.scan()? else {
            return Ok(Outcome::Clean); // a push that sends no commits: nothing to report
        };
        if let Some(ignore) = &self.ignore {
            findings.retain(|f| !ignore.ignores(f));
        }
        if let Some(v) = &self.verify {
            // Liveness at the issuers (AWS STS, Vault lookup-self).
            let live = verify::check(&mut findings, &v.issuers);
            if let Some((mode, log)) = &v.revoke {
                let dry_run = *mode == RevokeMode::DryRun;
                let mut log = incident_log(log.as_deref())?;
                // Owned credentials are revoked through the agent, else at Vault with the
                // operator's token.
                if let Some((owned, broker)) = &self.owned {
                    let via = match broker {
                        Broker::Agent(agent) => response::Via::Agent(agent),
                        Broker::Vault(vault) => response::Via::Vault(vault),
                    };
                    response::revoke_owned(&mut findings, owned, via, dry_run, &mut log)?;
                }
                response::revoke_live(&mut findings, &live, &v.issuers, dry_run, &mut log)?;
            }
        }
        self.report(&findings, &skipped)?;
        let incomplete = skipped.iter().filter(|s| !s.outside).count();
        Ok(match findings.len() {
            0 if incomplete > 0 && !self.allow_skipped => Outcome::Incomplete(incomplete),
            0 => Outcome::Clean,
            n => Outcome::Found(n),
        })
    }

    /// The repository of a git mode.
    fn repo(&self) -> anyhow::Result<&Repo> {
        self.repo
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("internal: a git mode without its repository"))
    }

    /// Runs the mode's source into the engine; `None` when there is nothing to scan.
    fn scan(&self) -> anyhow::Result<Option<(Vec<Finding>, Vec<Skipped>)>> {
        let limits = &self.limits;
        let owned = self.owned.as_ref().map(|(o, _)| o);
        let known = self.known.clone();
        Ok(Some(match &self.mode {
            Mode::Files(roots) => self.feed(owned, known, |scan| {
                let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) = roots.iter().partition(|r| is_stdin(r));
                if !stdin.is_empty() {
                    // Standard input, once however often it is named: a pipe, a file or a
                    // terminal, read to its end.
                    stream("<stdin>", &mut std::io::stdin().lock(), scan, limits);
                }
                files::walk(&paths, scan, limits);
                Ok(())
            })?,
            Mode::Artifact(paths) => self.feed(owned, known, |scan| {
                files::walk(paths, scan, limits);
                Ok(())
            })?,
            Mode::Git(revs) => {
                let repo = self.repo()?;
                self.feed(owned, known, |scan| repo.history(revs, scan, limits))?
            }
            Mode::PrePush(remote) => {
                let repo = self.repo()?;
                let mut lines = String::new();
                std::io::stdin()
                    .read_to_string(&mut lines)
                    .context("reading the pre-push refs from stdin")?;
                let revs = repo.pre_push_revs(remote.as_deref(), &lines)?;
                if revs.is_empty() {
                    return Ok(None);
                }
                self.feed(owned, known, |scan| repo.history(&revs, scan, limits))?
            }
            Mode::Staged => {
                let repo = self.repo()?;
                let asked = self.staged.borrow_mut().take();
                let git::Staged { changes, submodules } = match asked {
                    Some(asked) => asked.answer()?,
                    None => repo.staged()?,
                };
                // Blobs are streamed one at a time, never all held at once.
                let replaced: Vec<(&str, &str)> = changes
                    .iter()
                    .filter_map(|c| Some((c.path.as_str(), c.old.as_deref()?)))
                    .collect();
                let old_ids: Vec<&str> = replaced.iter().map(|(_, id)| *id).collect();
                let new_ids: Vec<&str> = changes.iter().map(|c| c.new.as_str()).collect();
                // Both git processes start now; the second waits on its pipe meanwhile.
                let (old_blobs, new_blobs) = (repo.ask_blobs(&old_ids)?, repo.ask_blobs(&new_ids)?);
                // Secrets the file already held at HEAD are not this commit's doing.
                let (before, _) = self.feed(None, HashSet::new(), |scan| {
                    old_blobs.each(|i, body| stream(replaced[i].0, body, scan, limits))
                })?;
                let mut known = known;
                known.extend(before.into_iter().map(|f| f.fingerprint));
                self.feed(owned, known, |scan| {
                    new_blobs.each(|i, body| stream(&changes[i].path, body, scan, limits))?;
                    for path in &submodules {
                        scan.outside(path, git::SUBMODULE.into());
                    }
                    Ok(())
                })?
            }
        }))
    }

    /// Runs `feed` into a new scan (with a progress line on a terminal) and answers its
    /// results.
    fn feed<'e>(
        &'e self,
        owned: Option<&'e Owned>,
        known: HashSet<String>,
        feed: impl FnOnce(&Scan<'e>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Vec<Finding>, Vec<Skipped>)> {
        let mut scan = Scan::new(&self.engine, known);
        if let Some(owned) = owned {
            scan = scan.with_owned(owned);
        }
        let show = self.reporting.progress && std::io::stderr().is_terminal();
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

    /// Writes the report (stdout or `--output`); skipped parts go to stderr too when the
    /// report is not a human one on stdout. After a human report with findings, stderr says
    /// what to do about them ([`report::next_steps`]).
    fn report(&self, findings: &[Finding], skipped: &[Skipped]) -> anyhow::Result<()> {
        let r = &self.reporting;
        let mut out: Box<dyn std::io::Write> = match &r.output {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("{}: cannot write report: {e}", path.display()))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let colour = r.output.is_none() && std::io::stdout().is_terminal();
        report::write(&mut out, r.format, findings, skipped, r.reveal, colour)?;
        drop(out); // flushed: the report comes before what is said about it
        if r.format != Format::Human || r.output.is_some() {
            for s in skipped {
                eprintln!(
                    "sidekey-scan: {} {}: {}",
                    if s.outside { "not scanned" } else { "skipped" },
                    report::printable(&s.path),
                    report::printable(&s.reason)
                );
            }
        }
        if r.format == Format::Human && !findings.is_empty() {
            let refused = match self.mode {
                Mode::Staged => report::Refused::Commit,
                Mode::PrePush(_) => report::Refused::Push,
                Mode::Files(_) | Mode::Git(_) | Mode::Artifact(_) => report::Refused::Nothing,
            };
            eprintln!("{}", report::next_steps(refused));
        }
        Ok(())
    }
}

/// The mode the options name; at most one of `--git`, `--staged`, `--pre-push`, `--artifact`
/// and paths.
fn mode(opts: &Options) -> anyhow::Result<Mode> {
    let named: Vec<&str> = [
        (opts.git.is_some(), "--git"),
        (opts.staged, "--staged"),
        (opts.pre_push.is_some(), "--pre-push"),
        (!opts.artifact.is_empty(), "--artifact"),
        (!opts.paths.is_empty(), "PATHS"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    if named.len() > 1 {
        bail!(
            "{} cannot be used together: scan one kind of source at a time",
            named.join(" and ")
        );
    }
    Ok(if let Some(range) = &opts.git {
        Mode::Git(Revs::range(range)?)
    } else if opts.staged {
        Mode::Staged
    } else if let Some(remote) = &opts.pre_push {
        Mode::PrePush(Some(remote.clone()).filter(|r| !r.is_empty()))
    } else if !opts.artifact.is_empty() {
        Mode::Artifact(opts.artifact.clone())
    } else if opts.paths.is_empty() {
        Mode::Files(vec![PathBuf::from(".")])
    } else {
        Mode::Files(opts.paths.clone())
    })
}

/// Whether a path names standard input: `-` or `/dev/stdin`.
fn is_stdin(path: &Path) -> bool {
    path == Path::new("-") || path == Path::new("/dev/stdin")
}

/// The root of what is scanned, where `.gitleaks.toml` and `.gitleaksignore` are looked for:
/// the repository of `--git`, `--staged` and `--pre-push`, the directory of a scan of one
/// directory (the current one by default); none for several paths, a file or `--artifact`.
fn scan_root(mode: &Mode, repo: Option<&Repo>) -> Option<PathBuf> {
    match mode {
        Mode::Git(_) | Mode::Staged | Mode::PrePush(_) => repo.map(|repo| repo.root().to_owned()),
        Mode::Files(roots) => match roots.as_slice() {
            [one] if one.is_dir() => Some(one.clone()),
            _ => None,
        },
        Mode::Artifact(_) => None,
    }
}

/// The exclude patterns: `--exclude` globs, then the lines of `.sidekeyignore` at `root`
/// (gitignore syntax, `#` comments, `!` to take a path back), relative to the root (the
/// current directory without one); `None` when there are none.
fn excludes(globs: &[String], root: Option<&Path>) -> anyhow::Result<Option<ignore::gitignore::Gitignore>> {
    let base = root.unwrap_or(Path::new("."));
    let mut builder = ignore::gitignore::GitignoreBuilder::new(base);
    for glob in globs {
        builder
            .add_line(None, glob)
            .map_err(|e| anyhow::anyhow!("--exclude {glob:?}: {e}"))?;
    }
    let file = in_root(base, ".sidekeyignore");
    let from_file = file.is_file();
    if from_file {
        if let Some(e) = builder.add(&file) {
            bail!("{}: {e}", file.display());
        }
    }
    if globs.is_empty() && !from_file {
        return Ok(None);
    }
    let built = builder.build().map_err(|e| anyhow::anyhow!("--exclude: {e}"))?;
    Ok(Some(built))
}

/// `name` in `root`, without a leading `./` (as paths are shown).
fn in_root(root: &Path, name: &str) -> PathBuf {
    let path = root.join(name);
    path.strip_prefix(".").map(Path::to_owned).unwrap_or(path)
}

/// The rules, from the config gitleaks would read (`--config`, else `GITLEAKS_CONFIG`, else
/// `GITLEAKS_CONFIG_TOML`, else `.gitleaks.toml` at the scanned root), else the built-in ones.
/// stderr says which config is used unless `--config` named it, and always when the
/// built-in rules are not used.
fn rule_set(opts: &Options, root: Option<&Path>) -> anyhow::Result<rules::RuleSet> {
    let picked = root.map(|r| in_root(r, ".gitleaks.toml")).filter(|p| p.is_file());
    let (source, how) = if let Some(path) = &opts.config {
        (Some(rules::Source::File(path.clone())), None)
    } else if let Some(path) = &opts.gitleaks_config {
        (Some(rules::Source::File(path.clone())), Some("from GITLEAKS_CONFIG"))
    } else if let Some(text) = &opts.gitleaks_config_toml {
        let name = "GITLEAKS_CONFIG_TOML".to_owned();
        let text = text.clone();
        (
            Some(rules::Source::Text { name, text }),
            Some("the config in GITLEAKS_CONFIG_TOML"),
        )
    } else if let Some(path) = picked {
        (Some(rules::Source::File(path)), Some("found at the root of the scan"))
    } else {
        (None, None)
    };
    let set = rules::load(source.as_ref())?;
    for warning in &set.warnings {
        eprintln!("sidekey-scan: warning: {}", report::printable(warning));
    }
    let name = match &source {
        Some(rules::Source::File(path)) => path.display().to_string(),
        Some(rules::Source::Text { name, .. }) => name.clone(),
        None => return Ok(set),
    };
    let builtin = if set.builtin {
        "the built-in rules extended"
    } else {
        "the built-in rules are not used: the config does not [extend] them (`useDefault = true` keeps them)"
    };
    if how.is_some() || !set.builtin {
        let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
        eprintln!(
            "sidekey-scan: using {}{how}: {} rule(s), {builtin}",
            report::printable(&name),
            set.rules.len() + set.file_rules.len()
        );
    }
    Ok(set)
}

/// `.gitleaksignore` at `path`; stderr says it is used, and names lines that are not a
/// fingerprint.
fn gitleaks_ignore(path: &Path) -> anyhow::Result<allow::GitleaksIgnore> {
    let (ignore, odd) = allow::GitleaksIgnore::load(path)?;
    let shown = path.display().to_string();
    let shown = report::printable(&shown);
    for line in odd {
        eprintln!(
            "sidekey-scan: warning: {shown}:{line}: not a gitleaks fingerprint (FILE:RULE-ID:LINE or COMMIT:FILE:RULE-ID:LINE)"
        );
    }
    eprintln!(
        "sidekey-scan: using {shown}: {} finding(s) named there are not reported",
        ignore.len()
    );
    Ok(ignore)
}

/// The broker's fingerprint set and where it came from, when `--verify` has a source for it.
fn owned(opts: &Options) -> anyhow::Result<Option<(Owned, Broker)>> {
    if !opts.verify {
        if opts.agent_socket.is_some() {
            bail!("--agent-socket is used by --verify; add --verify");
        }
        return Ok(None);
    }
    let Some(key_file) = opts.fingerprint_key_file.as_deref() else {
        if opts.agent_socket.is_some() {
            bail!("--agent-socket needs --fingerprint-key-file");
        }
        return Ok(None); // no fingerprint source: other checks only
    };
    let key = sidekey::fingerprint::FingerprintKey::load(key_file)
        .map_err(|e| anyhow::anyhow!("--fingerprint-key-file {e}"))?;
    match (&opts.agent_socket, &opts.vault_addr) {
        (Some(socket), _) => {
            let agent = crate::agent::Agent::new(socket)?;
            Ok(Some((Owned::from_agent(&agent, key)?, Broker::Agent(agent))))
        }
        (None, Some(addr)) => {
            let vault = Vault::new(addr, opts.vault_token_file.as_deref(), opts.vault_cacert.as_deref())?;
            let owned = Owned::from_vault(&vault, &opts.registry, key)?;
            Ok(Some((owned, Broker::Vault(vault))))
        }
        (None, None) => bail!(
            "--fingerprint-key-file needs a fingerprint source: --agent-socket or --vault-addr (the published registry)"
        ),
    }
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

/// Scans one staged blob as it is read from git (its own top-level input).
fn stream(path: &str, body: &mut dyn Read, sink: &dyn Sink, limits: &Limits) {
    let budget = source::Budget::new(limits);
    source::dispatch(path, body, &source::Ctx::top(sink, limits, None, &budget));
}

/// An `--artifact` must exist and, when it is a file, be an archive sidekey can open.
fn artifact_check(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if meta.is_dir() {
        return Ok(());
    }
    let mut head = vec![0u8; source::SNIFF_LEN];
    let mut file = files::open_regular(path, true).map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
    let n = file
        .read(&mut head)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    match source::sniff(&head[..n]) {
        source::Kind::Zip | source::Kind::Tar | source::Kind::Gzip | source::Kind::Zstd => Ok(()),
        _ => bail!(
            "{}: not an archive sidekey can open (zip/jar/whl/apk, tar, tar.gz, tar.zst, or an image directory); \
             scan plain files without --artifact",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_at_a_time() {
        let opts = Options {
            staged: true,
            paths: vec![PathBuf::from("x")],
            ..Options::default()
        };
        let err = ScanPlan::from_options(&opts).err().unwrap().to_string();
        assert!(err.contains("--staged and PATHS cannot be used together"), "{err}");
        assert_eq!(
            mode(&Options::default()).unwrap(),
            Mode::Files(vec![PathBuf::from(".")])
        );
        let git = Options {
            git: Some("--all".into()),
            ..Options::default()
        };
        assert_eq!(mode(&git).unwrap(), Mode::Git(Revs::all()));
        let git = Options {
            git: Some("main --output=/tmp/x".into()),
            ..Options::default()
        };
        let err = mode(&git).unwrap_err().to_string();
        assert!(err.contains(r#"revision "--output=/tmp/x" starts with `-`"#), "{err}");
        let push = Options {
            pre_push: Some(String::new()),
            ..Options::default()
        };
        assert_eq!(mode(&push).unwrap(), Mode::PrePush(None));
    }

    #[test]
    fn a_configs_global_allowlist_leaves_out_paths_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("scan.toml");
        std::fs::write(
            &config,
            "[extend]\nuseDefault = true\n[allowlist]\ndescription = \"fixtures\"\npaths = ['''^fixtures/''']\nregexes = ['''^A1b2''']\n",
        )
        .unwrap();
        let source = rules::Source::File(config.clone());
        let engine = Engine::with_rules(rules::load(Some(&source)).unwrap());
        let scan = Scan::new(&engine, HashSet::new());
        let leak = br#"{"user": "app", "password": "p-0001-refusals"}"#; // sidekey:allow
        for path in ["fixtures/a.json", "./fixtures/b.json", "app.json"] {
            scan.text_bytes(path, leak, source::Encoding::Utf8, None);
        }
        scan.text_bytes(
            "unit.json",
            br#"{"user": "app", "password": "A1b2C3d4E5f6G7h8"}"#,
            source::Encoding::Utf8,
            None,
        );
        let (found, _) = scan.finish();
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["app.json"]);

        std::fs::write(
            &config,
            "[extend]\nuseDefault = true\n\n[allowlist]\npaths = ['''(''']\n",
        )
        .unwrap();
        let err = rules::load(Some(&source)).unwrap_err().to_string();
        assert!(
            err.contains("scan.toml:4: [[allowlists]]: invalid allowlist path regex"),
            "{err}"
        );
    }

    #[test]
    fn revocation_needs_verification() {
        let opts = Options {
            revoke: Some(RevokeMode::DryRun),
            ..Options::default()
        };
        let err = ScanPlan::from_options(&opts).err().unwrap().to_string();
        assert!(err.contains("add --verify"), "{err}");
        let opts = Options {
            agent_socket: Some(PathBuf::from("/nonexistent")),
            ..Options::default()
        };
        let err = ScanPlan::from_options(&opts).err().unwrap().to_string();
        assert!(err.contains("--agent-socket is used by --verify"), "{err}");
    }
}
