//! The agent's socket API as the scanner uses it: every call to a `sidekey-agent` goes through
//! [`request`] (one HTTP/1.1 request on the Unix socket, `Connection: close`). The fingerprint
//! set ([`fingerprints`]) and revocation by fingerprint (`POST /v1/revoke`, in
//! [`crate::response`]) are its only callers; no value is ever sent, fingerprints only.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// How long the agent may take to answer (a revocation waits for the issuer).
const TIMEOUT: Duration = Duration::from_secs(90);

/// One request on the agent's Unix socket: status and body.
pub fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: sidekey\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the agent's answer has no header end")?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the agent's answer has no status")?;
    let body = answer[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        bail!("the agent answered with a chunked body, which this client does not read");
    }
    Ok((status, body))
}

/// `GET /v1/fingerprints`: the broker's fingerprint set.
pub fn fingerprints(socket: &Path) -> anyhow::Result<sidekey::api::FingerprintSet> {
    let (status, body) = request(socket, "GET", "/v1/fingerprints", b"")
        .with_context(|| format!("--agent-socket {}: cannot ask the agent", socket.display()))?;
    if status != 200 {
        let why = serde_json::from_slice::<sidekey::api::ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("status {status}"));
        bail!(
            "--agent-socket {}: the agent refused the fingerprint set: {why}",
            socket.display()
        );
    }
    serde_json::from_slice(&body).context("the agent's fingerprint set is not the expected JSON")
}
