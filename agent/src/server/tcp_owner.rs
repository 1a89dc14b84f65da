//! Which local user is at the other end of a loopback TCP connection: the uid that owns the
//! client's socket, as the kernel reports it through `NETLINK_SOCK_DIAG` (the interface `ss`
//! uses) — an exact lookup by the connection's addresses and ports.
//!
//! It is asked only to queue token verifications fairly per local user (a TCP connection has
//! no `SO_PEERCRED`); it never grants anything. Why not `/proc/net/tcp`: reading it costs time
//! in proportion to every TCP socket on the host, and any local user can open hundreds of
//! thousands, so each lookup under a flood would read megabytes; the exact lookup is one hash
//! lookup in the kernel, a few microseconds whatever the table holds.
//!
//! The messages are built and read by hand: a fixed kernel ABI (`linux/inet_diag.h`,
//! `linux/netlink.h`), small enough to test with fabricated bytes.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

/// `SOCK_DIAG_BY_FAMILY`: the request and answer type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`: the kernel's error answer.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST` alone: one socket, looked up exactly (no `NLM_F_DUMP`).
const NLM_F_REQUEST: u16 = 1;
const IPPROTO_TCP: u8 = 6;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// States whose sockets are not full sockets: the kernel reports uid 0 for them, which must
/// never be read as root.
const TCP_TIME_WAIT: u8 = 6;
const TCP_NEW_SYN_RECV: u8 = 12;

/// `struct nlmsghdr`.
const HEADER: usize = 16;
/// `struct inet_diag_req_v2` (family, protocol, ext, pad, states, `inet_diag_sockid`).
const REQUEST: usize = 8 + SOCKID;
/// `struct inet_diag_sockid`: ports, two 16-byte addresses, interface, cookie.
const SOCKID: usize = 4 + 16 + 16 + 4 + 8;
/// `struct inet_diag_msg`: family, state, timer, retrans, the sockid, then expires, rqueue,
/// wqueue, uid, inode.
const ANSWER: usize = 4 + SOCKID + 20;
/// Offset of `idiag_uid` in `inet_diag_msg`.
const UID_AT: usize = 4 + SOCKID + 12;

/// The uid owning the client end of the TCP connection that `listener` (this agent's address)
/// accepted from `client`.
pub fn uid(client: SocketAddr, listener: SocketAddr) -> io::Result<u32> {
    let request = request(client, listener)?;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    // Unaddressed, a netlink message goes to the kernel, which answers a request without
    // NLM_F_DUMP before `send` returns: the answer is already queued, never waited for.
    send(fd.as_raw_fd(), &request, MsgFlags::empty())?;
    let mut answer = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut answer, MsgFlags::MSG_DONTWAIT)?;
    parse(&answer[..n], client, listener)
}

/// The request for the socket whose own address is `client` and whose peer is `listener`.
fn request(client: SocketAddr, listener: SocketAddr) -> io::Result<[u8; HEADER + REQUEST]> {
    let family = family(client, listener)?;
    let mut m = [0u8; HEADER + REQUEST];
    m[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number; the port id stays 0
    let r = &mut m[HEADER..];
    r[0] = family;
    r[1] = IPPROTO_TCP;
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state (the lookup is exact)
    sockid(&mut r[8..], client, listener);
    r[8 + 40..8 + 48].fill(0xff); // INET_DIAG_NOCOOKIE: match by addresses alone
    Ok(m)
}

/// Writes the ports and addresses of `inet_diag_sockid` (network byte order).
fn sockid(id: &mut [u8], local: SocketAddr, remote: SocketAddr) {
    id[0..2].copy_from_slice(&local.port().to_be_bytes());
    id[2..4].copy_from_slice(&remote.port().to_be_bytes());
    id[4..20].copy_from_slice(&address(local.ip()));
    id[20..36].copy_from_slice(&address(remote.ip()));
}

/// An address as `inet_diag_sockid` holds it: IPv4 in the first four bytes.
fn address(ip: IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

fn family(client: SocketAddr, listener: SocketAddr) -> io::Result<u8> {
    match (client, listener) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => Ok(AF_INET),
        (SocketAddr::V6(_), SocketAddr::V6(_)) => Ok(AF_INET6),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "mixed address families")),
    }
}

