//! One client connection on a proxy socket, whatever the protocol:
//!
//! 1. the opening, read within [`HANDSHAKE`] (a slow or hostile client ends only its own
//!    connection): a cancel request is forwarded to the server if it names a live session of
//!    this proxy and the caller is granted the secret; a session goes on;
//! 2. the caller — `SO_PEERCRED`, read once here — must be granted the secret by an
//!    `[[access]]` rule, else it is refused (28000 for PostgreSQL) and the refusal audited;
//! 3. the served credential is read from the store now, a [`Hold`] taken on its version, and
//!    the server logged in to; the password is dropped as soon as the login is done;
//! 4. bytes are relayed both ways until either side closes, or the session is ended: its
//!    credential's lease expires (less [`EXPIRY_MARGIN`]), it is revoked, or the agent stops.
//!    An ending session's client gets the protocol's goodbye (57P01) between two server
//!    messages, never a cut in the middle of one.
//!
//! Every session is audited when it opens and when it ends (uid, pid, secret, version, lease,
//! why it ended, bytes; never a value).

use std::time::{Duration, SystemTime};

use sidekey::audit::{EventKind, Peer};
use sidekey::AuditEvent;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{metrics, Context, Framing as _, LoginError, Opening, Protocol, Proxy, Refusal};
use crate::holds::{End, Hold};
use crate::policy::Caller;
use crate::store::Served;

/// How long a client has to open (startup packet) and the server to log it in.
pub const HANDSHAKE: Duration = Duration::from_secs(15);
/// A session ends this long before its credential's lease expires, so that no query of it
/// meets the issuer's revocation at expiry.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(1);
/// How long an ending session waits for the server to finish the message it is sending.
const FINISH_MESSAGE: Duration = Duration::from_secs(2);
/// Relay buffer size, per direction.
const BUFFER: usize = 16 * 1024;

/// Why a relayed session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client closed.
    Client,
    /// The server closed.
    Server,
    /// The credential's lease is about to expire.
    Expired,
    /// The credential was revoked.
    Revoked,
    /// The agent stops.
    Stopping,
}

impl Ending {
    fn word(self) -> &'static str {
        match self {
            Ending::Client => "client closed",
            Ending::Server => "server closed",
            Ending::Expired => "expired",
            Ending::Revoked => "revoked",
            Ending::Stopping => "stopping",
        }
    }

    fn goodbye(self) -> Option<&'static str> {
        match self {
            Ending::Expired => {
                Some("sidekey: the credential of this session expired; reconnect to use the current one")
            }
            Ending::Revoked => {
                Some("sidekey: the credential of this session was revoked; reconnect to use the current one")
            }
            Ending::Stopping => Some("sidekey: the agent is stopping"),
            Ending::Client | Ending::Server => None,
        }
    }
}

