//! `sidekey-agent get NAME [--field F] [--socket PATH]`: a client of the agent's socket.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use zeroize::Zeroizing;

pub fn get(name: &str, field: Option<&str>, socket: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, body) = runtime.block_on(request(socket, "GET", &format!("/v1/secrets/{}", encode(name)), None))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<sidekey::api::ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("the agent answered {status}"));
        anyhow::bail!("{name}: {message}");
    }
    let mut out = std::io::stdout().lock();
    match field {
        None => {
            out.write_all(&body)?;
            out.write_all(b"\n")?;
        }
        Some(field) => {
            let answer: serde_json::Value = serde_json::from_slice(&body).context("the agent's answer is not JSON")?;
            let value = answer
                .get("data")
                .and_then(|d| d.get(field))
                .ok_or_else(|| anyhow::anyhow!("{name} has no field {field:?}"))?;
            let text = Zeroizing::new(match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// One request over the Unix socket (`body`: JSON for a POST); answers status and body.
pub async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Zeroizing<Vec<u8>>>,
) -> anyhow::Result<(hyper::StatusCode, Zeroizing<Vec<u8>>)> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("cannot connect to the agent at {}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "sidekey")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.map(|b| b.to_vec()).unwrap_or_default())))?;
    let response = sender
        .send_request(request)
        .await
        .context("the agent closed the connection")?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, Zeroizing::new(body.to_vec())))
}

fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
