//! A WebSocket echo server over the library's sans-IO codec and handshake
//! (`chat::codec::ws`): every text (and, with `--binary`, binary) message
//! comes back as it was sent. Single-threaded and non-blocking, one
//! `select()` (nix) over the listener and every connection, like the chat
//! server. It exists to test the codec with clients nobody here wrote
//! (the Autobahn|Testsuite cases, Python `websockets`).
//!
//! ```text
//! cargo run --example ws_echo -- --listen 127.0.0.1:9001
//! cargo run --example ws_echo -- --autobahn     # path /, binary echoed, 64 MiB messages
//! ```
//!
//! stdout: `listening on ADDR` first, then one line per connection that
//! ends: `end PEER: closing handshake done`, `end PEER: peer vanished`,
//! `end PEER: failed CODE (reason)`, `end PEER: http STATUS`, ...

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use chat::codec::ws::{frame, Closing, Decoder, Event, Handshake, HandshakeConfig, Outcome};
use clap::Parser;
use nix::sys::select::{select, FdSet};
use nix::sys::time::{TimeVal, TimeValLike};

#[derive(Parser)]
#[command(about = "A WebSocket echo server over chat's codec")]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The upgrade path.
    #[arg(long, default_value = "/chat")]
    path: String,
    /// The largest message, in bytes (fragments reassembled).
    #[arg(long, default_value_t = 65536)]
    max_message: usize,
    /// Echo binary messages (without it they are refused with 1003, as in
    /// the chat protocol).
    #[arg(long)]
    binary: bool,
    /// Accept upgrades only from these origins (comma-separated).
    #[arg(long)]
    origins: Option<String>,
    /// Settings for the Autobahn|Testsuite: path `/`, binary echoed,
    /// messages up to 64 MiB.
    #[arg(long)]
    autobahn: bool,
}

/// How long a connection may take to send its request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closed connection is drained for the peer's FIN.
const LINGER: Duration = Duration::from_secs(2);
/// Stop reading a connection while this much echo waits to be written.
const OUT_CAP: usize = 8 << 20;
/// Bytes read from one connection per round.
const READ_BUDGET: usize = 1 << 20;
/// What `select()` can watch.
const FD_SETSIZE: i32 = 1024;

enum Phase {
    Handshake(Handshake),
    /// Boxed: the decoder's inline header and control buffers make it
    /// ~270 bytes, the other phases are small.
    Open(Box<Decoder>),
    /// Our side is shut: read and discard until the peer's FIN.
    Draining,
}

struct Conn {
    sock: TcpStream,
    peer: SocketAddr,
    phase: Phase,
    out: Vec<u8>,
    written: usize,
    /// Shut the write side once `out` is written.
    close_after_flush: bool,
    deadline: Instant,
    /// Why it ended, printed when it is dropped.
    outcome: String,
    /// Drop it now (the socket failed or the peer is gone).
    done: bool,
}

impl Conn {
    fn queued(&self) -> usize {
        self.out.len() - self.written
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let (path, max_message, binary) = if args.autobahn {
        ("/".to_string(), 64 << 20, true)
    } else {
        (args.path.clone(), args.max_message, args.binary)
    };
    let mut cfg = HandshakeConfig::new(&path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Some(list) = &args.origins {
        cfg = cfg.with_origins(list.split(','));
    }
    let listener = TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let now = Instant::now();
        let timeout = conns
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min();
        let (readable, writable, accept) = wait(&listener, &conns, timeout)?;
        if accept {
            accept_all(&listener, &mut conns);
        }
        let now = Instant::now();
        for (i, conn) in conns.iter_mut().enumerate() {
            if readable.contains(&i) {
                read(conn, &mut buf, &cfg, max_message, binary);
            }
            if writable.contains(&i) || conn.queued() > 0 {
                write(conn, now);
            }
        }
        let now = Instant::now();
        conns.retain(|c| {
            if !c.done && now < c.deadline {
                return true;
            }
            let why = if c.outcome.is_empty() {
                "handshake timed out"
            } else {
                &c.outcome
            };
            println!("end {}: {why}", c.peer);
            false
        });
    }
}

/// One `select()`: which connections can be read or written, and whether
/// the listener has a connection waiting.
fn wait(
    listener: &TcpListener,
    conns: &[Conn],
    timeout: Option<Duration>,
) -> io::Result<(Vec<usize>, Vec<usize>, bool)> {
    let mut rset = FdSet::new();
    let mut wset = FdSet::new();
    rset.insert(listener.as_fd());
    let mut nfds = listener.as_raw_fd();
    for c in conns {
        if c.queued() < OUT_CAP {
            rset.insert(c.sock.as_fd());
        }
        if c.queued() > 0 {
            wset.insert(c.sock.as_fd());
        }
        nfds = nfds.max(c.sock.as_raw_fd());
    }
    let mut tv = timeout.map(|t| TimeVal::milliseconds(t.as_millis().min(60_000) as i64 + 1));
    match select(nfds + 1, &mut rset, &mut wset, None, tv.as_mut()) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok((vec![], vec![], false)),
        Err(e) => return Err(e.into()),
    }
    let readable = (0..conns.len())
        .filter(|&i| rset.contains(conns[i].sock.as_fd()))
        .collect();
    let writable = (0..conns.len())
        .filter(|&i| wset.contains(conns[i].sock.as_fd()))
        .collect();
    Ok((readable, writable, rset.contains(listener.as_fd())))
}

fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) {
    loop {
        match listener.accept() {
            Ok((sock, peer)) => {
                if sock.as_raw_fd() >= FD_SETSIZE || sock.set_nonblocking(true).is_err() {
                    continue; // dropped: select() cannot watch it
                }
                let _ = sock.set_nodelay(true);
                conns.push(Conn {
                    sock,
                    peer,
                    phase: Phase::Handshake(Handshake::new()),
                    out: Vec::new(),
                    written: 0,
                    close_after_flush: false,
                    deadline: Instant::now() + HANDSHAKE_TIMEOUT,
                    outcome: String::new(),
                    done: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return, // WouldBlock, or a failure that concerns one connection
        }
    }
}

fn read(conn: &mut Conn, buf: &mut [u8], cfg: &HandshakeConfig, max_message: usize, binary: bool) {
    let mut budget = READ_BUDGET;
    loop {
        let ending = conn.close_after_flush && !matches!(conn.phase, Phase::Draining);
        if conn.done || ending || budget == 0 || conn.queued() >= OUT_CAP {
            return;
        }
        let n = match conn.sock.read(buf) {
            Ok(0) => return eof(conn),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                conn.outcome = format!("read failed: {e}");
                conn.done = true;
                return;
            }
        };
        budget = budget.saturating_sub(n);
        match &mut conn.phase {
            Phase::Handshake(hs) => match hs.input(&buf[..n], cfg) {
                None => {}
                Some(Outcome::Upgrade { response, mut rest }) => {
                    conn.out.extend_from_slice(&response);
                    conn.deadline = far_future();
                    let mut dec = Decoder::new(max_message).accept_binary(binary);
                    echo(conn, &mut dec, &mut rest);
                    conn.phase = Phase::Open(Box::new(dec));
                }
                Some(Outcome::Reply(reply)) => {
                    conn.out.extend_from_slice(&reply.to_vec());
                    conn.close_after_flush = true;
                    conn.outcome = format!("http {}", reply.status);
                }
            },
            Phase::Open(dec) => {
                let mut dec = std::mem::replace(dec, Box::new(Decoder::new(0)));
                echo(conn, &mut dec, &mut buf[..n]);
                conn.phase = Phase::Open(dec);
            }
            Phase::Draining => {}
        }
    }
}

/// Echoes every message in `bytes`, answers pings and closes.
fn echo(conn: &mut Conn, dec: &mut Decoder, bytes: &mut [u8]) {
    let mut input = dec.input(bytes);
    while let Some(event) = input.next_event() {
        match event {
            Ok(Event::Text(t)) => {
                conn.out.extend_from_slice(&frame::Header::text(t.len()));
                conn.out.extend_from_slice(t);
            }
            Ok(Event::Binary(b)) => {
                conn.out
                    .extend_from_slice(&frame::Header::new(frame::OP_BINARY, b.len()));
                conn.out.extend_from_slice(b);
            }
            Ok(Event::Ping(p)) => conn.out.extend_from_slice(&frame::pong(p)),
            Ok(Event::Pong(_)) => {}
            Ok(Event::Close { code, .. }) => {
                let code = code.unwrap_or(chat::codec::ws::CLOSE_NORMAL);
                if let Some(reply) = input.decoder().close(code, "") {
                    conn.out.extend_from_slice(&reply);
                }
                conn.close_after_flush = true;
                conn.outcome = "closing handshake done".into();
            }
            Err(err) => {
                if let Some(close) = input.decoder().close_for(&err) {
                    conn.out.extend_from_slice(&close);
                }
                conn.close_after_flush = true;
                conn.outcome = format!("failed {} ({err})", err.close_code());
            }
        }
    }
}

/// The peer closed its side: after a closing handshake that is the end;
/// without one the peer vanished. What is queued gets one last try.
fn eof(conn: &mut Conn) {
    let outcome = match &conn.phase {
        Phase::Open(dec) if matches!(dec.closing(), Closing::Received | Closing::Done) => {
            "closing handshake done".to_string()
        }
        Phase::Open(_) if conn.outcome.is_empty() => "peer vanished".into(),
        Phase::Handshake(_) if conn.outcome.is_empty() => "peer left before the handshake".into(),
        _ => std::mem::take(&mut conn.outcome),
    };
    write(conn, Instant::now());
    conn.outcome = outcome;
    conn.done = true;
}

fn write(conn: &mut Conn, now: Instant) {
    while conn.queued() > 0 {
        match conn.sock.write(&conn.out[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                if conn.outcome.is_empty() {
                    conn.outcome = format!("write failed: {e}");
                }
                conn.done = true;
                return;
            }
        }
    }
    if conn.queued() == 0 {
        conn.out.clear();
        conn.written = 0;
        if conn.close_after_flush {
            // Our last frame is out: the server closes TCP first (RFC 6455
            // 7.1.1), then drains until the peer's FIN or the linger ends.
            conn.close_after_flush = false;
            let _ = conn.sock.shutdown(Shutdown::Write);
            conn.phase = Phase::Draining;
            conn.deadline = now + LINGER;
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
