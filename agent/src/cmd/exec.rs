//! `sidekey-agent exec [--socket PATH] --env VAR=SECRET[.FIELD]... [--on-change ACTION]
//! [--grace D] -- COMMAND [ARG...]`: a client of a running agent that runs COMMAND with
//! secrets in its environment and keeps them current, for apps that cannot call the socket.
//!
//! The life of it: read every secret once (any error names the secret or the agent, and
//! nothing is started); render the variables (`env`); start the command (`child`); then one
//! long-poll per distinct secret feeds this loop, together with the signals `exec` receives
//! and the command's exit. A new version that changes a variable restarts the command
//! (SIGTERM, `--grace`, SIGKILL, start with the new values), signals it, or is ignored, as
//! `--on-change` says. When the agent cannot be reached the command keeps running with what
//! it has and each watcher retries, 1 s doubling to 30 s; stderr says so once per outage and
//! again when the agent answers. `exec` exits with the command's status.
//!
//! Values go from the agent's answer into the command's environment and nowhere else:
//! messages name variables, secrets, fields and versions only.

mod child;
mod env;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::Signal;
use sidekey_client::{Client, Error, Secret};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::child::{Child, Placement};
use self::env::{Binding, Env};
use crate::cli::{EnvArg, OnChange};

/// What the command line asked for.
pub struct Plan {
    /// The `--env` arguments, in order.
    pub env: Vec<EnvArg>,
    /// What a changed value does.
    pub on_change: OnChange,
    /// How long a restart waits between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The agent's socket.
    pub socket: PathBuf,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// The signals passed on to the command.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How long one long-poll asks to wait: the agent's longest (`server::secrets::MAX_WAIT`).
const WAIT: Duration = Duration::from_secs(300);

/// The longest pause between two attempts to reach the agent.
const MAX_RETRY: Duration = Duration::from_secs(30);

pub fn exec(plan: Plan) -> anyhow::Result<()> {
    // It holds values: no other process of this user may read its memory. (The command's
    // execve makes it dumpable again; its environment is readable by its user, as any is.)
    nix::sys::prctl::set_dumpable(false).context("cannot mark the process non-dumpable")?;
    let mut vars = BTreeSet::new();
    if let Some(twice) = plan.env.iter().find(|a| !vars.insert(a.var.as_str())) {
        return Err(super::UsageError(format!("--env {}: the variable is given twice", twice.var)).into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(run(plan))? {
        0 => Ok(()),
        code => Err(super::Exit(code).into()),
    }
}

/// What the loop hears about.
enum Event {
    /// A signal sent to `exec`.
    Signal(Signal),
    /// A secret's value as the agent serves it now (a new version, or the first answer after
    /// a failure).
    Value { name: String, secret: Box<Secret> },
    /// A watcher could not read its secret; it retries by itself.
    Failed { name: String, error: Error },
}

async fn run(plan: Plan) -> anyhow::Result<u8> {
    let client = Client::new(&plan.socket);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    // Handlers first: from here on a SIGTERM is ours to pass on, not our death.
    listen(&events_tx)?;

    let bindings = env::bind(&plan.env, &readable(&client, &plan.env).await?);
    let mut held: BTreeMap<String, Secret> = BTreeMap::new();
    for b in &bindings {
        if !held.contains_key(&b.secret) {
            let secret = client.secret(&b.secret).await.map_err(|e| not_started(&b.secret, e))?;
            held.insert(b.secret.clone(), secret);
        }
    }
    let env = env::render(&bindings, |n| held.get(n).map(|s| &s.data))
        .map_err(|m| anyhow::anyhow!("{m}; nothing was started"))?;

    let placement = Placement::here();
    let child = match Child::spawn(&plan.command, &env, placement) {
        Ok(child) => child,
        Err(e) => {
            say(&e.message);
            return Ok(e.code);
        }
    };
    let program = plan.command[0].to_string_lossy().into_owned();
    let from: Vec<String> = bindings.iter().map(describe).collect();
    say(&format!("started {program} (pid {}): {}", child.pid(), from.join(", ")));
    if plan.on_change != OnChange::None {
        for (name, secret) in &held {
            tokio::spawn(watch(client.clone(), name.clone(), secret.version, events_tx.clone()));
        }
    }
    drop(events_tx);

    let mut supervisor = Supervisor {
        plan,
        program,
        placement,
        bindings,
        held,
        env,
        child,
        restart: None,
        stopping: false,
        failing: BTreeSet::new(),
        said: BTreeSet::new(),
    };
    supervisor.supervise(&mut events).await
}

/// `VAR from SECRET.FIELD`, for the start line.
fn describe(b: &Binding) -> String {
    match &b.field {
        Some(field) => format!("{} from {}.{field}", b.var, b.secret),
        None => format!("{} from {}", b.var, b.secret),
    }
}

/// One line on stderr, which the command shares.
fn say(message: &str) {
    eprintln!("sidekey-agent exec: {message}");
}

/// Why the command was not started, naming the secret and the agent's reason.
fn not_started(name: &str, e: Error) -> anyhow::Error {
    match e {
        Error::Agent { .. } => anyhow::anyhow!("secret {name}: {e}; nothing was started"),
        other => anyhow::anyhow!("{other}; nothing was started"),
    }
}

/// The names this caller may read, for splitting `SECRET.FIELD` when names have dots; asked
/// only when a spec has a dot. An agent that refuses the list answers nothing: each secret's
/// own read then says why.
async fn readable(client: &Client, args: &[EnvArg]) -> anyhow::Result<Vec<String>> {
    if !args.iter().any(|a| a.spec.contains('.')) {
        return Ok(Vec::new());
    }
    match client.secrets().await {
        Ok(list) => Ok(list.secrets.into_iter().map(|s| s.name).collect()),
        Err(Error::Agent { .. }) => Ok(Vec::new()),
        Err(e) => Err(anyhow::anyhow!("{e}; nothing was started")),
    }
}

/// Turns the forwarded signals into events.
fn listen(events: &mpsc::UnboundedSender<Event>) -> std::io::Result<()> {
    for sig in FORWARDED {
        let mut stream = signal(SignalKind::from_raw(sig as i32))?;
        let events = events.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if events.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

/// Follows one secret: long-polls past `version`; after a failure, a plain read (a restarted
/// agent may number its versions anew) once the retry delay has passed.
async fn watch(client: Client, name: String, mut version: u64, events: mpsc::UnboundedSender<Event>) {
    let mut failures = 0u32;
    loop {
        let asked = Instant::now();
        let answer = if failures == 0 {
            client.secret_after(&name, version, WAIT).await
        } else {
            client.secret(&name).await.map(Some)
        };
        let event = match answer {
            Ok(Some(secret)) => {
                failures = 0;
                version = secret.version;
                Event::Value {
                    name: name.clone(),
                    secret: Box::new(secret),
                }
            }
            Ok(None) => {
                // Nothing changed. Early only from a stopping agent: do not ask it in a loop.
                if asked.elapsed() < WAIT / 2 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
            Err(error) => {
                let delay = retry_delay(failures);
                failures = failures.saturating_add(1);
                if events
                    .send(Event::Failed {
                        name: name.clone(),
                        error,
                    })
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// The pause after failure number `failures` (0-based): 1 s doubling to 30 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5)).min(MAX_RETRY)
}

/// The loop's state: the running command and what it was given.
struct Supervisor {
    plan: Plan,
    program: String,
    placement: Placement,
    bindings: Vec<Binding>,
    /// The last value read of each secret.
    held: BTreeMap<String, Secret>,
    /// The environment the next start gets (the running command may hold an older one).
    env: Env,
    child: Child,
    /// A restart under way: when SIGKILL is due (`None` once sent).
    restart: Option<Option<Instant>>,
    /// A stop was passed on: no more restarts; exit with the command.
    stopping: bool,
    /// Secrets whose watcher is failing now.
    failing: BTreeSet<String>,
    /// What this outage has already said.
    said: BTreeSet<String>,
}

impl Supervisor {
    /// Runs until the command exits on its own (or after a stop); answers `exec`'s status.
    async fn supervise(&mut self, events: &mut mpsc::UnboundedReceiver<Event>) -> anyhow::Result<u8> {
        loop {
            let kill_at = self.restart.flatten();
            tokio::select! {
                status = self.child.wait() => {
                    let status = status?;
                    if self.restart.take().is_none() || self.stopping {
                        return Ok(child::exit_code(status));
                    }
                    match Child::spawn(&self.plan.command, &self.env, self.placement) {
                        Ok(child) => self.child = child,
                        Err(e) => {
                            say(&e.message);
                            return Ok(e.code);
                        }
                    }
                    say(&format!("restarted {} (pid {}) with the new values", self.program, self.child.pid()));
                }
                Some(event) = events.recv() => self.on(event),
                () = sleep_until(kill_at) => {
                    say(&format!(
                        "{} did not exit within {:?} of SIGTERM: sending SIGKILL",
                        self.program, self.plan.grace
                    ));
                    self.child.signal(Signal::SIGKILL);
                    self.restart = Some(None);
                }
            }
        }
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::Signal(sig) => {
                if self.placement.forwards(sig) {
                    self.child.signal(sig);
                    if matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) {
                        self.stopping = true;
                    }
                }
            }
            Event::Value { name, secret } => {
                self.answered(&name);
                self.changed(name, *secret);
            }
            Event::Failed { name, error } => self.failed(name, &error),
        }
    }

    /// A secret's current value: acted on when it changes a variable.
    fn changed(&mut self, name: String, secret: Secret) {
        let Some(old) = self.held.get(&name) else { return };
        let (from, to) = (old.version, secret.version);
        let same = old.data == secret.data;
        self.held.insert(name.clone(), secret);
        if same || self.stopping {
            return;
        }
        let env = match env::render(&self.bindings, |n| self.held.get(n).map(|s| &s.data)) {
            Ok(env) if env == self.env => return, // a field the command does not use
            Ok(env) => env,
            Err(m) => {
                say(&format!(
                    "version {to} of {name}: {m}; {} keeps the values it has",
                    self.program
                ));
                return;
            }
        };
        self.env = env;
        let what = format!("secret {name} changed (version {from} → {to})");
        match self.plan.on_change {
            OnChange::Restart if self.restart.is_some() => {
                say(&format!("{what} during the restart: the new {} gets it", self.program));
            }
            OnChange::Restart => {
                say(&format!(
                    "{what}: restarting {} (SIGTERM, SIGKILL after {:?})",
                    self.program, self.plan.grace
                ));
                self.child.signal(Signal::SIGTERM);
                self.restart = Some(Some(Instant::now() + self.plan.grace));
            }
            OnChange::Signal(sig) => {
                say(&format!("{what}: sending {sig} to {}", self.program));
                self.child.signal(sig);
            }
            OnChange::None => {}
        }
    }

    /// A watcher failed: said once per outage (per reason, for the agent's refusals).
    fn failed(&mut self, name: String, error: &Error) {
        let (key, line) = match error {
            Error::Agent { .. } => (format!("secret {name}: {error}"), format!("secret {name}: {error}")),
            other => ("unreachable".to_owned(), other.to_string()),
        };
        self.failing.insert(name);
        if self.said.insert(key) {
            say(&format!(
                "{line}; {} keeps running with the values it has; retrying every 1 s, doubling to 30 s",
                self.program
            ));
        }
    }

    /// A watcher has an answer again: the outage is over when none is failing.
    fn answered(&mut self, name: &str) {
        if self.failing.remove(name) && self.failing.is_empty() {
            self.said.clear();
            say(&format!(
                "the agent at {} answers again; watching {} secret(s)",
                self.plan.socket.display(),
                self.held.len()
            ));
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_come_after_1_s_doubling_to_30_s() {
        let delays: Vec<u64> = (0..8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }
}