/// Runs one connection to its end.
pub async fn run<P: Protocol>(proxy: &Proxy<P>, ctx: &Context, mut client: UnixStream) {
    let peer = match client.peer_cred() {
        Ok(cred) => Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        },
        Err(e) => {
            tracing::warn!(proxy = %proxy.label, error = %e, "cannot read the peer's credentials; closing");
            return;
        }
    };
    let opening = tokio::select! {
        _ = ctx.stop.cancelled() => return,
        opened = tokio::time::timeout(HANDSHAKE, proxy.protocol.open(&mut client)) => opened,
    };
    let startup = match opening {
        Ok(Ok(Opening::Session(startup))) => startup,
        Ok(Ok(Opening::Cancel(key))) => return cancel(proxy, ctx, peer, key).await,
        Ok(Err(why)) => {
            metrics::refused(&proxy.label, "protocol");
            tracing::debug!(proxy = %proxy.label, uid = peer.uid, pid = ?peer.pid, error = %why, "malformed opening; connection closed");
            return;
        }
        Err(_) => {
            metrics::refused(&proxy.label, "protocol");
            tracing::debug!(proxy = %proxy.label, uid = peer.uid, "no opening within the handshake timeout; connection closed");
            return;
        }
    };
    let secret = &proxy.spec.secret;
    let permit = ctx
        .policy
        .admit(&caller(peer))
        .and_then(|admitted| admitted.permit(secret.as_str()));
    if let Err(denied) = permit {
        metrics::refused(&proxy.label, "access");
        audit(
            ctx,
            proxy,
            peer,
            EventKind::Refusal {
                reason: denied.0.clone(),
            },
            None,
        );
        let message = format!("sidekey: {} (proxy {})", denied.0, proxy.label);
        return refuse(proxy, &mut client, Refusal::NotPermitted, &message).await;
    }
    let served = match ctx.store.read(secret.as_str(), SystemTime::now()) {
        Ok(served) => served,
        Err(e) => {
            metrics::refused(&proxy.label, "unavailable");
            let message = format!("sidekey: {e}");
            return refuse(proxy, &mut client, Refusal::Unavailable, &message).await;
        }
    };
    let hold = ctx.holds.hold(
        secret,
        served.version,
        served.lease.as_ref().and_then(|l| l.id.as_ref()),
    );
    let login = tokio::time::timeout(HANDSHAKE, login(proxy, ctx, &startup, &served)).await;
    let (server, greeting, key) = match login {
        Ok(Ok(done)) => done,
        Ok(Err((refusal, message, bytes))) => {
            let bytes = bytes.unwrap_or_else(|| proxy.protocol.refusal(refusal, &message));
            let _ = client.write_all(&bytes).await;
            return;
        }
        Err(_) => {
            metrics::upstream_failure(&proxy.label);
            let message = format!(
                "sidekey: the login at {} took longer than {HANDSHAKE:?}",
                proxy.spec.upstream
            );
            ctx.status.fail(&proxy.spec, message.clone());
            return refuse(proxy, &mut client, Refusal::Upstream, &message).await;
        }
    };
    if client.write_all(&greeting).await.is_err() {
        return;
    }
    let _cancel = key.map(|k| CancelGuard::new(proxy, k));
    ::metrics::counter!("sidekey_proxy_sessions_total", "proxy" => proxy.label.clone()).increment(1);
    let open = ::metrics::gauge!("sidekey_proxy_sessions_open", "proxy" => proxy.label.clone());
    open.increment(1.0);
    let lease = served.lease.as_ref().and_then(|l| l.id.clone());
    let mut opened = AuditEvent::new(EventKind::SessionOpen).lease(lease.as_ref());
    opened.version = Some(served.version);
    audit_event(ctx, proxy, peer, opened);
    let started = std::time::Instant::now();
    let (version, expires) = (served.version, served.lease.as_ref().map(|l| l.expires_at));
    drop(served);
    let (ending, up, down) = relay(proxy, ctx, client, server, hold, expires).await;
    open.decrement(1.0);
    if matches!(ending, Ending::Expired | Ending::Revoked | Ending::Stopping) {
        metrics::ended(&proxy.label, ending.word());
    }
    let mut ended = AuditEvent::new(EventKind::SessionEnd {
        reason: ending.word().to_owned(),
        bytes_to_server: up,
        bytes_to_client: down,
        seconds: started.elapsed().as_secs(),
    })
    .lease(lease.as_ref());
    ended.version = Some(version);
    audit_event(ctx, proxy, peer, ended);
}

