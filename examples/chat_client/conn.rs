//! The connection to the server: names resolved, each address tried in turn
//! without blocking (so the keyboard is read meanwhile), then frames in and
//! out through buffers the select() loop drains.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use chat::frame::FrameDecoder;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
use serde_json::Value;

/// Largest frame taken from the server: far above any it sends, small
/// enough that a broken server cannot make us allocate without bound.
const MAX_FRAME: usize = 1 << 24;

/// Every address `HOST:PORT` names, IPv4 and IPv6, in the resolver's order.
pub fn resolve(target: &str) -> Result<Vec<SocketAddr>, String> {
    if !target.contains(':') {
        return Err(format!("{target:?} is not HOST:PORT (say localhost:7878)"));
    }
    match target.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{target} names no address"))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(format!("cannot resolve {target}: {e}")),
    }
}

pub struct Conn {
    stream: TcpStream,
    /// Still connecting: writable means the attempt finished.
    connecting: bool,
    /// Frames not yet written, already length-prefixed.
    out: Vec<u8>,
    decoder: FrameDecoder,
    pub peer: SocketAddr,
}

/// Tries the addresses one after another, each for at most `timeout`.
pub struct Connector {
    addrs: VecDeque<SocketAddr>,
    timeout: Duration,
    /// The attempt under way and when it is given up.
    attempt: Option<(Conn, Instant)>,
    /// What went wrong with each address tried.
    pub failures: Vec<(SocketAddr, String)>,
    /// Some attempt ran out of time (rather than being refused).
    pub timed_out: bool,
}

/// What a step of the connector came to.
pub enum Progress {
    /// Still trying.
    Pending,
    /// Connected.
    Up(Conn),
    /// Every address failed.
    Failed,
}

impl Connector {
    pub fn new(addrs: Vec<SocketAddr>, timeout: Duration) -> Connector {
        Connector {
            addrs: addrs.into(),
            timeout,
            attempt: None,
            failures: Vec::new(),
            timed_out: false,
        }
    }

    /// The socket to watch for writability, if an attempt is under way.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.attempt.as_ref().map(|(c, _)| c.stream.as_fd())
    }

    /// When the current attempt is given up.
    pub fn deadline(&self) -> Option<Instant> {
        self.attempt.as_ref().map(|(_, d)| *d)
    }

    /// Moves on: starts the next attempt, or checks the current one
    /// (`writable`: select() said so; else only its deadline is checked).
    pub fn step(&mut self, writable: bool, now: Instant) -> Progress {
        loop {
            if let Some((conn, deadline)) = self.attempt.take() {
                if writable {
                    match conn.stream.take_error() {
                        Ok(None) if conn.stream.peer_addr().is_ok() => {
                            let mut conn = conn;
                            conn.connecting = false;
                            return Progress::Up(conn);
                        }
                        Ok(None) => self.failures.push((conn.peer, "not connected".into())),
                        Ok(Some(e)) | Err(e) => self.failures.push((conn.peer, plain(&e))),
                    }
                } else if now >= deadline {
                    self.timed_out = true;
                    self.failures.push((conn.peer, "no answer".into()));
                } else {
                    self.attempt = Some((conn, deadline));
                    return Progress::Pending;
                }
            }
            let Some(addr) = self.addrs.pop_front() else {
                return Progress::Failed;
            };
            match Conn::start(addr) {
                Ok(conn) => self.attempt = Some((conn, now + self.timeout)),
                Err(e) => self.failures.push((addr, plain(&e))),
            }
            // Checked on the next select(): writable once it is decided.
            if self.attempt.is_some() {
                return Progress::Pending;
            }
        }
    }
}

impl Connector {
    /// What went wrong, address by address (just the reason if there was
    /// one address).
    pub fn why(&self) -> String {
        match self.failures.as_slice() {
            [(_, why)] => why.clone(),
            all => all
                .iter()
                .map(|(addr, why)| format!("{addr} {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// An I/O error in words, without Rust's "(os error 111)".
pub fn plain(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused (is the server running?)".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

impl Conn {
    /// A non-blocking connect to `addr`, under way. Hook: a TLS transport
    /// (`--tls`, `--ca`, `--insecure`) would wrap the stream here, and
    /// `send`/`flush`/`read` would go through it.
    fn start(addr: SocketAddr) -> io::Result<Conn> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        use std::os::fd::AsRawFd;
        match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        let stream = TcpStream::from(fd);
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            connecting: true,
            out: Vec::new(),
            decoder: FrameDecoder::new(MAX_FRAME),
            peer: addr,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Whether frames wait to be written (watch for writability).
    pub fn wants_write(&self) -> bool {
        self.connecting || !self.out.is_empty()
    }

    /// Queues one frame; [`Self::flush`] writes it.
    pub fn send(&mut self, v: &Value) {
        let payload = v.to_string();
        self.out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.out.extend_from_slice(payload.as_bytes());
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived: the complete frames' payloads, and whether the
    /// server closed the connection after them.
    pub fn read(&mut self) -> io::Result<(Vec<Vec<u8>>, bool)> {
        let mut buf = [0u8; 64 * 1024];
        let mut closed = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut frames = Vec::new();
        loop {
            match self.decoder.next_frame() {
                Ok(Some(p)) => frames.push(p.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad frame from the server ({})", e.code()),
                    ))
                }
            }
        }
        Ok((frames, closed))
    }
}
