//! PostgreSQL's side of the proxy (frontend/backend protocol 3.0): everything that knows the
//! wire format, and nothing else — who may connect, which credential, when a session ends and
//! the relay itself are `session.rs`'s.
//!
//! - The client's opening: `SSLRequest` and `GSSENCRequest` are answered `N` (the Unix socket
//!   needs no encryption), a `CancelRequest` is read for `session.rs` to route, a startup
//!   packet is read and kept (`database`, `application_name`, `options`, ...). Packets are
//!   bounded as the server bounds them (10 000 bytes); anything else ends that connection.
//! - Upstream: `SSLRequest` and TLS as `upstream_tls` says, then the startup packet with
//!   `user` replaced by the served username, and the login the server asks for:
//!   SCRAM-SHA-256 (the server's signature is checked), md5, or a cleartext password — only
//!   over TLS. Messages and SCRAM come from the `postgres-protocol` crate.
//! - After `AuthenticationOk`, the server's messages up to `ReadyForQuery` go to the client
//!   as they are (`BackendKeyData` noted, for cancels); from then on bytes are relayed
//!   without parsing. [`Framing`] only follows the server's message lengths, so that an
//!   ending session gets its `ErrorResponse` (57P01) between two messages.
//!
//! The client never sees an authentication request: the proxy answers `AuthenticationOk`
//! once the server accepted the served credential (the server's own, passed on).

use std::io;

use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::{backend, frontend};
use sidekey::SecretString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::upstream::{self, Mode, Stream, Tls};
use super::{LoggedIn, LoginError, Opening, Refusal};
use sidekey::config::Upstream;

/// The largest startup packet accepted (the server's own `MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: usize = 10_000;
/// The largest server message accepted during the login (a server's greeting is a few
/// hundred bytes; errors and notices a few kilobytes).
const MAX_LOGIN_MESSAGE: usize = 1 << 20;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_3: i32 = 3 << 16;

/// A client's startup packet, as sent (minus `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    /// The protocol minor version it asked for (3.x).
    pub minor: u16,
    /// Its parameters in order, `user` removed (and `database` set to it when absent, as the
    /// server would have defaulted it).
    pub params: Vec<(String, String)>,
    /// Protocol options (`_pq_.*`) it asked for; the proxy speaks 3.0 upstream and declines
    /// them.
    pub declined: Vec<String>,
}

/// The 4-byte process id and secret key of a backend (`BackendKeyData`, `CancelRequest`).
pub type CancelKey = (i32, i32);

/// Why a client's opening was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not what the protocol allows.
    #[error("{0}")]
    Protocol(String),
}

/// PostgreSQL, for [`super::serve`].
pub struct Postgres;

#[async_trait::async_trait]
impl super::Protocol for Postgres {
    type Startup = Startup;
    type Key = CancelKey;
    type Framing = Framing;

    async fn open(&self, client: &mut tokio::net::UnixStream) -> Result<Opening<Startup, CancelKey>, String> {
        open(client).await.map_err(|e| e.to_string())
    }

    fn refusal(&self, refusal: Refusal, message: &str) -> Vec<u8> {
        error_response(sqlstate(refusal), message)
    }

    async fn connect(&self, to: &Upstream, tls: &Tls) -> io::Result<Stream> {
        connect(to, tls).await
    }

    async fn login(
        &self,
        server: &mut Stream,
        startup: &Startup,
        user: &str,
        password: &SecretString,
    ) -> Result<LoggedIn<CancelKey>, LoginError> {
        let encrypted = server.is_tls();
        login(server, encrypted, startup, user, password).await
    }

    async fn cancel(&self, to: &Upstream, tls: &Tls, key: CancelKey) -> io::Result<()> {
        cancel(to, tls, key).await
    }
}

impl super::Framing for Framing {
    fn advance(&mut self, data: &[u8]) {
        Framing::advance(self, data)
    }

    fn at_boundary(&self) -> bool {
        Framing::at_boundary(self)
    }
}

