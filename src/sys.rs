//! The operating-system calls the event core makes, each turned into
//! `io::Result` with `EINTR` retried where retrying is right. Everything
//! goes through nix; the one `unsafe` here lends raw descriptor numbers to
//! `FdSet` for the length of one `select()`.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::select::{self, FdSet};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::config::FD_SETSIZE;

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
