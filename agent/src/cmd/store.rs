//! `sidekey-agent store set --config FILE NAME`: stdin → the local store.

use std::io::Read;
use std::path::Path;

use sidekey::config::{BackendConfig, SecretSource};
use sidekey::{SecretData, SecretName, SecretString};
use zeroize::Zeroizing;

use super::UsageError;
use crate::backend::local::Local;

pub fn set(config_path: &Path, name: &str) -> anyhow::Result<()> {
    let config = sidekey::config::load(config_path)?;
    let spec = config.secrets.get(&SecretName::new(name)).ok_or_else(|| {
        UsageError(format!(
            "{}: no secret named {name:?} (secrets.{name} is not defined)",
            config_path.display()
        ))
    })?;
    if spec.source != SecretSource::LocalStatic {
        return Err(UsageError(format!(
            "{}: secrets.{name} is of kind {:?}; only \"local.static\" values can be set",
            config_path.display(),
            spec.source.kind_name()
        ))
        .into());
    }
    let BackendConfig::Local(local) = &config.backends[&spec.backend] else {
        unreachable!("validation ties local.static to a local backend")
    };
    let mut raw = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| UsageError(format!("stdin is not UTF-8 text: {e}")))?;
    let data = match SecretData::from_json(raw.trim()) {
        Ok(map) => map,
        Err(_) => {
            let value = raw
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&raw);
            if value.is_empty() {
                return Err(UsageError("no value on stdin".into()).into());
            }
            SecretData::single("value", SecretString::from(value))
        }
    };
    let fields = data.field_names().join(", ");
    Local::open(local)?.set_static(&SecretName::new(name), data)?;
    eprintln!("stored {name} (fields: {fields}) in {}", local.path.display());
    Ok(())
}
