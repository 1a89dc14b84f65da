//! Git: history (`--git [RANGE]`), the index (`--staged`) and pushes (`--pre-push`).
//!
//! Git itself does the reading: `git log --raw` walks the range oldest first and names every
//! blob each commit adds, so the first commit that shows a blob is the one that introduced it;
//! each blob is then read once through one `git cat-file --batch` and scanned in parallel.
//! A corrupt object makes git fail, and its message is passed on. Memory grows with the number
//! of distinct blobs (16 bytes each), never with their content or the number of commits.
//!
//! Invariants: a revision from outside (the user's `--git RANGE`, a pre-push hook's input) is
//! never read by git as an option: [`Revs`] refuses a word that starts with `-` and passes the
//! revisions after `--end-of-options`. Submodules (gitlinks, mode 160000) are not followed:
//! each one's path is reported as skipped, once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};

use super::{dispatch, dispatch_bytes, Budget, Commit, Ctx, Limits, Sink};
use crate::report::printable;

/// Blobs at most this large are handed to worker threads whole; larger ones are streamed.
const WHOLE: u64 = 8 * 1024 * 1024;
/// The path under which commit messages are reported.
pub const MESSAGE_PATH: &str = "COMMIT_MSG";
/// Why a submodule is reported as skipped.
pub const SUBMODULE: &str = "submodule: its content is not scanned (scan its own repository)";

/// What `git log` walks: options sidekey itself chose (`--all`, `--not --remotes=R --not`),
/// then `--end-of-options`, then revisions from outside, which git therefore never reads as
/// options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revs {
    options: Vec<String>,
    revisions: Vec<String>,
}

impl Revs {
    /// Every ref (`--all`): `--git` without a range.
    pub fn all() -> Revs {
        Revs {
            options: vec!["--all".into()],
            revisions: Vec::new(),
        }
    }

    /// The revisions of a `--git RANGE` (space-separated, as `git log` takes them, e.g.
    /// `origin/main..HEAD ^v1`), or an error naming a word that starts with `-`: a revision is
    /// never an option. `--all` alone is [`Revs::all`].
    pub fn range(range: &str) -> anyhow::Result<Revs> {
        let words: Vec<&str> = range.split_whitespace().collect();
        if words == ["--all"] {
            return Ok(Revs::all());
        }
        if let Some(word) = words.iter().find(|w| w.starts_with('-')) {
            bail!(
                "--git: revision {:?} starts with `-`; a revision is never passed to git as an option \
                 (for every ref, give --git without a range; to exclude one, write ^REV)",
                word
            );
        }
        Ok(Revs {
            options: Vec::new(),
            revisions: words.into_iter().map(str::to_owned).collect(),
        })
    }

    /// Whether there is nothing to walk (no revision and no option naming refs).
    pub fn is_empty(&self) -> bool {
        self.options.is_empty() && self.revisions.is_empty()
    }

    /// The arguments for `git log`, up to (not including) the `--` that ends them.
    fn args(&self) -> impl Iterator<Item = &str> {
        self.options
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("--end-of-options"))
            .chain(self.revisions.iter().map(String::as_str))
    }
}

impl std::fmt::Display for Revs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = self.options.iter().chain(&self.revisions).map(String::as_str).collect();
        f.write_str(&printable(&words.join(" ")))
    }
}

/// What `git commit` would add ([`Repo::staged`]).
#[derive(Debug, Clone, Default)]
pub struct Staged {
    /// Each staged blob that differs from HEAD.
    pub changes: Vec<Change>,
    /// Paths of staged submodules (gitlinks), whose content is not scanned.
    pub submodules: Vec<String>,
}

/// A repository: the directory git commands run in.
pub struct Repo {
    dir: PathBuf,
}