/// The uid in the kernel's answer, when it is about exactly the socket asked for and a full
/// socket (not one in TIME_WAIT, whose uid reads 0).
fn parse(answer: &[u8], client: SocketAddr, listener: SocketAddr) -> io::Result<u32> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"));
    let header = answer.get(..HEADER).ok_or_else(|| bad("short answer"))?;
    let len = u32::from_ne_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let kind = u16::from_ne_bytes(header[4..6].try_into().expect("2 bytes"));
    let body = answer
        .get(HEADER..len.max(HEADER))
        .ok_or_else(|| bad("truncated answer"))?;
    if kind == NLMSG_ERROR {
        let errno = body
            .get(0..4)
            .map(|e| i32::from_ne_bytes(e.try_into().expect("4 bytes")))
            .ok_or_else(|| bad("short error"))?;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != SOCK_DIAG_BY_FAMILY || body.len() < ANSWER {
        return Err(bad("unexpected answer"));
    }
    let mut want = [0u8; 36];
    sockid(&mut want, client, listener);
    if body[0] != family(client, listener)? || body[4..40] != want {
        return Err(bad("answer about another socket"));
    }
    if matches!(body[1], TCP_TIME_WAIT | TCP_NEW_SYN_RECV) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the client socket is closed"));
    }
    Ok(u32::from_ne_bytes(
        body[UID_AT..UID_AT + 4].try_into().expect("4 bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddr, SocketAddr) {
        ("127.0.0.9:40000".parse().unwrap(), "127.0.0.1:2773".parse().unwrap())
    }

    /// An answer as the kernel builds it: header, then `inet_diag_msg`.
    fn answer(client: SocketAddr, listener: SocketAddr, state: u8, uid: u32) -> Vec<u8> {
        let mut m = vec![0u8; HEADER + ANSWER];
        m[0..4].copy_from_slice(&((HEADER + ANSWER) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let body = &mut m[HEADER..];
        body[0] = family(client, listener).unwrap();
        body[1] = state;
        sockid(&mut body[4..], client, listener);
        body[UID_AT..UID_AT + 4].copy_from_slice(&uid.to_ne_bytes());
        m
    }

    #[test]
    fn the_request_names_the_client_socket_exactly() {
        let (client, listener) = addrs();
        let m = request(client, listener).unwrap();
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 1, "no NLM_F_DUMP");
        let r = &m[HEADER..];
        assert_eq!((r[0], r[1]), (AF_INET, IPPROTO_TCP));
        assert_eq!(&r[8..10], &40000u16.to_be_bytes(), "sport: the client's port");
        assert_eq!(&r[10..12], &2773u16.to_be_bytes(), "dport: the listener's");
        assert_eq!(&r[12..16], &[127, 0, 0, 9]);
        assert_eq!(&r[28..32], &[127, 0, 0, 1]);
        assert_eq!(&r[48..56], &[0xff; 8], "no cookie");
        let v6 = request("[::1]:5000".parse().unwrap(), "[::1]:2773".parse().unwrap()).unwrap();
        assert_eq!(v6[HEADER], AF_INET6);
        assert!(request(client, "[::1]:2773".parse().unwrap()).is_err());
    }

    #[test]
    fn the_uid_is_read_from_an_answer_about_that_socket_only() {
        let (client, listener) = addrs();
        const ESTABLISHED: u8 = 1;
        let ok = answer(client, listener, ESTABLISHED, 65534);
        assert_eq!(parse(&ok, client, listener).unwrap(), 65534);
        let other: SocketAddr = "127.0.0.9:40001".parse().unwrap();
        assert!(parse(&ok, other, listener).is_err(), "another port");
        assert!(parse(&ok[..40], client, listener).is_err(), "truncated");
        let closing = answer(client, listener, TCP_TIME_WAIT, 0);
        assert_eq!(
            parse(&closing, client, listener).unwrap_err().kind(),
            io::ErrorKind::NotFound,
            "a TIME_WAIT socket's uid 0 is not root"
        );
        let mut error = vec![0u8; HEADER + 4];
        error[0..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[HEADER..].copy_from_slice(&(-2i32).to_ne_bytes()); // -ENOENT
        assert_eq!(
            parse(&error, client, listener).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn the_kernel_names_the_owner_of_a_real_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, from) = listener.accept().unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        let uid = uid(from, listener.local_addr().unwrap()).unwrap();
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
    }
}
