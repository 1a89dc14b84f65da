//! `sidekey-agent revoke (--secret NAME | --value-stdin | --fingerprint HEX) [--socket PATH]`:
//! a responder's way to `POST /v1/revoke`. The leaked value comes from stdin so that it never
//! appears in a process list or a shell history; it is sent to the agent and zeroized.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;
use sidekey::api::RevokeRequest;
use sidekey_client::blocking::Client;
use zeroize::Zeroizing;

pub fn revoke(
    secret: Option<String>,
    value_stdin: bool,
    fingerprint: Option<String>,
    socket: &Path,
) -> anyhow::Result<()> {
    let request_body = match (secret, fingerprint, value_stdin) {
        (Some(name), _, _) => RevokeRequest::Secret(name),
        (None, Some(print), _) => RevokeRequest::Fingerprint(print),
        (None, None, _) => {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the leaked value from stdin")?;
            let trimmed = Zeroizing::new(text.strip_suffix('\n').unwrap_or(&text).to_owned());
            if trimmed.is_empty() {
                return Err(super::UsageError("--value-stdin: stdin was empty".into()).into());
            }
            RevokeRequest::Value(trimmed)
        }
    };
    let answer = Client::new(socket)?.revoke(&request_body).map_err(|e| match e {
        sidekey_client::Error::Agent { .. } => anyhow::anyhow!("revoke: {e}"),
        other => other.into(),
    })?;
    drop(request_body);
    println!("{}", serde_json::to_string(&answer)?);
    if !answer.revoked {
        anyhow::bail!("{}: not revoked: {}", answer.secret, answer.detail);
    }
    Ok(())
}