impl Repo {
    /// The repository containing `dir` — its work tree, or the repository itself when it is
    /// bare (a server's or a backup's mirror) — or an error that says it is not one.
    pub fn open(dir: &Path) -> anyhow::Result<Repo> {
        let rev_parse = |args: &[&str]| {
            let out = Command::new("git")
                .arg("rev-parse")
                .args(args)
                .current_dir(dir)
                .output()
                .with_context(|| "cannot run git (is it installed?)")?;
            if !out.status.success() {
                bail!("{}: not a git repository: {}", dir.display(), stderr_line(&out.stderr));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        // One process in a work tree (the hooks' case); `--show-toplevel` fails in a bare
        // repository, which is then asked without it.
        let answer = match rev_parse(&["--is-bare-repository", "--absolute-git-dir", "--show-toplevel"]) {
            Ok(answer) => answer,
            Err(_) => rev_parse(&["--is-bare-repository", "--absolute-git-dir"])?,
        };
        let mut lines = answer.lines();
        let root = match (lines.next(), lines.next(), lines.next()) {
            (Some("true"), Some(git_dir), _) => git_dir.to_owned(),
            (Some(_), Some(_), Some(top)) => top.to_owned(),
            _ => rev_parse(&["--show-toplevel"])?.trim_end().to_owned(),
        };
        Ok(Repo {
            dir: PathBuf::from(root),
        })
    }

    /// The repository's top directory.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    fn git(&self) -> Command {
        git_in(&self.dir)
    }

    /// Scans every blob reachable from `revs` once, attributed to the commit that introduced
    /// it, and every commit message; each submodule path met is reported as skipped.
    pub fn history(&self, revs: &Revs, sink: &dyn Sink, limits: &Limits) -> anyhow::Result<()> {
        let mut log = self
            .git()
            .args([
                "log",
                "--format=%x01%H%x00%an%x00%ae%x00%aI%x00%B%x00",
                "--raw",
                "--no-abbrev",
                "--no-renames",
                "--no-textconv",
                "--no-ext-diff",
                "-z",
                "--topo-order",
                "--reverse",
                "--diff-merges=dense-combined",
            ])
            .args(revs.args())
            .arg("--")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run git log")?;
        let log_out = log.stdout.take().expect("piped");
        let log_err = drain(log.stderr.take().expect("piped"));
        let batch = BlobReader::spawn(self)?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, todo) = crossbeam_channel::bounded::<Job>(workers * 4);
        let (wanted, order) = crossbeam_channel::unbounded::<(String, Arc<Commit>)>();

        std::thread::scope(|scope| -> anyhow::Result<()> {
            for _ in 0..workers {
                let todo = todo.clone();
                scope.spawn(move || {
                    for job in todo {
                        scan_whole(&job.path, &job.bytes, Some(&job.commit), sink, limits);
                    }
                });
            }
            drop(todo);
            let BlobReader {
                mut child,
                stdin,
                stdout,
                stderr,
            } = batch;
            let reader_jobs = jobs.clone();
            let reader = scope.spawn(move || read_batch(stdout, order, reader_jobs, sink, limits));
            let walked = walk_log(log_out, stdin, wanted, &jobs, sink);
            drop(jobs);
            let read = reader.join().expect("the batch reader does not panic");
            let log_status = log.wait().context("git log")?;
            let batch_status = child.wait().context("git cat-file")?;
            if let Err(e) = read {
                return Err(e).context(stderr_line(&stderr.join()));
            }
            if !batch_status.success() {
                bail!("git cat-file failed: {}", stderr_line(&stderr.join()));
            }
            if !log_status.success() {
                bail!("git log {revs} failed: {}", stderr_line(&log_err.join()));
            }
            walked
        })
    }

    /// What `git commit` would add: each staged blob that differs from HEAD, with the blob it
    /// replaces (None for new files), and the staged submodules.
    pub fn staged(&self) -> anyhow::Result<Staged> {
        Repo::ask_staged(&self.dir)?.answer()
    }

