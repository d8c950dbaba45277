//! An in-memory pipe between clients and the core, as quiche's
//! `test_utils::Pipe`: every client's bytes go through the same transport a
//! TCP client gets, what the core queues is "written" at once into the
//! client's inbox, and closing connections are reaped as the server would
//! after flushing them. Time is virtual: [`Pipe::advance`] moves the clock
//! and runs the timers, so timeouts are tested without waiting.
//!
//! The client side mirrors the socket test client (`send`, `recv`,
//! `expect_closed`, ...) and the host side mirrors [`Server`](crate::Server)
//! (`with(|s| s.kick(id, None))`), so a conformance test reads the same over
//! either. A `recv` with nothing to receive fails at once instead of
//! waiting for a deadline: in memory, nothing is in flight.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Core;

mod host;

use crate::codec::length_prefix::{self, split_frame};
use crate::config::Config;
use crate::event::{ClientId, Event};
use crate::idmap::IdMap;
pub use host::Host;

/// What one client has been sent and not read yet.
#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
    /// Where the unread bytes start.
    read: usize,
    /// The server closed the connection (after flushing it).
    closed: bool,
    /// Most unread bytes the "socket" holds: the server writes no more
    /// until the client reads (a full socket buffer); `None`: no limit.
    window: Option<usize>,
    /// The client's side vanished: what the server writes from now on is
    /// lost (still counted against the window), and the server was not
    /// told.
    vanished: bool,
    /// Bytes written since the client vanished.
    lost: usize,
}

impl Inbox {
    /// Bytes the socket would take now.
    fn room(&self) -> Option<usize> {
        let held = if self.vanished {
            self.lost
        } else {
            self.bytes.len() - self.read
        };
        self.window.map(|w| w.saturating_sub(held))
    }
}

#[derive(Debug)]
struct Inner {
    core: Core,
    now: Instant,
    inboxes: IdMap<Inbox>,
    events: VecDeque<Event>,
    next_port: u16,
    shutting_down: bool,
}

impl Inner {
    /// What a server round does after input: every queue written out,
    /// finished connections closed, events collected.
    fn pump(&mut self) {
        let now = self.now;
        // Output written, then input the core held back (its queue was
        // long) offered again, until neither moves: the server's rounds.
        let mut lost = Vec::new();
        loop {
            for (&id, inbox) in &mut self.inboxes {
                if inbox.closed {
                    continue;
                }
                let room = inbox.room();
                let sink = if inbox.vanished {
                    lost.clear();
                    &mut lost
                } else {
                    &mut inbox.bytes
                };
                let n = match room {
                    Some(room) => self.core.take_output_limited(id, sink, room),
                    None => self.core.take_output(id, sink),
                };
                if inbox.vanished {
                    inbox.lost += n;
                }
            }
            if !self.core.resume_input(now) {
                break;
            }
        }
        for id in self.core.reap(now) {
            if let Some(inbox) = self.inboxes.get_mut(&id) {
                inbox.closed = true;
            }
        }
        self.events.extend(self.core.events());
    }
}

/// The server side of the pipe.
#[derive(Debug, Clone)]
pub struct Pipe {
    inner: Rc<RefCell<Inner>>,
}

impl Default for Pipe {
    fn default() -> Self {
        Pipe::start(Config::default())
    }
}

impl Pipe {
    /// A core with the limits of `cfg` (its addresses are not used).
    pub fn start(cfg: Config) -> Pipe {
        cfg.validate().expect("a valid configuration");
        Pipe {
            inner: Rc::new(RefCell::new(Inner {
                core: Core::new(&cfg),
                now: Instant::now(),
                inboxes: IdMap::default(),
                events: VecDeque::new(),
                next_port: 40000,
                shutting_down: false,
            })),
        }
    }

    /// A new connection, from its own port on 127.0.0.1.
    pub fn connect(&self) -> PipeClient {
        let mut inner = self.inner.borrow_mut();
        let port = inner.next_port;
        inner.next_port = inner.next_port.wrapping_add(1);
        let now = inner.now;
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let id = inner.core.connect(peer, now);
        inner.inboxes.insert(id, Inbox::default());
        inner.pump();
        PipeClient {
            id,
            addr: peer,
            pipe: self.inner.clone(),
        }
    }

    /// Connects and registers as `nick`; panics unless `welcome` comes
    /// back.
    pub fn hello(&self, nick: &str) -> PipeClient {
        let mut c = self.connect();
        c.send(&serde_json::json!({"type": "hello", "nick": nick}));
        let w = c.recv();
        assert_eq!(w["type"], "welcome", "hello as {nick}: {w}");
        c
    }

    /// Runs host calls, then a round.
    pub fn with<T>(&self, f: impl FnOnce(&mut Host<'_>) -> T) -> T {
        let mut inner = self.inner.borrow_mut();
        let out = f(&mut Host { inner: &mut inner });
        inner.pump();
        out
    }

    /// Moves the clock on and runs the timers.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.inner.borrow_mut();
        inner.now += by;
        let now = inner.now;
        inner.core.tick(now);
        inner.pump();
    }

    /// The pipe's clock.
    pub fn now(&self) -> Instant {
        self.inner.borrow().now
    }