/// Reads what the client opens with, answering `N` to encryption requests on the way.
pub async fn open<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S) -> Result<Opening<Startup, CancelKey>, Malformed> {
    // An SSLRequest and a GSSENCRequest at most once each, then the real packet.
    for _ in 0..3 {
        let packet = read_packet(client).await?;
        let mut body = &packet[..];
        let code = body.get_i32();
        match code {
            SSL_REQUEST | GSSENC_REQUEST if body.is_empty() => {
                client.write_all(b"N").await?;
            }
            CANCEL_REQUEST if body.len() == 8 => {
                return Ok(Opening::Cancel((body.get_i32(), body.get_i32())));
            }
            CANCEL_REQUEST => return Err(Malformed::Protocol("a CancelRequest of the wrong length".into())),
            _ if code & !0xffff == PROTOCOL_3 => return parse_startup(code as u16, body).map(Opening::Session),
            _ => {
                let message = format!(
                    "unsupported frontend protocol {}.{}: the sidekey proxy speaks 3.x",
                    code >> 16,
                    code & 0xffff
                );
                refuse(client, Refusal::Protocol, &message).await;
                return Err(Malformed::Protocol(message));
            }
        }
    }
    Err(Malformed::Protocol("too many encryption requests".into()))
}

/// One length-prefixed packet (without its length), bounded by [`MAX_STARTUP`].
async fn read_packet<S: AsyncRead + Unpin>(client: &mut S) -> Result<Vec<u8>, Malformed> {
    let len = client.read_i32().await?;
    if !(8..=MAX_STARTUP as i32).contains(&len) {
        return Err(Malformed::Protocol(format!(
            "a startup packet of {len} bytes (accepted: 8 to {MAX_STARTUP})"
        )));
    }
    let mut packet = vec![0; len as usize - 4];
    client.read_exact(&mut packet).await?;
    Ok(packet)
}

/// The parameters of a startup packet: `name\0value\0 ... \0`.
fn parse_startup(minor: u16, body: &[u8]) -> Result<Startup, Malformed> {
    let bad = |what: &str| Malformed::Protocol(format!("a startup packet with {what}"));
    fn cstr<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let end = rest.iter().position(|b| *b == 0)?;
        let (s, tail) = rest.split_at(end);
        *rest = &tail[1..];
        Some(s)
    }
    let mut rest = body;
    let mut params: Vec<(String, String)> = Vec::new();
    let mut user = None;
    let mut declined = Vec::new();
    loop {
        let name = cstr(&mut rest).ok_or_else(|| bad("no terminator"))?;
        if name.is_empty() {
            break;
        }
        let value = cstr(&mut rest).ok_or_else(|| bad("a parameter without a value"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("a parameter name that is not UTF-8"))?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| bad("a parameter value that is not UTF-8"))?;
        if params.iter().any(|(n, _)| *n == name) || (name == "user" && user.is_some()) {
            return Err(bad(&format!("parameter {name:?} twice")));
        }
        match name.as_str() {
            "user" => user = Some(value),
            n if n.starts_with("_pq_.") => declined.push(name),
            _ => params.push((name, value)),
        }
    }
    if !rest.is_empty() {
        return Err(bad("bytes after its terminator"));
    }
    if !params.iter().any(|(n, _)| n == "database") {
        if let Some(user) = user {
            // The server defaults the database to the user's name: the one the client gave.
            params.push(("database".to_owned(), user));
        }
    }
    Ok(Startup {
        minor,
        params,
        declined,
    })
}

/// Sends the client an `ErrorResponse` (severity FATAL) with `refusal`'s SQLSTATE, then
/// flushes; errors writing are ignored (the connection is closed next anyway).
pub async fn refuse<S: AsyncWrite + Unpin>(client: &mut S, refusal: Refusal, message: &str) {
    let _ = client.write_all(&error_response(sqlstate(refusal), message)).await;
    let _ = client.flush().await;
}

/// The SQLSTATE of each refusal.
pub fn sqlstate(refusal: Refusal) -> &'static str {
    match refusal {
        // invalid_authorization_specification
        Refusal::NotPermitted => "28000",
        // cannot_connect_now
        Refusal::Unavailable => "57P03",
        // connection_failure
        Refusal::Upstream => "08006",
        // protocol_violation
        Refusal::Protocol => "08P01",
        // admin_shutdown: what the server itself sends when a backend is terminated
        Refusal::Ended => "57P01",
    }
}

/// An `ErrorResponse` message, severity FATAL.
pub fn error_response(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + message.len());
    for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', sqlstate), (b'M', message)] {
        body.push(field);
        body.extend(value.bytes().filter(|b| *b != 0));
        body.push(0);
    }
    body.push(0);
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(b'E');
    out.extend(((body.len() + 4) as i32).to_be_bytes());
    out.extend(body);
    out
}