    /// Starts [`Repo::staged`]'s `git diff` in `dir`, any directory of the work tree (git finds
    /// the repository itself, so this need not wait for [`Repo::open`]); [`PendingStaged::answer`]
    /// reads it, so that the caller can do other work while git runs. Paths come relative to
    /// the top of the work tree whatever `dir` is (`diff.relative` is overridden).
    pub fn ask_staged(dir: &Path) -> anyhow::Result<PendingStaged> {
        // Against HEAD; in a repository without commits yet, every staged file (git diff
        // --cached does both when no commit is named).
        let child = git_in(dir)
            .args([
                "-c",
                "diff.relative=false",
                "diff",
                "--cached",
                "--raw",
                "-z",
                "--no-abbrev",
                "--no-renames",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run git diff")?;
        Ok(PendingStaged(Some(child)))
    }

    /// Hands each blob in `ids`, in order, to `each` as a stream of its bytes (with its index
    /// in `ids`): one blob at a time, never all of them held at once.
    pub fn each_blob(&self, ids: &[&str], each: impl FnMut(usize, &mut dyn Read)) -> anyhow::Result<()> {
        self.ask_blobs(ids)?.each(each)
    }

    /// Starts [`Repo::each_blob`]'s `git cat-file` for `ids` (none for an empty list: a commit
    /// of new files has no old blobs); [`PendingBlobs::each`] reads the answers, so that git
    /// starts while the caller does other work.
    pub fn ask_blobs<'a>(&self, ids: &'a [&'a str]) -> anyhow::Result<PendingBlobs<'a>> {
        if ids.is_empty() {
            return Ok(PendingBlobs { ids, asked: None });
        }
        let reader = BlobReader::spawn(self)?;
        let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
        let mut stdin = reader.stdin;
        let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
        Ok(PendingBlobs {
            ids,
            asked: Some(Asked {
                child: reader.child,
                stdout: reader.stdout,
                stderr: reader.stderr,
                writer,
            }),
        })
    }

    /// The revisions for the refs a `pre-push` hook is told about on stdin
    /// (`<local ref> <local sha> <remote ref> <remote sha>` per line): what the push sends that
    /// `remote` does not have yet. Deleted refs send nothing; a new ref sends what no
    /// remote-tracking ref of `remote` (of any remote if None) has.
    pub fn pre_push_revs(&self, remote: Option<&str>, lines: &str) -> anyhow::Result<Revs> {
        let mut revs = Revs::default();
        let mut new_ref = false;
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [_, local, _, remote_sha] = parts[..] else {
                bail!("pre-push input: expected `<local ref> <local sha> <remote ref> <remote sha>`, got {line:?}");
            };
            if let Some(id) = [local, remote_sha].into_iter().find(|id| !is_object_id(id)) {
                bail!("pre-push input: {id:?} is not an object id, in {line:?}");
            }
            if is_zero(local) {
                continue;
            }
            if is_zero(remote_sha) {
                revs.revisions.push(local.to_owned());
                new_ref = true;
            } else {
                revs.revisions.push(format!("{remote_sha}..{local}"));
            }
        }
        if new_ref {
            // `--not` flips every later revision: flipped back before the revisions come.
            let remotes = match remote {
                Some(r) => format!("--remotes={r}"),
                None => "--remotes".into(),
            };
            revs.options = vec!["--not".into(), remotes, "--not".into()];
        }
        Ok(revs)
    }

    /// Where git looks for hooks in this repository (respects `core.hooksPath`).
    pub fn hooks_dir(&self) -> anyhow::Result<PathBuf> {
        let out = self
            .git()
            .args(["rev-parse", "--git-path", "hooks"])
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            bail!("git rev-parse --git-path hooks failed: {}", stderr_line(&out.stderr));
        }
        Ok(self.dir.join(String::from_utf8_lossy(&out.stdout).trim_end()))
    }
}

/// A staged change: `path` now holds blob `new`, which replaces blob `old`.
#[derive(Debug, Clone)]
pub struct Change {
    /// Path from the repository root.
    pub path: String,
    /// The blob at HEAD, if the path existed there.
    pub old: Option<String>,
    /// The staged blob.
    pub new: String,
}

/// One `--raw` entry: `:mode... id... status`, with as many colons as parents (combined
/// diffs of merges have more than one).
struct Raw<'a> {
    modes: Vec<&'a str>,
    ids: Vec<&'a str>,
    status: &'a str,
}

