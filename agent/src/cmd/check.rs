//! `sidekey-agent check [--config FILE]`: validate and stop before binding anything.

use sidekey::Config;

pub fn check(config: Config) -> anyhow::Result<()> {
    println!(
        "{}: ok ({} backends, {} secrets, {} access rules, {} files)",
        config.file.display(),
        config.backends.len(),
        config.secrets.len(),
        config.access.len(),
        config.files.len()
    );
    Ok(())
}
