//! The operating-system calls the event core makes, each turned into
//! `io::Result` with `EINTR` retried where retrying is right. Everything
//! goes through nix where it can; the `unsafe` blocks here lend raw
//! descriptor numbers to `FdSet` for the length of one `select()`, ask
//! libc for the host name, and call a function compiled for AVX2 once the
//! CPU is known to have it.

mod alarm;

pub use alarm::Alarm;

use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::select::{self, FdSet};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::config::FD_SETSIZE;

/// Runs `f` compiled for AVX2 where the CPU has it (std checks once and
/// keeps the answer), else as it is: byte loops over fixed arrays of 32
/// then become 32-byte vector instructions instead of SSE2's 16, without a
/// build for one CPU. `f` is inlined into the AVX2 function: keep it small
/// and `#[inline(always)]` what it calls.
#[inline]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above: the one
            // condition of calling a function compiled for it.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Whether `select()` can watch this descriptor.
pub fn selectable(fd: RawFd) -> bool {
    usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE)
}

/// A non-blocking, close-on-exec listening socket on `addr`, with
/// SO_REUSEADDR (as std's listener) and, when asked, SO_REUSEPORT so that
/// several processes can listen on one address and the kernel spreads
/// connections between them.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if addr.is_ipv6() {
        // An IPv6 address means IPv6 only, as std does on Linux by default
        // for explicit addresses only when asked: keep it predictable.
        let _ = socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true);
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(
        &fd,
        socket::Backlog::new(1024).unwrap_or(socket::Backlog::MAXCONN),
    )?;
    Ok(TcpListener::from(fd))
}

/// Per-connection socket options: no Nagle delay (the server already
/// gathers frames into one write per round) and TCP keepalive, so a peer
/// that vanished without a FIN is eventually noticed.
pub fn tune_client_socket(fd: BorrowedFd<'_>) {
    // Both are best effort: a socket without them still works.
    let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
    let _ = socket::setsockopt(&fd, sockopt::KeepAlive, &true);
}