impl<'a> Raw<'a> {
    fn parse(entry: &'a [u8]) -> Option<Raw<'a>> {
        let text = std::str::from_utf8(entry).ok()?.trim_start_matches('\n');
        let parents = text.bytes().take_while(|b| *b == b':').count();
        if parents == 0 {
            return None;
        }
        let fields: Vec<&str> = text[parents..].split(' ').collect();
        if fields.len() != 2 * (parents + 1) + 1 {
            return None;
        }
        Some(Raw {
            modes: fields[..=parents].to_vec(),
            ids: fields[parents + 1..2 * (parents + 1)].to_vec(),
            status: fields[2 * (parents + 1)],
        })
    }

    /// The blob this entry adds: not a deletion, not a submodule commit.
    fn added(&self) -> Option<&'a str> {
        let (mode, id) = (*self.modes.last()?, *self.ids.last()?);
        (!self.status.starts_with('D') && mode != GITLINK && !is_zero(id)).then_some(id)
    }

    /// Whether this entry adds or moves a submodule (a gitlink, not followed).
    fn submodule(&self) -> bool {
        !self.status.starts_with('D') && self.modes.last() == Some(&GITLINK)
    }

    /// The blob it replaces (single-parent diffs only).
    fn old(&self) -> Option<&'a str> {
        (self.ids.len() == 2 && !is_zero(self.ids[0]) && self.modes[0] != GITLINK).then_some(self.ids[0])
    }
}

/// The mode of a submodule entry in a tree.
const GITLINK: &str = "160000";

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// A full object id, SHA-1 or SHA-256, in hex.
fn is_object_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A blob read whole, for a worker.
struct Job {
    path: String,
    bytes: Vec<u8>,
    commit: Arc<Commit>,
}

/// Reads `git log` output: commit headers and raw entries. Each commit message becomes a
/// job; each blob seen for the first time is asked of `git cat-file` (and its path and commit
/// are sent, in the same order, to the batch reader).
fn walk_log(
    log: ChildStdout,
    batch: std::process::ChildStdin,
    wanted: crossbeam_channel::Sender<(String, Arc<Commit>)>,
    jobs: &crossbeam_channel::Sender<Job>,
    sink: &dyn Sink,
) -> anyhow::Result<()> {
    let mut log = BufReader::with_capacity(256 * 1024, log);
    let mut batch = BufWriter::new(batch);
    // The first 128 bits of each blob id seen: 16 bytes a blob (two ids sharing them would
    // take ~2^64 blobs to be likely).
    let mut seen: HashSet<u128> = HashSet::new();
    let mut submodules: HashSet<Vec<u8>> = HashSet::new();
    let mut commit: Option<Arc<Commit>> = None;
    let mut token = Vec::new();
    let next = |log: &mut BufReader<ChildStdout>, token: &mut Vec<u8>| -> anyhow::Result<bool> {
        token.clear();
        let n = log.read_until(0, token).context("reading git log")?;
        if token.last() == Some(&0) {
            token.pop();
        }
        Ok(n > 0)
    };
    while next(&mut log, &mut token)? {
        if let Some(id) = token.strip_prefix(b"\x01") {
            let id = String::from_utf8_lossy(id).into_owned();
            let mut field = || -> anyhow::Result<String> {
                next(&mut log, &mut token)?;
                Ok(String::from_utf8_lossy(&token).into_owned())
            };
            let (author, email, date) = (field()?, field()?, field()?);
            let message = field()?;
            let c = Arc::new(Commit {
                id,
                author,
                email,
                date,
            });
            jobs.send(Job {
                path: MESSAGE_PATH.into(),
                bytes: message.into_bytes(),
                commit: c.clone(),
            })
            .ok();
            commit = Some(c);
            continue;
        }
        let Some(raw) = Raw::parse(&token) else { continue };
        let added = raw.added().map(str::to_owned);
        let submodule = raw.submodule();
        next(&mut log, &mut token)?;
        if submodule && submodules.insert(token.clone()) {
            sink.outside(&String::from_utf8_lossy(&token), SUBMODULE.into());
        }
        let (Some(id), Some(c)) = (added, &commit) else {
            continue;
        };
        let key = u128::from_str_radix(&id[..32.min(id.len())], 16)
            .map_err(|_| anyhow!("git log: unexpected object id {id:?}"))?;
        if seen.insert(key) {
            let path = String::from_utf8_lossy(&token).into_owned();
            if wanted.send((path, c.clone())).is_err() {
                break; // the batch reader stopped; its error is reported
            }
            writeln!(batch, "{id}").context("writing to git cat-file")?;
        }
    }
    batch.flush().context("writing to git cat-file")?;
    Ok(())
}

