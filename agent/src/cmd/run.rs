//! `sidekey-agent run [--config FILE] [--log-format text|json] [--once [--timeout D]]`: the
//! daemon's life — logging, load, build, serve, tell systemd when ready, wait for
//! SIGTERM/SIGINT, drain; SIGHUP reopens the audit log. With `--once`: the same build and
//! tasks without listeners, waiting for everything to be delivered instead of a signal.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::app::{App, Mode};
use crate::cli::LogFormat;
use crate::notify::Notifier;
use crate::ready::Progress;
use crate::scheduler::DRAIN;

/// How `run` was asked to run.
pub struct How {
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// No `--config`: the embedded development config.
    pub embedded: bool,
    /// `--once`, with its `--timeout`.
    pub once: Option<Duration>,
}

/// No core dumps and no ptrace by other processes of the same user: a dump or an attached
/// debugger would hold every served value.
fn harden() -> anyhow::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context("cannot disable core dumps (RLIMIT_CORE)")?;
    nix::sys::prctl::set_dumpable(false).context("cannot mark the process non-dumpable")?;
    Ok(())
}

/// The soft open-file limit raised to the hard one: each listener's share of it is what caps
/// its connections (server.rs), so the agent takes what it is allowed.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

pub fn run(config: sidekey::Config, how: How) -> anyhow::Result<()> {
    harden()?;
    raise_fd_limit();
    logging(how.log_format);
    if how.embedded {
        // First, and loud, as `vault server -dev` does: this config must never run by accident.
        tracing::warn!(
            "running the embedded development config (config/dev.toml): not for production; pass --config FILE"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidekey-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Before anything else: a SIGHUP (logrotate, `systemctl reload`) must never kill the agent.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot install a SIGHUP handler")?;
        // AWS_TOKEN: the AWS Secrets Manager Agent's token variable (the value or file://PATH).
        let aws_token = std::env::var("AWS_TOKEN").ok();
        match how.once {
            None => serve(config, aws_token.as_deref(), hangups).await,
            Some(timeout) => once(config, aws_token.as_deref(), hangups, timeout).await,
        }
    })
}

/// The daemon: serve until SIGTERM/SIGINT. Under systemd (`NOTIFY_SOCKET`), `READY=1` once
/// every secret is served and every `[[file]]` written — the socket is bound before that —
/// and `STOPPING=1` when the stop begins; never `READY=1` after `STOPPING=1`.
async fn serve(
    config: sidekey::Config,
    aws_token: Option<&str>,
    hangups: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let notifier = Notifier::from_env();
    let app = App::build(config, aws_token, Mode::Serve).await?;
    tokio::spawn(reopen_on_hangup(hangups, app.audit_log(), app.stopping()));
    let running = app.start();
    let mut readiness = running.readiness();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    tokio::select! {
        () = &mut signal => {}
        (secrets, files) = readiness.ready() => {
            tracing::info!(secrets, files, "ready: every secret served and every file written");
            if let Some(n) = &notifier {
                n.send(&format!("READY=1\nSTATUS=serving {secrets} secrets, {files} files written"));
            }
            signal.await;
        }
    }
    if let Some(n) = &notifier {
        n.send("STOPPING=1\nSTATUS=stopping");
    }
    running.stop(DRAIN).await
}

/// `run --once`: build without listeners, wait until every secret is served and every file
/// delivered (or a file failed for good, or `timeout` passed, or a signal came), stop, and
/// answer what is missing as the error (exit 1).
async fn once(
    config: sidekey::Config,
    aws_token: Option<&str>,
    hangups: tokio::signal::unix::Signal,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let limit = humantime::format_duration(timeout);
    let app = tokio::time::timeout_at(deadline, App::build(config, aws_token, Mode::Once))
        .await
        .map_err(|_| anyhow::anyhow!("run --once: the backends did not start within {limit}"))??;
    tokio::spawn(reopen_on_hangup(hangups, app.audit_log(), app.stopping()));
    let running = app.start();
    let mut readiness = running.readiness();
    let outcome = tokio::select! {
        progress = readiness.settled() => Ok(progress),
        () = tokio::time::sleep_until(deadline) => Err(format!("not done within {limit}")),
        () = shutdown_signal() => Err("interrupted".to_owned()),
    };
    let result = match outcome {
        Ok(Progress::Ready { secrets, files }) => {
            tracing::info!(
                secrets,
                files,
                "run --once: every secret fetched and every file written"
            );
            Ok(())
        }
        Ok(failed) => Err(format!("run --once failed: {}", failed.missing())),
        Err(why) => Err(format!("run --once {why}: {}", readiness.check().missing())),
    };
    // Done: nothing is in flight. Failed: a file still being retried is not waited for.
    let drain = if result.is_ok() { DRAIN } else { Duration::ZERO };
    running.stop(drain).await?;
    result.map_err(|e| anyhow::anyhow!(super::one_line(&e)))
}

/// Log lines to stderr, as text or one JSON object per line. Our own logs at info; the HTTP
/// client crates only when something is wrong; RUST_LOG overrides both.
fn logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,vaultrs=warn,rustify=error,hyper=warn,reqwest=warn,aws_config=warn,aws_smithy_runtime=warn,aws_runtime=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// SIGHUP: the audit log is reopened (after logrotate moved it) and the agent keeps serving.
/// Ends when the agent stops, so that the audit log's last handle can go.
async fn reopen_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    audit: crate::audit_log::AuditLog,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            Some(()) = hangups.recv() => {
                tracing::info!(signal = "SIGHUP", "reopening the audit log; serving on");
                audit.reopen();
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler cannot fail");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler cannot fail");
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = which,
        "stopping: no new connections; finishing requests in flight"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn hardening_leaves_no_core_and_no_dumpable_process() {
        super::harden().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
        let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!((soft, hard), (0, 0));
    }
}