/// Gathers `slices` into one `sendmsg`. `MSG_NOSIGNAL`: a closed peer gives
/// `EPIPE` rather than raising SIGPIPE in the host; `MSG_DONTWAIT`: never
/// block, even if the host changed the descriptor's flags.
pub fn send_vectored(fd: BorrowedFd<'_>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    loop {
        match socket::sendmsg::<()>(fd.as_raw_fd(), slices, &[], flags, None) {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// One non-blocking send of a small frame, for connections about to be
/// dropped (best effort, no queue).
pub fn send_once(fd: BorrowedFd<'_>, bytes: &[u8]) {
    let _ = socket::send(
        fd.as_raw_fd(),
        bytes,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn wake_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?)
}

/// Writes one byte to a wake pipe; a full pipe already wakes the reader.
pub fn wake(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        match nix::unistd::write(fd, &[1]) {
            Ok(_) | Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Empties a wake pipe.
pub fn drain_pipe(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 64];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n < buf.len() {
            break;
        }
    }
}

/// Descriptors to watch, as given to [`wait`].
#[derive(Debug, Default)]
pub struct Interest {
    /// Watch for readability.
    pub read: Vec<RawFd>,
    /// Watch for writability.
    pub write: Vec<RawFd>,
}

/// What [`wait`] found ready.
#[derive(Debug, Default)]
pub struct Ready {
    /// Readable descriptors.
    pub read: Vec<RawFd>,
    /// Writable descriptors.
    pub write: Vec<RawFd>,
}

/// One `select()`: waits up to `timeout` (`None`: no limit) for any of
/// `interest`. Every descriptor must be [`selectable`]; callers check that
/// when a descriptor enters the server, so this never meets one that is
/// not. `EINTR` is reported as nothing ready.
pub fn wait(interest: &Interest, timeout: Option<Duration>, ready: &mut Ready) -> io::Result<()> {
    ready.read.clear();
    ready.write.clear();
    let borrow = |fd: RawFd| {
        debug_assert!(selectable(fd));
        // SAFETY: the caller owns every descriptor in `interest` and keeps
        // it open for the whole call; these borrows do not outlive it.
        unsafe { BorrowedFd::borrow_raw(fd) }
    };
    let mut rset = FdSet::new();
    let mut wset = FdSet::new();
    for &fd in &interest.read {
        rset.insert(borrow(fd));
    }
    for &fd in &interest.write {
        wset.insert(borrow(fd));
    }
    let nfds = interest
        .read
        .iter()
        .chain(&interest.write)
        .max()
        .map_or(0, |m| m + 1);
    let mut tv = timeout.map(|t| TimeVal::microseconds(t.as_micros().min(i64::MAX as u128) as i64));
    match select::select(nfds, &mut rset, &mut wset, None, tv.as_mut()) {
        Ok(0) | Err(Errno::EINTR) => return Ok(()),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    ready.read.extend(
        interest
            .read
            .iter()
            .copied()
            .filter(|&fd| rset.contains(borrow(fd))),
    );
    ready.write.extend(
        interest
            .write
            .iter()
            .copied()
            .filter(|&fd| wset.contains(borrow(fd))),
    );
    Ok(())
}

/// Starts a non-blocking TCP connect to `addr` on a new `SOCK_NONBLOCK |
/// SOCK_CLOEXEC` socket. `Ok((fd, true))`: connected at once (loopback
/// can); `Ok((fd, false))`: in progress (`EINPROGRESS`, or `EINTR`, after
/// which the connect goes on by itself): watch for writability, then ask
/// [`connect_result`]. A socket `select()` cannot watch is refused
/// (`EMFILE`), so the caller never meets one.
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(family, SockType::Stream, flags, None)?;
    if !selectable(fd.as_raw_fd()) {
        return Err(Errno::EMFILE.into());
    }
    // Commands are small and pipelined: no Nagle delay on them.
    let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
    let _ = socket::setsockopt(&fd, sockopt::KeepAlive, &true);
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => Ok((fd, true)),
        Err(Errno::EINPROGRESS | Errno::EINTR) => Ok((fd, false)),
        Err(e) => Err(e.into()),
    }
}

/// How a non-blocking connect ended, once its socket is writable: the
/// socket's pending error (`SO_ERROR`), `Ok` if there is none.
pub fn connect_result(fd: BorrowedFd<'_>) -> io::Result<()> {
    match socket::getsockopt(&fd, sockopt::SocketError)? {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// What [`recv_until_blocked`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Bytes read.
    pub bytes: usize,
    /// The peer closed its side (end of stream).
    pub eof: bool,
    /// The budget ran out before the socket would block: more may wait.
    pub more: bool,
}

/// Reads until the socket would block, the peer closes, or `budget` bytes
/// were read, handing each chunk to `f` as it comes. A subscriber is read
/// this way every round, so Redis never finds it slow while the loop runs.
/// An error other than `EAGAIN`/`EINTR` is returned after the chunks read
/// before it were handed over.
pub fn recv_until_blocked(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    budget: usize,
    mut f: impl FnMut(&[u8]),
) -> io::Result<Drained> {
    let mut out = Drained {
        bytes: 0,
        eof: false,
        more: false,
    };
    while out.bytes < budget {
        let want = buf.len().min(budget - out.bytes);
        match socket::recv(fd.as_raw_fd(), &mut buf[..want], MsgFlags::MSG_DONTWAIT) {
            Ok(0) => {
                out.eof = true;
                return Ok(out);
            }
            Ok(n) => {
                out.bytes += n;
                f(&buf[..n]);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(out),
            Err(e) => return Err(e.into()),
        }
    }
    out.more = true;
    Ok(out)
}

/// One non-blocking send of `bytes`: how many went, 0 if the socket is
/// full. `MSG_NOSIGNAL`: a closed peer is `EPIPE`, never SIGPIPE.
pub fn send_some(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    loop {
        match socket::send(fd.as_raw_fd(), bytes, flags) {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(0),
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Fills `out` from the kernel's random source (`/dev/urandom`, which
/// never blocks once the system has booted).
pub fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(out)
}

/// The machine's host name (`gethostname`), or `None`.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole
    // call; gethostname writes at most that many and nothing after it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::os::fd::AsFd;

    /// Waits (bounded) until `fd` is writable, as the loop's select would.
    fn writable(fd: RawFd) {
        let interest = Interest {
            read: Vec::new(),
            write: vec![fd],
        };
        let mut ready = Ready::default();
        for _ in 0..100 {
            wait(&interest, Some(Duration::from_millis(100)), &mut ready).unwrap();
            if ready.write.contains(&fd) {
                return;
            }
        }
        panic!("not writable within 10 s");
    }

    #[test]
    fn a_nonblocking_connect_completes_and_moves_bytes_both_ways() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (fd, done) = connect_nonblocking(listener.local_addr().unwrap()).unwrap();
        if !done {
            writable(fd.as_raw_fd());
        }
        connect_result(fd.as_fd()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        assert_eq!(send_some(fd.as_fd(), b"ping").unwrap(), 4);
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        peer.write_all(&[7u8; 10_000]).unwrap();
        drop(peer);
        // Everything sent before the close, then the end of the stream.
        let (mut total, mut buf) = (0, [0u8; 1024]);
        for _ in 0..1000 {
            let d = recv_until_blocked(fd.as_fd(), &mut buf, 4096, |c| total += c.len()).unwrap();
            if d.eof {
                assert_eq!(total, 10_000);
                return;
            }
            if !d.more {
                let interest = Interest {
                    read: vec![fd.as_raw_fd()],
                    write: Vec::new(),
                };
                wait(&interest, Some(Duration::from_millis(100)), &mut Ready::default()).unwrap();
            }
        }
        panic!("no end of stream; read {total}");
    }

    #[test]
    fn a_refused_connect_reports_its_error() {
        // A port nobody listens on: bound, then released.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        match connect_nonblocking(port) {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            Ok((fd, done)) => {
                if !done {
                    writable(fd.as_raw_fd());
                }
                let e = connect_result(fd.as_fd()).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            }
        }
    }

    #[test]
    fn random_bytes_and_the_host_name_are_there() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(hostname().is_some());
    }
}