/// Reads `git cat-file --batch` answers in the order they were asked; small blobs go to the
/// workers whole, large ones are streamed here.
fn read_batch(
    out: ChildStdout,
    order: crossbeam_channel::Receiver<(String, Arc<Commit>)>,
    jobs: crossbeam_channel::Sender<Job>,
    sink: &dyn Sink,
    limits: &Limits,
) -> anyhow::Result<()> {
    let mut out = BufReader::with_capacity(1024 * 1024, out);
    for (path, commit) in order {
        let size = header(&mut out, &path)?;
        if size <= WHOLE {
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut out).take(size).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != size {
                bail!("git cat-file: {}: blob cut short", printable(&path));
            }
            jobs.send(Job { path, bytes, commit }).ok();
        } else {
            let budget = Budget::new(limits);
            let ctx = Ctx::top(sink, limits, Some(&commit), &budget);
            let mut body = (&mut out).take(size);
            dispatch(&path, &mut body, &ctx);
            std::io::copy(&mut body, &mut std::io::sink())?;
        }
        out.read_exact(&mut [0u8; 1])
            .context("git cat-file: answer cut short")?;
    }
    Ok(())
}

/// Reads one `--batch` header, `<id> blob <size>`; answers the size.
fn header(out: &mut impl BufRead, what: &str) -> anyhow::Result<u64> {
    let mut line = String::new();
    if out.read_line(&mut line).context("reading git cat-file")? == 0 {
        bail!("git cat-file stopped before {}", printable(what));
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        [_, "blob", size] => size
            .parse()
            .map_err(|_| anyhow!("git cat-file: unexpected answer {line:?}")),
        [id, "missing"] => bail!("{}: object {id} is missing from the repository", printable(what)),
        _ => bail!("{}: git cat-file answered {:?}", printable(what), line.trim_end()),
    }
}

/// Scans one blob held whole (its own top-level input).
fn scan_whole(path: &str, bytes: &[u8], commit: Option<&Arc<Commit>>, sink: &dyn Sink, limits: &Limits) {
    let budget = Budget::new(limits);
    let ctx = Ctx::top(sink, limits, commit, &budget);
    dispatch_bytes(path, bytes, &ctx);
}

/// `git` run in `dir`, never prompting, with paths printed as they are (not quoted).
fn git_in(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "core.quotePath=false"]);
    cmd
}

/// A `git cat-file` under way ([`Repo::ask_blobs`]).
pub struct PendingBlobs<'a> {
    ids: &'a [&'a str],
    /// None when no blob was asked for.
    asked: Option<Asked>,
}

