//! `sidekey-agent revoke (--secret NAME | --value-stdin | --fingerprint HEX) [--socket PATH]`:
//! a responder's way to `POST /v1/revoke`. The leaked value comes from stdin so that it never
//! appears in a process list or a shell history; it is sent to the agent and zeroized.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;
use sidekey::api::{RevokeAnswer, RevokeRequest};
use zeroize::Zeroizing;

use super::get::request;

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
    let body = Zeroizing::new(serde_json::to_vec(&request_body)?);
    drop(request_body);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, answer) = runtime.block_on(request(socket, "POST", "/v1/revoke", Some(body)))?;
    if !status.is_success() && status != hyper::StatusCode::BAD_GATEWAY {
        let message = serde_json::from_slice::<sidekey::api::ErrorBody>(&answer)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("the agent answered {status}"));
        anyhow::bail!("revoke: {message}");
    }
    let answer: RevokeAnswer = serde_json::from_slice(&answer).context("the agent's answer is not JSON")?;
    println!("{}", serde_json::to_string(&answer)?);
    if !answer.revoked {
        anyhow::bail!("{}: not revoked: {}", answer.secret, answer.detail);
    }
    Ok(())
}