    /// The next event, if one is waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        self.inner.borrow_mut().events.pop_front()
    }

    /// The next event; panics if none is waiting.
    pub fn next_event(&self) -> Event {
        self.try_next_event()
            .expect("an event (none is waiting: in memory nothing is in flight)")
    }

    /// Skips events until one matches; panics if none of those waiting
    /// does.
    pub fn event_until(&self, pred: impl Fn(&Event) -> bool) -> Event {
        loop {
            let ev = self
                .try_next_event()
                .expect("a matching event (none of those waiting matched)");
            if pred(&ev) {
                return ev;
            }
        }
    }

    /// Drops every event waiting now; returns how many there were.
    pub fn discard_events(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        let n = inner.events.len();
        inner.events.clear();
        n
    }
}

/// One in-memory client. Dropping it closes its side, as dropping a
/// socket would.
#[derive(Debug)]
pub struct PipeClient {
    id: ClientId,
    addr: SocketAddr,
    pipe: Rc<RefCell<Inner>>,
}

impl Drop for PipeClient {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.pipe.try_borrow_mut() {
            let now = inner.now;
            inner.core.peer_gone(self.id, now);
            inner.pump();
        }
    }
}

impl PipeClient {
    /// Its id in the core.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Its address, as the core sees it.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `v` as one frame.
    pub fn send(&mut self, v: &Value) {
        self.send_payload(v.to_string().as_bytes());
    }

    /// Sends `payload` as one frame.
    pub fn send_payload(&mut self, payload: &[u8]) {
        self.send_raw(&length_prefix::encode(payload));
    }

    /// Sends bytes as they are, as one read of the server.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut inner = self.pipe.borrow_mut();
        let now = inner.now;
        if inner.inboxes.get(&self.id).is_none_or(|i| i.closed) {
            // Like writing to a closed socket: the bytes go nowhere.
            return;
        }
        inner.core.receive(self.id, bytes, now);
        inner.pump();
    }

    /// Limits the unread bytes its "socket" holds (`None`: no limit): past
    /// that the server writes nothing more until the client reads, and
    /// frames can be left partly written, as with a full socket buffer.
    pub fn set_window(&mut self, window: Option<usize>) {
        let mut inner = self.pipe.borrow_mut();
        if let Some(inbox) = inner.inboxes.get_mut(&self.id) {
            inbox.window = window;
        }
        inner.pump();
    }

    /// The client's network goes away without the server noticing: what
    /// it had not read (a partly received frame included) is lost, and so
    /// is whatever the server writes from now on. The server learns only
    /// through [`close`](Self::close) (or dropping the client), a timeout,
    /// or a resume that replaces this connection.
    pub fn vanish(&mut self) {
        let mut inner = self.pipe.borrow_mut();
        if let Some(inbox) = inner.inboxes.get_mut(&self.id) {
            inbox.vanished = true;
            inbox.bytes.clear();
            inbox.read = 0;
        }
    }

    /// Whether the server closed this connection (whatever is left to
    /// read).
    pub fn server_closed(&self) -> bool {
        self.pipe.borrow().inboxes.get(&self.id).is_some_and(|i| i.closed)
    }

    /// The client closes its side (or its socket resets).
    pub fn close(&mut self) {
        let mut inner = self.pipe.borrow_mut();
        let now = inner.now;
        inner.core.peer_gone(self.id, now);
        inner.pump();
    }

    /// The next frame's payload as the server wrote it, or `None` if the
    /// server closed the connection. Panics if nothing is there.
    pub fn try_recv_raw(&mut self) -> Option<Vec<u8>> {
        let mut inner = self.pipe.borrow_mut();
        let inbox = inner.inboxes.get_mut(&self.id).expect("a connected client");
        match split_frame(&inbox.bytes[inbox.read..], u32::MAX as usize) {
            Ok(Some((payload, used))) => {
                let payload = payload.to_vec();
                inbox.read += used;
                if inbox.read == inbox.bytes.len() {
                    inbox.bytes.clear();
                    inbox.read = 0;
                }
                if inbox.window.is_some() {
                    // The socket has room again: the server writes more.
                    inner.pump();
                }
                Some(payload)
            }
            Ok(None) if inbox.closed => {
                assert!(inbox.read == inbox.bytes.len(), "the connection closed mid-frame");
                None
            }
            Ok(None) => panic!("nothing to receive: the server sent nothing more and did not close"),
            Err(e) => panic!("the server broke the framing: {e:?}"),
        }
    }

    /// The next frame, or `None` if the server closed the connection.
    pub fn try_recv(&mut self) -> Option<Value> {
        let payload = self.try_recv_raw()?;
        Some(serde_json::from_slice(&payload).expect("server sent JSON"))
    }

    /// The next frame; panics if the connection closed or nothing is there.
    pub fn recv(&mut self) -> Value {
        self.try_recv()
            .expect("connection closed while waiting for a frame")
    }

    /// Skips frames until one matches; panics if none does.
    pub fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv();
            if pred(&v) {
                return v;
            }
        }
    }

    /// Expects the server to have closed the connection (after any frames,
    /// which are returned).
    pub fn expect_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(v) = self.try_recv() {
            seen.push(v);
        }
        seen
    }

    /// Whether a whole frame waits to be read.
    pub fn has_pending(&self) -> bool {
        let inner = self.pipe.borrow();
        let inbox = &inner.inboxes[&self.id];
        matches!(
            split_frame(&inbox.bytes[inbox.read..], u32::MAX as usize),
            Ok(Some(_))
        )
    }

    /// Whether the server closed the connection and everything it sent
    /// was read.
    pub fn is_closed(&self) -> bool {
        let inner = self.pipe.borrow();
        let inbox = &inner.inboxes[&self.id];
        inbox.closed && inbox.read == inbox.bytes.len()
    }
}