/// The `git cat-file` of [`PendingBlobs`].
struct Asked {
    child: Child,
    /// The answers.
    stdout: ChildStdout,
    /// Its errors, read as they come.
    stderr: Drain,
    /// The thread writing it the ids.
    writer: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Drop for PendingBlobs<'_> {
    /// Blobs never read (the scan failed first): git is stopped and reaped, the writer joined.
    fn drop(&mut self) {
        if let Some(mut asked) = self.asked.take() {
            let _ = asked.child.kill();
            drop(asked.stdout);
            let _ = asked.writer.join();
            let _ = asked.child.wait();
        }
    }
}

impl PendingBlobs<'_> {
    /// Hands each blob, in order, to `each` (see [`Repo::each_blob`]).
    pub fn each(mut self, mut each: impl FnMut(usize, &mut dyn Read)) -> anyhow::Result<()> {
        let Some(Asked {
            mut child,
            stdout,
            stderr,
            writer,
        }) = self.asked.take()
        else {
            return Ok(());
        };
        let mut out = BufReader::new(stdout);
        let read = (|| -> anyhow::Result<()> {
            for (i, id) in self.ids.iter().enumerate() {
                let size = header(&mut out, id)?;
                let mut body = (&mut out).take(size);
                each(i, &mut body);
                std::io::copy(&mut body, &mut std::io::sink())?; // what `each` did not read
                if body.limit() != 0 {
                    bail!("git cat-file: {}: blob cut short", printable(id));
                }
                out.read_exact(&mut [0u8; 1])
                    .context("git cat-file: answer cut short")?;
            }
            Ok(())
        })();
        drop(out);
        let wrote = writer.join().expect("writer does not panic");
        let status = child.wait()?;
        if let Err(e) = read {
            return Err(e).context(stderr_line(&stderr.join()));
        }
        if !status.success() {
            bail!("git cat-file failed: {}", stderr_line(&stderr.join()));
        }
        wrote.context("writing to git cat-file")
    }
}

/// A `git diff --cached` under way ([`Repo::ask_staged`]).
pub struct PendingStaged(Option<Child>);