/// Opens a connection to the server, with TLS as `tls` says (an `SSLRequest` first).
pub async fn connect(to: &Upstream, tls: &Tls) -> io::Result<Stream> {
    let mut tcp = upstream::tcp(to).await?;
    if tls.mode == Mode::Disable {
        return Ok(Stream::Plain(tcp));
    }
    let answer = ssl_request(&mut tcp).await?;
    match (answer, tls.mode) {
        (b'S', _) => tls.upgrade(tcp).await,
        (b'N', Mode::Prefer) => Ok(Stream::Plain(tcp)),
        (b'N', _) => Err(io::Error::other(format!(
            "the server does not offer TLS (upstream_tls = \"{}\")",
            match tls.mode {
                Mode::Require => "require",
                _ => "verify-full",
            }
        ))),
        (other, _) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the server answered the SSLRequest with byte {other:#04x}"),
        )),
    }
}

async fn ssl_request(tcp: &mut TcpStream) -> io::Result<u8> {
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    Ok(answer[0])
}

/// Logs in on `server` as `user` with `password`, keeping the client's `startup`.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    server: &mut S,
    encrypted: bool,
    startup: &Startup,
    user: &str,
    password: &SecretString,
) -> Result<LoggedIn<CancelKey>, LoginError> {
    let mut out = BytesMut::new();
    let params = std::iter::once(("user", user)).chain(startup.params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    frontend::startup_message(params, &mut out)?;
    server.write_all(&out).await?;
    let mut inbox = BytesMut::with_capacity(1024);
    let mut scram: Option<ScramSha256> = None;
    let mut verified = false;
    let greeting = loop {
        let message = read_message(server, &mut inbox).await?;
        match message[0] {
            b'E' => return Err(refused(message)),
            b'N' => continue, // a notice before the login: nothing for the client
            b'v' => continue, // the server declines an option: it was never the client's
            b'R' => {}
            other => {
                return Err(LoginError::Failed(format!(
                    "unexpected message {:?} during the login",
                    other as char
                )))
            }
        }
        let mut raw = BytesMut::from(&message[..]);
        let parsed = backend::Message::parse(&mut raw)?.ok_or_else(|| LoginError::Failed("a short message".into()))?;
        out.clear();
        match parsed {
            backend::Message::AuthenticationOk => {
                if scram.is_some() && !verified {
                    return Err(LoginError::Failed(
                        "the server accepted the login without proving it knows the password (SCRAM)".into(),
                    ));
                }
                break message;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Some(m) = fallible_iterator::FallibleIterator::next(&mut mechanisms)? {
                    offered |= m == SCRAM_SHA_256;
                }
                if !offered {
                    return Err(LoginError::Failed("the server offers no SASL mechanism but SCRAM-SHA-256-PLUS, which the proxy does not do".into()));
                }
                // No channel binding: the proxy terminates the client's side itself.
                let s = ScramSha256::new(password.expose().as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)?;
                scram = Some(s);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| LoginError::Failed("a SASL continuation before SASL started".into()))?;
                s.update(body.data())
                    .map_err(|e| LoginError::Failed(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut out)?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| LoginError::Failed("a SASL final message before SASL started".into()))?;
                s.finish(body.data())
                    .map_err(|e| LoginError::Failed(format!("SCRAM: the server's proof failed: {e}")))?;
                verified = true;
                continue;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hash = zeroize::Zeroizing::new(postgres_protocol::authentication::md5_hash(
                    user.as_bytes(),
                    password.expose().as_bytes(),
                    body.salt(),
                ));
                frontend::password_message(hash.as_bytes(), &mut out)?;
            }
            backend::Message::AuthenticationCleartextPassword if encrypted => {
                frontend::password_message(password.expose().as_bytes(), &mut out)?;
            }
            backend::Message::AuthenticationCleartextPassword => {
                return Err(LoginError::Failed(
                    "the server asks for a cleartext password over an unencrypted connection; refused (set upstream_tls)".into(),
                ))
            }
            _ => return Err(LoginError::Failed("the server asks for an authentication method the proxy does not do (it does SCRAM-SHA-256, md5, and cleartext over TLS)".into())),
        }
        server.write_all(&out).await?;
        // The outgoing buffer held a proof or a hash of the password.
        zeroize::Zeroize::zeroize(&mut out[..]);
    };
    drop(scram);
    let mut greeting = greeting.to_vec();
    if startup.minor > 0 || !startup.declined.is_empty() {
        greeting.splice(0..0, negotiate_protocol_version(&startup.declined));
    }
    let mut cancel = None;
    loop {
        let message = read_message(server, &mut inbox).await?;
        match message[0] {
            b'K' if message.len() == 13 => {
                let mut body = &message[5..];
                cancel = Some((body.get_i32(), body.get_i32()));
            }
            b'E' => return Err(refused(message)),
            _ => {}
        }
        greeting.extend_from_slice(&message);
        if message[0] == b'Z' {
            break;
        }
    }
    if !inbox.is_empty() {
        return Err(LoginError::Failed("the server sent more than its greeting".into()));
    }
    Ok(LoggedIn { greeting, cancel })
}

