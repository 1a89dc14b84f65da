//! The one client of the sidekey agent's HTTP API on its Unix socket, used by
//! `sidekey-agent get` and `revoke`, by `sidekey-scan --agent-socket`, and by anything else that
//! talks to a running agent. Built on hyper's HTTP/1.1 client; every answer is typed with the
//! core's wire types ([`sidekey::api`]), so the agent and its clients cannot drift apart.
//!
//! Secret values arrive in zeroizing memory: [`Secret::data`] is a [`SecretData`] and the raw
//! answer is kept in a `Zeroizing` buffer. Errors never hold a value: an agent's refusal carries
//! its `{"error": ...}` text (which the agent writes without values) and its status.
//!
//! [`Client`] is async (tokio); [`blocking::Client`] wraps it for synchronous programs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use sidekey::api::{
    ErrorBody, FingerprintMatches, FingerprintQuery, FingerprintSet, Health, LeaseInfo, RevokeAnswer, RevokeRequest,
    SecretList,
};
use sidekey::SecretData;
use zeroize::Zeroizing;

/// The socket a client uses when none is given (also `SIDEKEY_SOCKET` in the CLIs).
pub const DEFAULT_SOCKET: &str = "/run/sidekey/agent.sock";

/// How long one request may take, unless the request itself waits longer (a long-poll).
const TIMEOUT: Duration = Duration::from_secs(90);

/// Bytes of a secret name sent as they are in a path segment; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Why a call to the agent failed. Never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answers at the socket (no agent, wrong path, no permission on the socket).
    #[error("cannot connect to the agent at {}: {source}", socket.display())]
    Connect {
        /// The socket tried.
        socket: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The connection broke or the answer was not HTTP.
    #[error("the agent at {} closed the connection: {source}", socket.display())]
    Http {
        /// The socket used.
        socket: PathBuf,
        /// hyper's reason.
        source: hyper::Error,
    },
    /// The agent answered with an error (`{"error": ...}`): refused, unknown, not yet served.
    #[error("{message}")]
    Agent {
        /// The HTTP status.
        status: StatusCode,
        /// The agent's words (or the status when the body said nothing).
        message: String,
    },
    /// The answer was not the JSON this client expects (a different agent version?).
    #[error("the agent's answer to {path} is not the expected JSON: {reason}")]
    Decode {
        /// The route asked.
        path: String,
        /// What was wrong and where ([`sidekey::api::json_error`]: never a value of the answer).
        reason: String,
    },
    /// No answer in time.
    #[error("the agent at {} did not answer within {timeout:?}", socket.display())]
    Timeout {
        /// The socket used.
        socket: PathBuf,
        /// How long it waited.
        timeout: Duration,
    },
}

