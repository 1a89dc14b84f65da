//! `sidekey-agent get NAME [--field F] [--socket PATH]`: a client of the agent's socket.

use std::io::Write;
use std::path::Path;

use sidekey_client::blocking::Client;
use sidekey_client::Error;

pub fn get(name: &str, field: Option<&str>, socket: &Path) -> anyhow::Result<()> {
    let secret = Client::new(socket)?.secret(name).map_err(|e| match e {
        Error::Agent { .. } => anyhow::anyhow!("{name}: {e}"),
        other => other.into(),
    })?;
    let mut out = std::io::stdout().lock();
    match field {
        None => {
            out.write_all(secret.body())?;
            out.write_all(b"\n")?;
        }
        Some(field) => {
            let value = secret
                .data
                .field(field)
                .ok_or_else(|| anyhow::anyhow!("{name} has no field {field:?}"))?;
            out.write_all(value.expose().as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}
