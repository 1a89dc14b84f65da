//! `sidekey-agent completions SHELL` and `sidekey-agent man [--dir DIR]`: the shell completion
//! script and the manual pages, generated from the same clap definition as `--help`
//! (clap_complete, clap_mangen), so they cannot drift from it.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::Cli;

/// Prints the completion script for `shell`. (Generated into memory first: clap_complete
/// panics on a write error such as a closed pipe.)
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sidekey-agent", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script")
}

/// Prints the top page, or writes every page (one per subcommand) into `dir`.
pub fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = std::io::stdout().lock();
            page(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("writing the manual page")
        }
        Some(dir) => write_pages(cmd, dir).with_context(|| format!("{}: cannot write manual pages", dir.display())),
    }
}

/// A page dated with the commit the binary was built from (no date outside git).
fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).date(env!("SIDEKEY_COMMIT_DATE"))
}

/// `cmd`'s page and, recursively, one per visible subcommand, named `sidekey-agent-SUB.1`.
fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    write_tree(cmd, dir)
}

fn write_tree(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_tree(sub, dir)?;
    }
    page(cmd).generate_to(dir).map(drop)
}