/// Connects and logs in with the served credential; answers the server, its greeting for
/// the client and the cancel key, or why not (with the server's own error, to pass on).
#[allow(clippy::type_complexity)]
async fn login<P: Protocol>(
    proxy: &Proxy<P>,
    ctx: &Context,
    startup: &P::Startup,
    served: &Served,
) -> Result<(super::Stream, Vec<u8>, Option<P::Key>), (Refusal, String, Option<Vec<u8>>)> {
    // `reached`: the server was connected to (TCP and TLS), and the login itself failed.
    let fail = |reason: String, reached: bool| {
        metrics::upstream_failure(&proxy.label);
        if reached {
            ctx.status.login_failed(&proxy.spec, reason.clone());
        } else {
            ctx.status.fail(&proxy.spec, reason.clone());
        }
        tracing::warn!(proxy = %proxy.label, upstream = %proxy.spec.upstream, error = %reason, "upstream login failed");
    };
    let (Some(user), Some(password)) = (served.data.field("username"), served.data.field("password")) else {
        let message = format!(
            "sidekey: secret {} has no username and password fields (it has: {})",
            proxy.spec.secret,
            served.data.field_names().join(", ")
        );
        metrics::refused(&proxy.label, "unavailable");
        return Err((Refusal::Unavailable, message, None));
    };
    let mut server = match proxy.protocol.connect(&proxy.spec.upstream, &proxy.tls).await {
        Ok(server) => server,
        Err(e) => {
            let message = format!("cannot connect to {} ({}): {e}", proxy.spec.upstream, proxy.tls_mode());
            fail(message.clone(), false);
            return Err((Refusal::Upstream, format!("sidekey: {message}"), None));
        }
    };
    let result = proxy
        .protocol
        .login(&mut server, startup, user.expose(), &password)
        .await;
    drop(password);
    match result {
        Ok(done) => {
            ctx.status.ok(&proxy.label);
            Ok((server, done.greeting, done.cancel))
        }
        Err(LoginError::Refused { code, message }) => {
            fail(format!("the server refused the login (code {code})"), true);
            Err((Refusal::Upstream, String::new(), Some(message)))
        }
        Err(LoginError::Failed(reason)) => {
            fail(format!("login at {} failed: {reason}", proxy.spec.upstream), true);
            Err((
                Refusal::Upstream,
                format!("sidekey: login at {} failed: {reason}", proxy.spec.upstream),
                None,
            ))
        }
    }
}

/// Relays until either side closes or the session is ended; answers why and the bytes
/// relayed to the server and to the client.
async fn relay<P: Protocol>(
    proxy: &Proxy<P>,
    ctx: &Context,
    client: UnixStream,
    server: super::Stream,
    mut hold: Hold,
    expires: Option<SystemTime>,
) -> (Ending, u64, u64) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let to_server =
        ::metrics::counter!("sidekey_proxy_bytes_total", "proxy" => proxy.label.clone(), "direction" => "to_server");
    let to_client =
        ::metrics::counter!("sidekey_proxy_bytes_total", "proxy" => proxy.label.clone(), "direction" => "to_client");
    let (mut up, mut down) = (0u64, 0u64);
    let version = hold.version();
    // Renewals do not wake a secret's own channel (same version); the store's update counter
    // moves on every change, renewals included.
    let mut updates = ctx.store.updates();
    // The session's end: its lease's expiry (moved on by renewals of its version), a
    // revocation, or the agent's stop.
    let end = async {
        let mut expires = expires;
        let mut live = true;
        loop {
            let wait = expires.map(|at| {
                let left = at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .saturating_sub(EXPIRY_MARGIN);
                tokio::time::Instant::now() + left
            });
            tokio::select! {
                End::Revoked = hold.ended() => return Ending::Revoked,
                _ = ctx.stop.cancelled() => return Ending::Stopping,
                _ = sleep_until(wait) => return Ending::Expired,
                changed = updates.changed(), if live => {
                    if changed.is_err() {
                        live = false; // the store is gone: the agent is stopping
                        continue;
                    }
                    let served = ctx.store.served_expiry(proxy.spec.secret.as_str());
                    if let Some(at) = served.filter(|(v, _)| *v == version).and_then(|(_, at)| at) {
                        expires = Some(at);
                    }
                }
            }
        }
    };
    let upstream = copy(&mut client_read, &mut server_write, &to_server, &mut up);
    let downstream = async {
        let mut framing = P::Framing::default();
        let mut buf = vec![0u8; BUFFER];
        tokio::pin!(end);
        let mut ending: Option<(Ending, tokio::time::Instant)> = None;
        loop {
            if let Some((why, _)) = ending {
                if framing.at_boundary() {
                    if let Some(message) = why.goodbye() {
                        let _ = client_write
                            .write_all(&proxy.protocol.refusal(Refusal::Ended, message))
                            .await;
                    }
                    return why;
                }
            }
            tokio::select! {
                why = &mut end, if ending.is_none() => {
                    ending = Some((why, tokio::time::Instant::now() + FINISH_MESSAGE));
                }
                _ = sleep_until(ending.map(|(_, at)| at)) => return ending.map_or(Ending::Server, |(why, _)| why),
                read = server_read.read(&mut buf) => {
                    let n = match read {
                        Ok(0) | Err(_) => return Ending::Server,
                        Ok(n) => n,
                    };
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return Ending::Client;
                    }
                    framing.advance(&buf[..n]);
                    to_client.increment(n as u64);
                    down += n as u64;
                }
            }
        }
    };
    let ending = tokio::select! {
        _ = upstream => Ending::Client,
        why = downstream => why,
    };
    let _ = server_write.shutdown().await;
    (ending, up, down)
}

