//! systemd's readiness protocol (`sd_notify(3)`): with `Type=notify`, systemd passes a Unix
//! datagram socket in `NOTIFY_SOCKET` and waits for `READY=1` before it starts the units
//! ordered after the agent; `STOPPING=1` says a stop has begun.
//!
//! A tiny sender instead of a crate: the protocol is one datagram of `KEY=VALUE` lines, and
//! the crate at hand (`sd-notify`) does not reach abstract socket names (`@name`), which
//! systemd and containers use. No libsystemd, no `unsafe`.
//!
//! Notifying is best effort: a bad `NOTIFY_SOCKET` or a failed send is logged (once for the
//! variable, then per send) and never stops the agent. Without `NOTIFY_SOCKET` nothing is sent.
//! The commands the agent runs (`on_change`) do not inherit the variable (see `delivery.rs`):
//! they must not speak for the agent.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where the service manager listens, from `NOTIFY_SOCKET`.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    /// The variable's value, for log lines.
    name: String,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names; `None` when it is unset, or (with a warning) when
    /// it is not an absolute path or an `@abstract` name.
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::new(&value) {
            Ok(notifier) => Some(notifier),
            Err(reason) => {
                tracing::warn!(notify_socket = %value.to_string_lossy(), "NOTIFY_SOCKET ignored: {reason}");
                None
            }
        }
    }

    /// A notifier for `value` as `NOTIFY_SOCKET` spells it: `/path` or `@abstract`.
    pub fn new(value: &OsStr) -> Result<Notifier, String> {
        let bytes = value.as_bytes();
        let address = match bytes.first() {
            Some(b'/') => SocketAddr::from_pathname(value).map_err(|e| e.to_string())?,
            Some(b'@') => abstract_address(&bytes[1..])?,
            _ => return Err("not an absolute path or an @abstract socket name".into()),
        };
        let socket = UnixDatagram::unbound().map_err(|e| format!("cannot create a datagram socket: {e}"))?;
        // A full receive queue must not block the agent: the send fails instead, and is logged.
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("cannot make the socket non-blocking: {e}"))?;
        Ok(Notifier {
            socket,
            address,
            name: value.to_string_lossy().into_owned(),
        })
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=...` lines) as one datagram.
    pub fn send(&self, state: &str) {
        match self.socket.send_to_addr(state.as_bytes(), &self.address) {
            Ok(_) => tracing::debug!(notify_socket = %self.name, state, "notified the service manager"),
            Err(e) => tracing::warn!(notify_socket = %self.name, error = %e, "cannot notify the service manager"),
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &[u8]) -> Result<SocketAddr, String> {
    use std::os::linux::net::SocketAddrExt as _;
    SocketAddr::from_abstract_name(name).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_: &[u8]) -> Result<SocketAddr, String> {
    Err("abstract socket names exist on Linux only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_path_socket_receives_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.as_os_str()).unwrap().send("READY=1\nSTATUS=ok");
        assert_eq!(receive(&listener), "READY=1\nSTATUS=ok");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_receives_the_state() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("sidekey-notify-test-{}", std::process::id());
        let listener = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        Notifier::new(OsStr::new(&format!("@{name}")))
            .unwrap()
            .send("STOPPING=1");
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn relative_and_empty_values_are_refused() {
        for bad in ["notify.sock", "", "vsock:2:1234"] {
            assert!(Notifier::new(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }
}