impl Drop for PendingStaged {
    /// A diff never read (the scan failed first) is stopped and reaped, not left a zombie.
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl PendingStaged {
    /// What `git commit` would add (see [`Repo::staged`]).
    pub fn answer(mut self) -> anyhow::Result<Staged> {
        let child = self.0.take().expect("a pending diff is answered once");
        let out = child.wait_with_output().context("cannot run git diff")?;
        if !out.status.success() {
            bail!("git diff --cached failed: {}", stderr_line(&out.stderr));
        }
        let mut staged = Staged::default();
        let mut fields = out.stdout.split(|b| *b == 0);
        while let Some(entry) = fields.next().filter(|e| !e.is_empty()) {
            let path = fields
                .next()
                .ok_or_else(|| anyhow!("git diff --raw: entry without a path"))?;
            let Some(raw) = Raw::parse(entry) else { continue };
            let path = String::from_utf8_lossy(path).into_owned();
            if let Some(new) = raw.added() {
                staged.changes.push(Change {
                    path,
                    old: raw.old().map(str::to_owned),
                    new: new.to_owned(),
                });
            } else if raw.submodule() {
                staged.submodules.push(path);
            }
        }
        Ok(staged)
    }
}

/// A running `git cat-file --batch`.
struct BlobReader {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: ChildStdout,
    stderr: Drain,
}

impl BlobReader {
    fn spawn(repo: &Repo) -> anyhow::Result<BlobReader> {
        let mut child = repo
            .git()
            .args(["cat-file", "--batch", "--buffer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run git cat-file")?;
        Ok(BlobReader {
            stdin: child.stdin.take().expect("piped"),
            stdout: child.stdout.take().expect("piped"),
            stderr: drain(child.stderr.take().expect("piped")),
            child,
        })
    }
}

/// A child's stderr, read to the end on its own thread.
struct Drain(std::thread::JoinHandle<Vec<u8>>);

impl Drain {
    fn join(self) -> Vec<u8> {
        self.0.join().unwrap_or_default()
    }
}

fn drain(mut from: impl Read + Send + 'static) -> Drain {
    Drain(std::thread::spawn(move || {
        let mut all = Vec::new();
        from.read_to_end(&mut all).ok();
        all
    }))
}

/// The first line of git's error output (`fatal: ...`), or a note that there was none.
fn stderr_line(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match (lines.next(), lines.next()) {
        (Some(first), Some(_)) => format!("{} (and more)", first.trim()),
        (Some(first), None) => first.trim().to_owned(),
        (None, _) => "no message from git".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_entries_name_the_blob_they_add() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let added = format!(":000000 100644 {z} {a} A");
        assert_eq!(Raw::parse(added.as_bytes()).unwrap().added(), Some(a.as_str()));
        let modified = format!("\n:100644 100644 {a} {b} M");
        let raw = Raw::parse(modified.as_bytes()).unwrap();
        assert_eq!((raw.added(), raw.old()), (Some(b.as_str()), Some(a.as_str())));
        let deleted = format!(":100644 000000 {a} {z} D");
        assert_eq!(Raw::parse(deleted.as_bytes()).unwrap().added(), None);
        let submodule = format!(":000000 160000 {z} {a} A");
        let raw = Raw::parse(submodule.as_bytes()).unwrap();
        assert_eq!((raw.added(), raw.submodule()), (None, true));
        let gone = format!(":160000 000000 {a} {z} D");
        assert!(!Raw::parse(gone.as_bytes()).unwrap().submodule());
        let merge = format!("::100644 100644 100644 {a} {b} {a} MM");
        assert_eq!(Raw::parse(merge.as_bytes()).unwrap().added(), Some(a.as_str()));
        assert!(Raw::parse(b"merge message").is_none());
    }

    #[test]
    fn revisions_are_never_options() {
        let args = |r: &Revs| r.args().map(str::to_owned).collect::<Vec<_>>().join(" ");
        assert_eq!(
            args(&Revs::range("origin/main..HEAD ^v1").unwrap()),
            "--end-of-options origin/main..HEAD ^v1"
        );
        assert_eq!(args(&Revs::range(" --all ").unwrap()), "--all --end-of-options");
        for bad in ["--output=/tmp/x", "HEAD --all", "-p", "main -- x"] {
            let err = Revs::range(bad).unwrap_err().to_string();
            assert!(err.contains("starts with `-`"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_push_walks_what_the_remote_lacks() {
        let repo = Repo {
            dir: PathBuf::from("."),
        };
        let (z, a, b, c) = ("0".repeat(40), "a".repeat(40), "b".repeat(40), "c".repeat(40));
        let lines = format!(
            "refs/heads/new {a} refs/heads/new {z}\nrefs/heads/old {b} refs/heads/old {c}\n\
             refs/heads/other {c} refs/heads/other {z}\nrefs/heads/gone {z} refs/heads/gone {a}\n"
        );
        let revs = repo.pre_push_revs(Some("origin"), &lines).unwrap();
        let args: Vec<&str> = revs.args().collect();
        let c_b = format!("{c}..{b}");
        assert_eq!(
            args,
            ["--not", "--remotes=origin", "--not", "--end-of-options", &a, &c_b, &c]
        );
        let only_old = format!("refs/heads/old {b} refs/heads/old {c}\n");
        let revs = repo.pre_push_revs(None, &only_old).unwrap();
        assert_eq!(revs.args().collect::<Vec<_>>(), ["--end-of-options", c_b.as_str()]);
        assert!(repo.pre_push_revs(None, "").unwrap().is_empty());
        let hostile = format!("refs/heads/x --output=/tmp/x refs/heads/x {z}\n");
        assert!(repo.pre_push_revs(None, &hostile).is_err());
    }
}
