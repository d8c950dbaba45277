//! Connections the server is finished with: it said all it had to say and
//! sent FIN; what the peer still sends is read and discarded for a moment
//! (`DRAIN_LINGER`), so that closing does not turn into a reset that could
//! destroy that last data in flight. Draining is budgeted like any read (a
//! peer that keeps writing cannot stall the round) and ends after
//! `DRAIN_MAX_BYTES` (it cannot keep the server busy either), and a draining socket
//! still counts as its peer's descriptor: toward `max_clients` and
//! `max_per_ip`, where the oldest drain is reaped to make room for a new
//! connection rather than refusing it.

use std::io::{self, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::slots::{Draining, Slot};
use super::Server;
use crate::sys;

/// Longest a closed connection is drained of unread input before the
/// socket is released.
pub(super) const DRAIN_LINGER: Duration = Duration::from_secs(2);

/// Most bytes one closed connection is drained of in all: a peer still
/// writing this much after the server's goodbye and FIN is not reading
/// it, and draining it further would let it keep the server busy reading
/// (a firehose of 4 MB writes kept a core busy, at `read_budget` a round,
/// for the whole linger). Past it the socket is closed (the peer gets a
/// reset).
pub(super) const DRAIN_MAX_BYTES: usize = 1024 * 1024;

/// What a budgeted drain found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Drained {
    /// The peer closed (or the socket failed): nothing more to wait for.
    Closed,
    /// The peer may send more.
    Open,
}

impl Server {
    /// Sends the socket to drain (it has sent its FIN, or will once
    /// `goodbye` is written), unless a first, budgeted drain finds the peer
    /// gone already.
    pub(super) fn start_draining(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        mut goodbye: Vec<u8>,
        now: Instant,
    ) {
        if send_goodbye(&socket, &mut goodbye).is_err() {
            self.forget_peer(peer);
            return;
        }
        let (found, read) = drain(&mut socket, &mut self.read_buf, self.cfg.read_budget);
        self.drained_bytes += read as u64;
        let left = DRAIN_MAX_BYTES.saturating_sub(read);
        if self.shutting_down || found == Drained::Closed || left == 0 {
            // The server is going away, or the peer is (or it wrote all a
            // drain may take): closed now.
            self.forget_peer(peer);
            return;
        }
        let fd = socket.as_raw_fd();
        let until = now + DRAIN_LINGER.min(self.cfg.close_linger);
        self.slots.insert(
            fd,
            Slot::Draining(Draining {
                socket,
                until,
                peer,
                left,
                goodbye,
            }),
        );
    }

    /// A draining socket with some of its goodbye left is writable: more
    /// of it, and FIN once it is all gone.
    pub(super) fn write_goodbye(&mut self, fd: RawFd) {
        let Slot::Draining(d) = self.slots.get_mut(fd) else {
            return;
        };
        if send_goodbye(&d.socket, &mut d.goodbye).is_err() {
            self.close_drain(fd);
        }
    }

    /// A drained connection is readable: read and discard, within the
    /// round's budget.
    pub(super) fn drain_closed(&mut self, fd: RawFd) {
        let Slot::Draining(d) = self.slots.get_mut(fd) else {
            return;
        };
        let budget = self.cfg.read_budget.min(d.left);
        let (found, read) = drain(&mut d.socket, &mut self.read_buf, budget);
        self.drained_bytes += read as u64;
        d.left = d.left.saturating_sub(read);
        if found == Drained::Closed || d.left == 0 {
            self.close_drain(fd);
        }
    }

    /// Releases one drained socket.
    pub(super) fn close_drain(&mut self, fd: RawFd) {
        if let Slot::Draining(d) = self.slots.remove(fd) {
            self.forget_peer(d.peer);
        }
    }

    /// Releases every drain whose time is up (or all of them).
    pub(super) fn expire_drains(&mut self, now: Option<Instant>) {
        for fd in self.slots.drains_done(now) {
            self.close_drain(fd);
        }
    }

    /// Reaps the oldest drain (of `ip`, or of anyone), to make room for a
    /// new connection; false if there is none.
    pub(super) fn reap_oldest_drain(&mut self, ip: Option<IpAddr>) -> bool {
        match self.slots.oldest_drain(ip) {
            Some(fd) => {
                self.close_drain(fd);
                true
            }
            None => false,
        }
    }
}

/// Sends as much of `goodbye` as the socket takes now, and FIN once none
/// is left (at once if there was none).
fn send_goodbye(socket: &TcpStream, goodbye: &mut Vec<u8>) -> io::Result<()> {
    if !goodbye.is_empty() {
        let n = sys::send_some(socket.as_fd(), goodbye)?;
        goodbye.drain(..n);
        if !goodbye.is_empty() {
            return Ok(());
        }
        *goodbye = Vec::new();
    }
    let _ = socket.shutdown(Shutdown::Write);
    Ok(())
}

/// Reads and discards what is waiting, at most `budget` bytes; returns what
/// it found and how many bytes it read.
pub(super) fn drain(socket: &mut TcpStream, buf: &mut [u8], budget: usize) -> (Drained, usize) {
    let budget = budget.max(1);
    let mut left = budget;
    while left > 0 {
        let want = left.min(buf.len());
        match socket.read(&mut buf[..want]) {
            Ok(0) => return (Drained::Closed, budget - left),
            Ok(n) => left -= n.min(left),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Drained::Open, budget - left),
            Err(_) => return (Drained::Closed, budget - left),
        }
    }
    (Drained::Open, budget)
}
