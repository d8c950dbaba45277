//! One client connection of the generator: a non-blocking socket on the
//! shared `mio::Poll` (edge-triggered), one big reusable read buffer, and
//! an output buffer that collects everything for one write. Under TLS or
//! WebSocket (`crate::link`) the buffers still hold length-prefixed chat
//! frames: TLS decrypts into the read buffer, WebSocket frames are
//! unwrapped into it, and the output is encrypted or wrapped at flush.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::link::{tls_flush, tls_read, Link, Session};
use crate::wire::{self, Incoming, Target};

/// A connection and its buffers.
pub struct Conn {
    stream: TcpStream,
    session: Session,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// Bytes waiting to be written; append, then [`flush`](Conn::flush).
    pub out: Vec<u8>,
    wpos: usize,
    /// Bytes received (of the chat stream, inside TLS or WebSocket), for
    /// the bandwidth figures.
    pub bytes_in: u64,
}

impl Conn {
    /// Connects (blocking, to loopback: quick), runs `link`'s handshake and
    /// registers with `registry`; reads go through a buffer of `read_bytes`
    /// (grown only for a frame larger than it).
    pub fn connect(
        addr: SocketAddr,
        token: Token,
        registry: &Registry,
        read_bytes: usize,
        link: &Link,
    ) -> io::Result<Conn> {
        let mut std_stream = std::net::TcpStream::connect(addr)?;
        std_stream.set_nodelay(true)?;
        let (mut session, early) = link.handshake(&mut std_stream)?;
        std_stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std_stream);
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        if let Session::Ws(ws) = &mut session {
            ws.raw = early;
        }
        Ok(Conn {
            stream,
            session,
            rbuf: vec![0; read_bytes.max(16)],
            rstart: 0,
            rend: 0,
            out: Vec::with_capacity(4096),
            wpos: 0,
            bytes_in: 0,
        })
    }

    /// Reads what the socket has, handing each complete frame to `on_frame`
    /// with the time of the read that completed it. `Ok(false)`: the peer
    /// closed.
    pub fn read_frames(
        &mut self,
        target: Target,
        mut on_frame: impl FnMut(Incoming, Instant),
    ) -> io::Result<bool> {
        loop {
            if self.rend == self.rbuf.len() {
                if self.rstart > 0 {
                    self.rbuf.copy_within(self.rstart..self.rend, 0);
                    self.rend -= self.rstart;
                    self.rstart = 0;
                } else {
                    // One frame larger than the buffer.
                    self.rbuf.resize(self.rbuf.len() * 2, 0);
                }
            }
            let room = self.rbuf.len() - self.rend;
            match self.read_some() {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.rend += n;
                    self.bytes_in += n as u64;
                    let now = Instant::now();
                    while let Some((used, msg)) = wire::next(target, &self.rbuf[self.rstart..self.rend]) {
                        self.rstart += used;
                        on_frame(msg, now);
                    }
                    if self.rstart == self.rend {
                        self.rstart = 0;
                        self.rend = 0;
                    }
                    // A short read emptied the socket; the next arrival
                    // raises a new edge, so no read is needed to see EAGAIN.
                    // (Not so for TLS, whose records may hold more than
                    // one read takes: read on until it would block.)
                    if n < room && matches!(self.session, Session::Plain) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One read of chat-stream bytes into the free end of the read buffer.
    fn read_some(&mut self) -> io::Result<usize> {
        let buf = &mut self.rbuf[self.rend..];
        match &mut self.session {
            Session::Plain => self.stream.read(buf),
            Session::Tls(tls) => tls_read(tls, &mut self.stream, buf),
            Session::Ws(ws) => loop {
                // Whole frames first, then more from the socket.
                if !ws.raw.is_empty() {
                    let mut payloads = std::mem::take(&mut ws.unwrapped);
                    payloads.clear();
                    ws.unwrap(&mut payloads)?;
                    let n = payloads.len();
                    if n > 0 {
                        // Into the read buffer, grown if need be.
                        let need = self.rend + n;
                        if need > self.rbuf.len() {
                            self.rbuf.resize(need, 0);
                        }
                        self.rbuf[self.rend..need].copy_from_slice(&payloads);
                    }
                    ws.unwrapped = payloads;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                let len = ws.raw.len();
                ws.raw.resize(len + 64 * 1024, 0);
                let got = self.stream.read(&mut ws.raw[len..]);
                ws.raw.truncate(len + *got.as_ref().unwrap_or(&0));
                if got? == 0 {
                    return Ok(0);
                }
            },
        }
    }

    /// Writes as much of [`out`](Conn::out) as the socket takes; the rest
    /// waits for the next writable edge.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.session {
            Session::Plain => {
                while self.wpos < self.out.len() {
                    match self.stream.write(&self.out[self.wpos..]) {
                        Ok(n) => self.wpos += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.out.clear();
                self.wpos = 0;
            }
            Session::Tls(tls) => {
                if !self.out.is_empty() {
                    tls.writer().write_all(&self.out)?;
                    self.out.clear();
                }
                tls_flush(tls, &mut self.stream)?;
            }
            Session::Ws(ws) => {
                ws.wrap(&mut self.out);
                while ws.wpos < ws.wire.len() {
                    match self.stream.write(&ws.wire[ws.wpos..]) {
                        Ok(n) => ws.wpos += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                ws.wire.clear();
                ws.wpos = 0;
            }
        }
        Ok(())
    }

    /// Bytes appended but not yet written (under TLS: 1 while records
    /// wait).
    pub fn unsent(&self) -> usize {
        match &self.session {
            Session::Plain => self.out.len() - self.wpos,
            Session::Tls(tls) => self.out.len() + usize::from(tls.wants_write()),
            Session::Ws(ws) => self.out.len() + ws.wire.len() - ws.wpos,
        }
    }
}
