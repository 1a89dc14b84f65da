//! A tiny HTTP/1.1 client over a Unix socket, so tests can also send what no real client
//! would (malformed requests) and see status codes as they are.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Response {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `raw` bytes as they are and reads the whole answer (the server closes after it).
pub fn raw(socket: &Path, raw: &[u8]) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(raw)?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET path` with `Connection: close`.
pub fn get(socket: &Path, path: &str) -> std::io::Result<Response> {
    raw(
        socket,
        format!("GET {path} HTTP/1.1\r\nHost: sidekey\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `POST path` with a JSON body and `Connection: close`.
pub fn post(socket: &Path, path: &str, json: &str) -> std::io::Result<Response> {
    raw(
        socket,
        format!(
            "POST {path} HTTP/1.1\r\nHost: sidekey\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
        .as_bytes(),
    )
}