impl Error {
    /// The agent's HTTP status, when it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Agent { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One served secret, as `GET /v1/secrets/{name}` answers it.
pub struct Secret {
    /// The secret's name.
    pub name: String,
    /// Increases each time the served value changes.
    pub version: u64,
    /// Lease details, for leased secrets.
    pub lease: Option<LeaseInfo>,
    /// RFC 3339 time the value was fetched from its source.
    pub fetched_at: String,
    /// `backend/kind`, e.g. `vault/vault.database`.
    pub source: String,
    /// The value (zeroizing; fields through [`SecretData::field`]).
    pub data: SecretData,
    /// The answer as the agent sent it.
    body: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// The agent's JSON answer, byte for byte (it holds the value).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("lease", &self.lease)
            .field("source", &self.source)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// The wire shape of [`Secret`] (`data` kept as a map so its strings can be zeroed).
#[derive(serde::Deserialize)]
struct SecretWire {
    name: String,
    version: u64,
    lease: Option<LeaseInfo>,
    fetched_at: String,
    source: String,
    data: serde_json::Map<String, serde_json::Value>,
}

/// A client of the agent listening on one Unix socket. Each call opens its own connection,
/// so a `Client` is cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of the agent at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            timeout: TIMEOUT,
        }
    }

    /// The same client with another per-request time limit (default 90 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /v1/secrets`: the secrets this caller may read.
    pub async fn secrets(&self) -> Result<SecretList, Error> {
        self.json(Method::GET, "/v1/secrets", None).await
    }

    /// `GET /v1/secrets/{name}`: the served value.
    pub async fn secret(&self, name: &str) -> Result<Secret, Error> {
        let path = secret_path(name);
        let (status, body) = self.call(Method::GET, &path, None, self.timeout).await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        decode_secret(&path, body)
    }

    /// `GET /v1/secrets/{name}?wait=VERSION&timeout=WAIT`: the value once its version is no
    /// longer `version`, or `None` when `wait` passes with no change (the agent caps `wait`).
    pub async fn secret_after(&self, name: &str, version: u64, wait: Duration) -> Result<Option<Secret>, Error> {
        let path = format!("{}?wait={version}&timeout={}ms", secret_path(name), wait.as_millis());
        let (status, body) = self.call(Method::GET, &path, None, wait + self.timeout).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        decode_secret(&path, body).map(Some)
    }

    /// `GET /v1/health`. A degraded agent answers 503 with the same JSON: that is an answer
    /// here, not an error.
    pub async fn health(&self) -> Result<Health, Error> {
        let path = "/v1/health";
        let (status, body) = self.call(Method::GET, path, None, self.timeout).await?;
        match decode(path, &body) {
            Ok(health) => Ok(health),
            Err(e) if status.is_success() => Err(e),
            Err(_) => Err(refusal(status, &body)),
        }
    }

    /// `GET /v1/fingerprints`: every fingerprint this caller's grants cover.
    pub async fn fingerprints(&self) -> Result<FingerprintSet, Error> {
        self.json(Method::GET, "/v1/fingerprints", None).await
    }

    /// `POST /v1/fingerprints/match`: which of `fingerprints` the broker issued.
    pub async fn match_fingerprints(&self, fingerprints: Vec<String>) -> Result<FingerprintMatches, Error> {
        let body = serde_json::to_vec(&FingerprintQuery { fingerprints }).expect("plain JSON");
        self.json(Method::POST, "/v1/fingerprints/match", Some(Zeroizing::new(body)))
            .await
    }

    /// `POST /v1/revoke`. An attempt that failed at the issuer (502 with an answer whose
    /// action is `failed`) is an answer here, not an error; a refusal is an error.
    pub async fn revoke(&self, request: &RevokeRequest) -> Result<RevokeAnswer, Error> {
        let path = "/v1/revoke";
        let body = Zeroizing::new(serde_json::to_vec(request).expect("plain JSON"));
        let (status, answer) = self.call(Method::POST, path, Some(body), self.timeout).await?;
        if status.is_success() || status == StatusCode::BAD_GATEWAY {
            if let Ok(answer) = decode::<RevokeAnswer>(path, &answer) {
                return Ok(answer);
            }
        }
        if status.is_success() {
            return decode(path, &answer);
        }
        Err(refusal(status, &answer))
    }

    /// A request whose success is JSON of type `T`; any other status is the agent's refusal.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<T, Error> {
        let (status, answer) = self.call(method, path, body, self.timeout).await?;
        if !status.is_success() {
            return Err(refusal(status, &answer));
        }
        decode(path, &answer)
    }

    /// One request on a new connection: status and body (zeroizing: it may hold a value).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
        limit: Duration,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), Error> {
        tokio::time::timeout(limit, self.exchange(method, path, body))
            .await
            .map_err(|_| Error::Timeout {
                socket: self.socket.clone(),
                timeout: limit,
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), Error> {
        let http = |source| Error::Http {
            socket: self.socket.clone(),
            source,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| Error::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let driver = tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "sidekey");
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        // hyper takes ownership of the bytes it sends; the copy lives only for this request.
        let payload = body.map(|b| Bytes::from(b.to_vec())).unwrap_or_default();
        let request = request
            .body(Full::new(payload))
            .expect("method, path and headers are valid");
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let collected = response.into_body().collect().await.map_err(http)?.to_bytes();
        driver.abort();
        Ok((status, Zeroizing::new(collected.to_vec())))
    }
}

/// `/v1/secrets/{name}` with the name percent-encoded.
fn secret_path(name: &str) -> String {
    format!("/v1/secrets/{}", utf8_percent_encode(name, SEGMENT))
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        path: path.to_owned(),
        reason: sidekey::api::json_error(&e),
    })
}

fn decode_secret(path: &str, body: Zeroizing<Vec<u8>>) -> Result<Secret, Error> {
    let wire: SecretWire = decode(path, &body)?;
    Ok(Secret {
        name: wire.name,
        version: wire.version,
        lease: wire.lease,
        fetched_at: wire.fetched_at,
        source: wire.source,
        data: SecretData::from_map(wire.data),
        body,
    })
}

/// The agent's refusal: its `{"error": ...}` text, else the status.
fn refusal(status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| format!("the agent answered {status}"));
    Error::Agent { status, message }
}

#[cfg(test)]
mod tests;
