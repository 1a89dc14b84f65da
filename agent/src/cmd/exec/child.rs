//! The command `exec` runs: started directly (no shell) with its environment, signalled, and
//! its exit status turned into `exec`'s.
//!
//! Where it runs: in a process group of its own. The signals that stop it (SIGTERM, SIGINT,
//! SIGQUIT, SIGKILL) go to that whole group, so a wrapper script's children stop with it and a
//! restart leaves nothing behind (systemd's stop does the same); any other signal (SIGHUP,
//! SIGUSR1, `--on-change signal=SIG`) goes to the command alone, the process whose reload
//! protocol it is (as `systemctl reload` signals the main pid). When `exec` runs in the
//! foreground of a terminal, the command stays in `exec`'s group instead, so it keeps the
//! terminal (it can read it; Ctrl-C and Ctrl-Z reach it from the terminal itself, once), and
//! every signal goes to its pid.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::env::Env;

/// Whether the command gets a group of its own (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A process group of its own, signalled as a whole.
    OwnGroup,
    /// `exec`'s own group, which holds the terminal; signalled by pid.
    Terminal,
}

impl Placement {
    /// `Terminal` when stdin is a terminal whose foreground group is ours, else `OwnGroup`.
    pub fn here() -> Placement {
        match nix::unistd::tcgetpgrp(std::io::stdin()) {
            Ok(foreground) if foreground == nix::unistd::getpgrp() => Placement::Terminal,
            _ => Placement::OwnGroup,
        }
    }

    /// Whether a signal sent to `exec` should be passed on. On a terminal, SIGINT and SIGQUIT
    /// come from the keyboard to the whole foreground group: the command has had its own.
    pub fn forwards(self, signal: Signal) -> bool {
        !(self == Placement::Terminal && matches!(signal, Signal::SIGINT | Signal::SIGQUIT))
    }
}

/// A command that could not be started, with the status a shell would exit with.
#[derive(Debug)]
pub struct NotStarted {
    /// 127 when there is no such program, else 126.
    pub code: u8,
    /// What happened, naming the program.
    pub message: String,
}

/// The running command.
pub struct Child {
    process: tokio::process::Child,
    pid: Pid,
    placement: Placement,
}

impl Child {
    /// Starts `command` (program and arguments) with `env` added to `exec`'s environment.
    pub fn spawn(command: &[OsString], env: &Env, placement: Placement) -> Result<Child, NotStarted> {
        let (program, args) = command.split_first().expect("clap requires a command");
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args);
        for (var, value) in &env.0 {
            // std copies these into the child's environment block; they leave us here.
            cmd.env(var, value.expose());
        }
        if placement == Placement::OwnGroup {
            cmd.process_group(0);
        }
        let process = cmd.spawn().map_err(|e| NotStarted {
            code: if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            },
            message: format!("cannot run {}: {e}", program.to_string_lossy()),
        })?;
        let pid = process.id().expect("a process just spawned has a pid");
        Ok(Child {
            process,
            pid: Pid::from_raw(pid as i32),
            placement,
        })
    }

    /// Its process id (also its group's id, in its own group).
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Sends `signal`: a stop signal to its group (unless on a terminal), any other to it
    /// alone. A process or group already gone is fine.
    pub fn signal(&self, signal: Signal) {
        let stop = matches!(
            signal,
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT | Signal::SIGKILL
        );
        let sent = match self.placement {
            Placement::OwnGroup if stop => killpg(self.pid, signal),
            _ => kill(self.pid, signal),
        };
        if let Err(e) = sent.map_err(std::io::Error::from) {
            if e.raw_os_error() != Some(nix::libc::ESRCH) {
                eprintln!("sidekey-agent exec: cannot send {signal} to pid {}: {e}", self.pid);
            }
        }
    }

    /// Waits for it to exit (cancel safe: a `select!` may drop this and call it again).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.process.wait().await
    }
}

/// `exec`'s exit status for its command's: the same code, or 128+N when killed by signal N.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => (128 + signal).min(255) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_pass_through_and_signals_become_128_plus_n() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(Signal::SIGTERM as i32)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(Signal::SIGKILL as i32)), 137);
    }

    #[test]
    fn on_a_terminal_keyboard_signals_are_not_sent_twice() {
        assert!(!Placement::Terminal.forwards(Signal::SIGINT));
        assert!(Placement::Terminal.forwards(Signal::SIGTERM));
        assert!(Placement::OwnGroup.forwards(Signal::SIGINT));
    }
}
