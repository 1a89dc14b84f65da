//! `sidekey-agent check [--config FILE]`: validate and stop before binding anything. Settings a
//! vault backend took from the environment (`VAULT_ADDR`, `BAO_CACERT`, ...) because the config
//! leaves them out are listed after the summary, one line each, so that what `run` would use
//! is visible.

use sidekey::config::BackendConfig;
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
    for (name, backend) in &config.backends {
        let BackendConfig::Vault(vault) = backend else { continue };
        for setting in &vault.from_env {
            println!(
                "{}: backends.{name}.{} from {}: {}",
                config.file.display(),
                setting.key,
                setting.var,
                setting.value
            );
        }
    }
    Ok(())
}