/// Copies `from` to `to` until EOF or an error, counting bytes.
async fn copy<R, W>(from: &mut R, to: &mut W, counter: &::metrics::Counter, total: &mut u64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        counter.increment(n as u64);
        *total += n as u64;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A cancel request: forwarded when the caller is granted the secret and the key is one of
/// this proxy's open sessions; the client gets no answer either way (as from the server).
async fn cancel<P: Protocol>(proxy: &Proxy<P>, ctx: &Context, peer: Peer, key: P::Key) {
    let permitted = ctx
        .policy
        .admit(&caller(peer))
        .and_then(|a| a.permit(proxy.spec.secret.as_str()))
        .is_ok();
    let known = proxy.cancels.lock().expect("cancels lock").contains(&key);
    if !(permitted && known) {
        metrics::refused(&proxy.label, if permitted { "protocol" } else { "access" });
        tracing::debug!(proxy = %proxy.label, uid = peer.uid, permitted, known, "cancel request not forwarded");
        return;
    }
    match proxy.protocol.cancel(&proxy.spec.upstream, &proxy.tls, key).await {
        Ok(()) => metrics::cancel(&proxy.label),
        Err(e) => {
            metrics::upstream_failure(&proxy.label);
            tracing::warn!(proxy = %proxy.label, error = %e, "forwarding a cancel request failed");
        }
    }
}

/// A session's cancel key, registered while it runs.
struct CancelGuard<'p, P: Protocol> {
    proxy: &'p Proxy<P>,
    key: P::Key,
}

impl<'p, P: Protocol> CancelGuard<'p, P> {
    fn new(proxy: &'p Proxy<P>, key: P::Key) -> Self {
        proxy.cancels.lock().expect("cancels lock").insert(key);
        CancelGuard { proxy, key }
    }
}

impl<P: Protocol> Drop for CancelGuard<'_, P> {
    fn drop(&mut self) {
        self.proxy.cancels.lock().expect("cancels lock").remove(&self.key);
    }
}

async fn refuse<P: Protocol>(proxy: &Proxy<P>, client: &mut UnixStream, refusal: Refusal, message: &str) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        client.write_all(&proxy.protocol.refusal(refusal, message)),
    )
    .await;
}

fn caller(peer: Peer) -> Caller {
    Caller {
        peer: Some(peer),
        ..Caller::default()
    }
}

fn audit<P: Protocol>(ctx: &Context, proxy: &Proxy<P>, peer: Peer, kind: EventKind, version: Option<u64>) {
    let mut event = AuditEvent::new(kind);
    event.version = version;
    audit_event(ctx, proxy, peer, event);
}

fn audit_event<P: Protocol>(ctx: &Context, proxy: &Proxy<P>, peer: Peer, mut event: AuditEvent) {
    event = event.secret(&proxy.spec.secret);
    event.peer = Some(peer);
    event.proxy = Some(proxy.label.clone());
    ctx.audit.record(event);
}