fn refused(message: BytesMut) -> LoginError {
    let mut raw = message.clone();
    let sqlstate = match backend::Message::parse(&mut raw) {
        Ok(Some(backend::Message::ErrorResponse(body))) => {
            let mut fields = body.fields();
            let mut code = String::from("?");
            while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
                if f.type_() == b'C' {
                    code = f
                        .value_bytes()
                        .iter()
                        .filter(|b| b.is_ascii_alphanumeric())
                        .take(5)
                        .map(|b| *b as char)
                        .collect();
                }
            }
            code
        }
        _ => "?".to_owned(),
    };
    LoginError::Refused {
        code: sqlstate,
        message: message.to_vec(),
    }
}

/// `NegotiateProtocolVersion`: 3.0, and the options declined.
fn negotiate_protocol_version(declined: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0i32.to_be_bytes());
    body.extend((declined.len() as i32).to_be_bytes());
    for option in declined {
        body.extend(option.as_bytes());
        body.push(0);
    }
    let mut out = vec![b'v'];
    out.extend(((body.len() + 4) as i32).to_be_bytes());
    out.extend(body);
    out
}

/// One whole server message (tag, length, body), bounded by [`MAX_LOGIN_MESSAGE`].
async fn read_message<S: AsyncRead + Unpin>(server: &mut S, inbox: &mut BytesMut) -> io::Result<BytesMut> {
    loop {
        if inbox.len() >= 5 {
            let len = i32::from_be_bytes([inbox[1], inbox[2], inbox[3], inbox[4]]);
            if !(4..=MAX_LOGIN_MESSAGE as i32).contains(&len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a server message of {len} bytes during the login"),
                ));
            }
            let total = len as usize + 1;
            if inbox.len() >= total {
                return Ok(inbox.split_to(total));
            }
            inbox.reserve(total - inbox.len());
        }
        if server.read_buf(inbox).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the login",
            ));
        }
    }
}

/// Forwards a client's `CancelRequest` for `key` to the server on a new connection (with TLS
/// as configured, as libpq does); the server answers nothing.
pub async fn cancel(to: &Upstream, tls: &Tls, key: CancelKey) -> io::Result<()> {
    let mut server = connect(to, tls).await?;
    let mut buf = BytesMut::new();
    frontend::cancel_request(key.0, key.1, &mut buf);
    server.write_all(&buf).await?;
    server.flush().await?;
    let _ = server.shutdown().await;
    Ok(())
}

/// Follows the server's message boundaries in a byte stream by their lengths alone (no
/// message is decoded), so that the proxy can tell when a message it relays is complete.
#[derive(Debug, Default, Clone)]
pub struct Framing {
    /// Bytes of the current message's body still to come.
    remaining: usize,
    /// The current header's bytes seen so far (tag and length: 5 bytes).
    header: [u8; 5],
    seen: usize,
}

