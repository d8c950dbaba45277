//! A backplane's two Redis sockets, as the select loop holds them: it asks
//! [`prepare`](LinkSockets::prepare) before each `select()` (close what went
//! down, start the connects that are due), adds
//! [`interest`](LinkSockets::interest) to its sets, hands each ready
//! descriptor to [`ready`](LinkSockets::ready), and calls
//! [`flush`](LinkSockets::flush) once the core has queued the round's
//! relays. Everything else is the [`Backplane`]'s: this only moves bytes.
//!
//! The subscriber is read until it would block (up to a budget) whenever
//! it is readable, and the loop must watch it for reading every round,
//! whatever else holds reading back (a full event queue): Redis drops a
//! subscriber that falls behind.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use super::backplane::Backplane;
use super::backplane_event::Which;
use crate::sys;

/// Most bytes read from one link in one round (the next `select()` comes
/// back at once if more wait).
pub const READ_BUDGET: usize = 4 << 20;

/// One link's socket.
#[derive(Debug)]
struct LinkSocket {
    fd: OwnedFd,
    /// A non-blocking connect not finished yet.
    connecting: bool,
}

/// What the loop watches for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The descriptor.
    pub fd: RawFd,
    /// Which link it is.
    pub which: Which,
    /// Watch for reading.
    pub read: bool,
    /// Watch for writing.
    pub write: bool,
}

/// The two sockets (either may be closed) and a read buffer.
#[derive(Debug)]
pub struct LinkSockets {
    socks: [Option<LinkSocket>; 2],
    buf: Box<[u8]>,
}

impl Default for LinkSockets {
    fn default() -> Self {
        LinkSockets::new()
    }
}

fn index(which: Which) -> usize {
    match which {
        Which::Commands => 0,
        Which::Subscriber => 1,
    }
}

impl LinkSockets {
    /// No sockets yet.
    pub fn new() -> LinkSockets {
        LinkSockets {
            socks: [None, None],
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }

    /// Before `select()`: closes the socket of a link that went down and
    /// starts the connects that are due.
    pub fn prepare(&mut self, bp: &mut Backplane, now: Instant) {
        for which in Which::BOTH {
            self.close_if_down(bp, which);
            if self.socks[index(which)].is_none() && bp.connect_due(which, now) {
                bp.connecting(which, now);
                match sys::connect_nonblocking(bp.redis_addr()) {
                    Ok((fd, done)) => {
                        self.socks[index(which)] = Some(LinkSocket {
                            fd,
                            connecting: !done,
                        });
                        if done {
                            bp.connected(which, now);
                        }
                    }
                    Err(_) => bp.closed(which, now),
                }
            }
        }
        for which in Which::BOTH {
            self.close_if_down(bp, which);
        }
    }

    /// The open sockets and what to watch them for: a connect in progress
    /// for writing; a connected socket always for reading, and for writing
    /// when its link has bytes waiting.
    pub fn interest(&self, bp: &Backplane) -> impl Iterator<Item = Watch> + '_ {
        let wants: [bool; 2] = Which::BOTH.map(|w| bp.wants_write(w));
        Which::BOTH.into_iter().filter_map(move |which| {
            let s = self.socks[index(which)].as_ref()?;
            Some(Watch {
                fd: s.fd.as_raw_fd(),
                which,
                read: !s.connecting,
                write: s.connecting || wants[index(which)],
            })
        })
    }

    /// The link whose socket is `fd`, if any.
    pub fn which(&self, fd: RawFd) -> Option<Which> {
        Which::BOTH.into_iter().find(|&w| {
            self.socks[index(w)]
                .as_ref()
                .is_some_and(|s| s.fd.as_raw_fd() == fd)
        })
    }

    /// `which`'s socket, if open (for a loop that builds its own sets).
    pub fn fd(&self, which: Which) -> Option<BorrowedFd<'_>> {
        self.socks[index(which)].as_ref().map(|s| s.fd.as_fd())
    }

    /// Whether `which` has a socket open.
    pub fn is_open(&self, which: Which) -> bool {
        self.socks[index(which)].is_some()
    }

    /// After `select()`: `which`'s socket is readable and/or writable.
    pub fn ready(&mut self, bp: &mut Backplane, which: Which, readable: bool, writable: bool, now: Instant) {
        let Some(s) = &mut self.socks[index(which)] else {
            return;
        };
        if s.connecting {
            if !writable {
                return;
            }
            s.connecting = false;
            match sys::connect_result(s.fd.as_fd()) {
                Ok(()) => bp.connected(which, now),
                Err(_) => bp.closed(which, now),
            }
        } else if readable {
            let result = sys::recv_until_blocked(s.fd.as_fd(), &mut self.buf, READ_BUDGET, |chunk| {
                bp.received(which, chunk, now)
            });
            if matches!(result, Ok(sys::Drained { eof: true, .. }) | Err(_)) {
                bp.closed(which, now);
            }
        }
        self.close_if_down(bp, which);
        if writable {
            self.write(bp, which, now);
        }
    }

    /// Writes what waits on every connected socket, until it is written or
    /// the socket is full.
    pub fn flush(&mut self, bp: &mut Backplane, now: Instant) {
        for which in Which::BOTH {
            self.write(bp, which, now);
        }
    }

    fn write(&mut self, bp: &mut Backplane, which: Which, now: Instant) {
        let Some(s) = self.socks[index(which)].as_ref().filter(|s| !s.connecting) else {
            return;
        };
        while bp.wants_write(which) {
            match sys::send_some(s.fd.as_fd(), bp.output(which)) {
                Ok(0) => break,
                Ok(n) => bp.wrote(which, n, now),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    bp.closed(which, now);
                    break;
                }
            }
        }
        self.close_if_down(bp, which);
    }

    fn close_if_down(&mut self, bp: &Backplane, which: Which) {
        if !bp.wants_socket(which) {
            self.socks[index(which)] = None;
        }
    }
}
