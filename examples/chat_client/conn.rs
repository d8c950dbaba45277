//! The connection to the server: names resolved, each address tried in turn
//! without blocking (so the keyboard is read meanwhile), then with `--tls`
//! the TLS handshake, in the same loop, then frames in and out through
//! buffers the select() loop drains, encrypted when TLS is on.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use chat::frame::FrameDecoder;

use crate::tls_client::{TlsClient, TlsConnector};
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

/// The socket, as it is or inside TLS.
enum Link {
    Plain(TcpStream),
    Tls(Box<TlsClient>),
}

/// `--tls`: how to verify the server, and the name to verify it as (the
/// host of `--connect`, also sent as SNI).
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub host: String,
}

/// The host part of `HOST:PORT` (without the brackets of `[::1]:7878`).
pub fn host_of(target: &str) -> String {
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

pub struct Conn {
    link: Link,
    /// Still connecting: writable means the attempt finished.
    connecting: bool,
    /// Frames not yet written, already length-prefixed.
    out: Vec<u8>,
    decoder: FrameDecoder,
    pub peer: SocketAddr,
    /// The first bytes the server sent (up to 3), to tell a TLS server
    /// answering plain TCP from a broken one.
    head: Vec<u8>,
}

/// Tries the addresses one after another, each for at most `timeout`.
pub struct Connector {
    addrs: VecDeque<SocketAddr>,
    timeout: Duration,
    tls: Option<Tls>,
    /// The attempt under way and when it is given up (the TLS handshake
    /// shares the connection's deadline).
    attempt: Option<(Conn, Instant)>,
    /// The attempt is connected and in its TLS handshake.
    handshaking: bool,
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
    /// Connected, but the TLS handshake failed (why, in a sentence): the
    /// next address would be the same server.
    TlsFailed(String),
}

impl Connector {
    pub fn new(addrs: Vec<SocketAddr>, timeout: Duration, tls: Option<Tls>) -> Connector {
        Connector {
            addrs: addrs.into(),
            timeout,
            tls,
            attempt: None,
            handshaking: false,
            failures: Vec::new(),
            timed_out: false,
        }
    }

    /// The socket to watch for writability, if an attempt is under way.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.attempt.as_ref().map(|(c, _)| c.fd())
    }

    /// Whether to watch [`Connector::fd`] for reading (the TLS handshake).
    pub fn wants_read(&self) -> bool {
        self.handshaking
    }

    /// Whether to watch [`Connector::fd`] for writing (the connect, or the
    /// handshake's next flight).
    pub fn wants_write(&self) -> bool {
        !self.handshaking || self.attempt.as_ref().is_some_and(|(c, _)| c.wants_write())
    }

    /// When the current attempt is given up.
    pub fn deadline(&self) -> Option<Instant> {
        self.attempt.as_ref().map(|(_, d)| *d)
    }

    /// Moves on: starts the next attempt, or checks the current one
    /// (`ready`: select() said its socket is; else only its deadline is
    /// checked).
    pub fn step(&mut self, ready: bool, now: Instant) -> Progress {
        if self.handshaking {
            return self.step_handshake(ready, now);
        }
        let writable = ready;
        loop {
            if let Some((conn, deadline)) = self.attempt.take() {
                if writable {
                    let Link::Plain(stream) = &conn.link else {
                        unreachable!("an attempt is plain TCP until it connects")
                    };
                    match stream.take_error() {
                        Ok(None) if stream.peer_addr().is_ok() => {
                            let mut conn = conn;
                            conn.connecting = false;
                            let Some(tls) = &self.tls else {
                                return Progress::Up(conn);
                            };
                            return match conn.start_tls(tls) {
                                Ok(conn) => {
                                    self.attempt = Some((conn, deadline));
                                    self.handshaking = true;
                                    self.step_handshake(true, now)
                                }
                                Err(why) => Progress::TlsFailed(why),
                            };
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
    /// The TLS handshake of the connected attempt, moved on.
    fn step_handshake(&mut self, ready: bool, now: Instant) -> Progress {
        let (Some((conn, deadline)), Some(tls)) = (&mut self.attempt, &self.tls) else {
            return Progress::Failed;
        };
        let Link::Tls(client) = &mut conn.link else {
            unreachable!("a handshaking attempt is TLS")
        };
        let outcome = if ready {
            tls.connector.advance(client, &tls.host)
        } else {
            Ok(false)
        };
        match outcome {
            Ok(true) => {
                self.handshaking = false;
                let (conn, _) = self.attempt.take().expect("the attempt");
                Progress::Up(conn)
            }
            Ok(false) if now < *deadline => Progress::Pending,
            Ok(false) => Progress::TlsFailed(format!(
                "no TLS answer from {} within {} s (is this a TLS port?)",
                tls.host,
                self.timeout.as_secs_f64()
            )),
            Err(e) => Progress::TlsFailed(e.to_string()),
        }
    }

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
    /// A non-blocking connect to `addr`, under way.
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
            link: Link::Plain(stream),
            connecting: true,
            out: Vec::new(),
            decoder: FrameDecoder::new(MAX_FRAME),
            peer: addr,
            head: Vec::new(),
        })
    }

    /// Puts the connected socket into a TLS session whose handshake is yet
    /// to run (see [`Connector::step`]).
    fn start_tls(self, tls: &Tls) -> Result<Conn, String> {
        let Link::Plain(stream) = self.link else {
            return Ok(self);
        };
        let client = tls
            .connector
            .start(stream, &tls.host)
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            link: Link::Tls(Box::new(client)),
            ..self
        })
    }

    /// The TLS version and cipher suite, once TLS is on.
    pub fn tls_description(&self) -> Option<String> {
        match &self.link {
            Link::Tls(t) => Some(t.describe()),
            Link::Plain(_) => None,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.link {
            Link::Plain(s) => s.as_fd(),
            Link::Tls(t) => t.socket().as_fd(),
        }
    }

    /// Whether frames wait to be written (watch for writability).
    pub fn wants_write(&self) -> bool {
        let tls_pending = matches!(&self.link, Link::Tls(t) if t.wants_write());
        self.connecting || !self.out.is_empty() || tls_pending
    }

    /// Queues one frame; [`Self::flush`] writes it.
    pub fn send(&mut self, v: &Value) {
        let payload = v.to_string();
        self.out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.out.extend_from_slice(payload.as_bytes());
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        let stream = match &mut self.link {
            Link::Plain(s) => s,
            Link::Tls(t) => {
                // Encrypted at once (the session's buffer is unbounded:
                // it holds what was typed), written as the socket takes it.
                if !self.out.is_empty() {
                    t.queue(&self.out);
                    self.out.clear();
                }
                return t.flush().map(|_| ());
            }
        };
        while !self.out.is_empty() {
            match stream.write(&self.out) {
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
        let closed = match &mut self.link {
            Link::Plain(stream) => read_plain(stream, &mut self.decoder, &mut self.head)?,
            Link::Tls(tls) => read_tls(tls, &mut self.decoder)?,
        };
        let mut frames = Vec::new();
        loop {
            match self.decoder.next_frame() {
                Ok(Some(p)) => frames.push(p.to_vec()),
                Ok(None) => break,
                // A TLS record (an alert or a handshake, type 21 or 22,
                // version 3.x) where a frame should be.
                Err(_) if matches!(self.head.as_slice(), [21 | 22, 3, _]) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server answered in TLS (connect with --tls)",
                    ))
                }
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

/// Reads a plain socket until it would block; true if the server closed.
fn read_plain(stream: &mut TcpStream, decoder: &mut FrameDecoder, head: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                let want = 3usize.saturating_sub(head.len()).min(n);
                head.extend_from_slice(&buf[..want]);
                decoder.push(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a TLS socket: what it has now, decrypted; true if the server
/// ended the session (with close_notify, or by closing TCP).
fn read_tls(tls: &mut TlsClient, decoder: &mut FrameDecoder) -> io::Result<bool> {
    let mut plaintext = Vec::new();
    // Each call reads once: a few more while they bring data, and select()
    // wakes again for what is left in the socket.
    for _ in 0..16 {
        plaintext.clear();
        let got = tls.read_some(&mut plaintext)?;
        decoder.push(&plaintext);
        if got.end.is_some() {
            return Ok(true);
        }
        if got.plaintext == 0 {
            break;
        }
    }
    Ok(false)
}