impl Framing {
    /// Accounts for `data`, the next bytes of the stream.
    pub fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.seen).min(data.len());
            self.header[self.seen..self.seen + n].copy_from_slice(&data[..n]);
            self.seen += n;
            data = &data[n..];
            if self.seen == 5 {
                let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
                self.remaining = (len as usize).saturating_sub(4);
                self.seen = 0;
            }
        }
    }

    /// Whether the bytes so far end exactly at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0 && self.seen == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: i32, body: &[u8]) -> Vec<u8> {
        let mut p = ((body.len() + 8) as i32).to_be_bytes().to_vec();
        p.extend(code.to_be_bytes());
        p.extend(body);
        p
    }

    async fn opening(bytes: Vec<u8>) -> (Result<Opening<Startup, CancelKey>, Malformed>, Vec<u8>) {
        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        far.write_all(&bytes).await.unwrap();
        drop(far.shutdown().await);
        let result = open(&mut near).await;
        drop(near);
        let mut answered = Vec::new();
        far.read_to_end(&mut answered).await.unwrap();
        (result, answered)
    }

    #[tokio::test]
    async fn the_startup_is_kept_but_the_user_and_ssl_is_declined() {
        let mut bytes = packet(SSL_REQUEST, &[]);
        bytes.extend(packet(
            PROTOCOL_3,
            b"user\0alice\0database\0app\0application_name\0psql\0options\0-c search_path=x\0\0",
        ));
        let (result, answered) = opening(bytes).await;
        let Opening::Session(startup) = result.unwrap() else {
            panic!("a session")
        };
        assert_eq!(answered, b"N");
        assert_eq!(startup.minor, 0);
        let names: Vec<&str> = startup.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["database", "application_name", "options"]);
        assert_eq!(startup.params[2].1, "-c search_path=x");
    }

    #[tokio::test]
    async fn a_missing_database_defaults_to_the_clients_user_and_pq_options_are_declined() {
        let (result, _) = opening(packet(PROTOCOL_3 | 2, b"user\0alice\0_pq_.x\0y\0\0")).await;
        let Opening::Session(startup) = result.unwrap() else {
            panic!("a session")
        };
        assert_eq!(startup.params, [("database".to_owned(), "alice".to_owned())]);
        assert_eq!(startup.minor, 2);
        assert_eq!(startup.declined, ["_pq_.x"]);
        let v = negotiate_protocol_version(&startup.declined);
        assert_eq!(v[0], b'v');
        assert_eq!(i32::from_be_bytes([v[1], v[2], v[3], v[4]]) as usize, v.len() - 1);
    }

    #[tokio::test]
    async fn a_cancel_request_is_read() {
        let mut body = 42i32.to_be_bytes().to_vec();
        body.extend(7i32.to_be_bytes());
        let (result, _) = opening(packet(CANCEL_REQUEST, &body)).await;
        assert!(matches!(result.unwrap(), Opening::Cancel((42, 7))));
    }

    #[tokio::test]
    async fn hostile_openings_are_refused_without_reading_past_the_limit() {
        let huge = (1i32 << 30).to_be_bytes().to_vec();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (huge, "1073741824 bytes"),
            ((-5i32).to_be_bytes().to_vec(), "-5 bytes"),
            (packet(PROTOCOL_3, b"user\0alice"), "without a value"),
            (packet(PROTOCOL_3, b"user\0alice\0"), "no terminator"),
            (packet(PROTOCOL_3, b"user\0alice\0database\0"), "without a value"),
            (packet(PROTOCOL_3, b"user\0alice\0\0junk"), "after its terminator"),
            (packet(PROTOCOL_3, b"user\0a\0user\0b\0\0"), "twice"),
            (packet(PROTOCOL_3, b"\xff\0x\0\0"), "UTF-8"),
            (packet(CANCEL_REQUEST, b"12"), "wrong length"),
            (
                [
                    packet(SSL_REQUEST, &[]),
                    packet(SSL_REQUEST, &[]),
                    packet(SSL_REQUEST, &[]),
                ]
                .concat(),
                "too many",
            ),
            (b"\0\0".to_vec(), "end of file"),
        ];
        for (bytes, says) in cases {
            let (result, _) = opening(bytes).await;
            let e = result.err().unwrap().to_string();
            assert!(e.contains(says), "{says}: {e}");
        }
        let (result, answered) = opening(packet(2 << 16, b"user\0a\0\0")).await;
        assert!(result.is_err());
        assert_eq!(answered[0], b'E', "an old protocol gets an ErrorResponse");
    }

    #[test]
    fn error_responses_are_well_formed() {
        let e = error_response("28000", "no rule");
        let mut buf = BytesMut::from(&e[..]);
        let Some(backend::Message::ErrorResponse(body)) = backend::Message::parse(&mut buf).unwrap() else {
            panic!("an ErrorResponse")
        };
        let mut fields = body.fields();
        let mut seen = Vec::new();
        while let Some(f) = fallible_iterator::FallibleIterator::next(&mut fields).unwrap() {
            seen.push((f.type_(), String::from_utf8_lossy(f.value_bytes()).into_owned()));
        }
        assert!(seen.contains(&(b'C', "28000".into())));
        assert!(seen.contains(&(b'M', "no rule".into())));
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_follows_lengths_across_any_split() {
        let mut stream = Vec::new();
        stream.extend(b"Z\0\0\0\x05I");
        stream.extend(error_response("57P01", "bye"));
        stream.extend(b"D\0\0\0\x04");
        for split in 0..=stream.len() {
            let mut f = Framing::default();
            f.advance(&stream[..split]);
            let boundaries = [0, 6, 6 + error_response("57P01", "bye").len(), stream.len()];
            assert_eq!(f.at_boundary(), boundaries.contains(&split), "split at {split}");
            f.advance(&stream[split..]);
            assert!(f.at_boundary());
        }
    }
}
