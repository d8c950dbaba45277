//! One client connection of the generator: a non-blocking socket on the
//! shared `mio::Poll` (edge-triggered), one big reusable read buffer, and
//! an output buffer that collects everything for one write.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::wire::{self, Incoming, Target};

/// A connection and its buffers.
pub struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// Bytes waiting to be written; append, then [`flush`](Conn::flush).
    pub out: Vec<u8>,
    wpos: usize,
    /// Bytes received, for the bandwidth figures.
    pub bytes_in: u64,
}

impl Conn {
    /// Connects (blocking, to loopback: quick) and registers with `registry`;
    /// reads go through a buffer of `read_bytes` (grown only for a frame
    /// larger than it).
    pub fn connect(
        addr: SocketAddr,
        token: Token,
        registry: &Registry,
        read_bytes: usize,
    ) -> io::Result<Conn> {
        let std_stream = std::net::TcpStream::connect(addr)?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std_stream);
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
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
            match self.stream.read(&mut self.rbuf[self.rend..]) {
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
                    if n < room {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of [`out`](Conn::out) as the socket takes; the rest
    /// waits for the next writable edge.
    pub fn flush(&mut self) -> io::Result<()> {
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
        Ok(())
    }

    /// Bytes appended but not yet written.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.wpos
    }
}
