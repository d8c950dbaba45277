//! The sans-IO core behind a small facade, for benchmarks, fuzzers and
//! tests that need no sockets: [`Core`] drives the protocol core through
//! the same transport a plain TCP client gets, bytes in and framed bytes
//! out, and [`Pipe`] (`pipe.rs`) connects in-memory clients to it, as
//! quiche's `test_utils::Pipe` does. Not a stable API: it follows the
//! internals.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::error::Result;
use crate::event::{ClientId, Event, Reason};
use crate::idmap::IdMap;
use crate::protocol;
use crate::stats::Stats;
use crate::transport::Transport;

mod pipe;

pub use pipe::{Host, Pipe, PipeClient};

/// Every session and the routing between them, driven by hand: bytes in
/// with [`receive`](Core::receive), framed bytes out with
/// [`take_output`](Core::take_output).
#[derive(Debug)]
pub struct Core {
    core: protocol::Core,
    transports: IdMap<Transport>,
    cfg: Config,
    finished: Vec<(ClientId, Reason)>,
    scratch: Vec<u8>,
}

impl Core {
    /// A core with the limits of `cfg` (its address is not used).
    pub fn new(cfg: &Config) -> Self {
        Core {
            core: protocol::Core::new(cfg),
            transports: IdMap::default(),
            cfg: cfg.clone(),
            finished: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// A new connection from `peer`.
    pub fn connect(&mut self, peer: SocketAddr, now: Instant) -> ClientId {
        let id = self.core.connect(peer, crate::event::Via::Tcp, now);
        self.transports.insert(id, Transport::length_prefix(&self.cfg));
        id
    }

    /// A new WebSocket connection from `peer`, its upgrade done: it
    /// sends masked text frames and gets the server's unmasked ones.
    pub fn connect_websocket(&mut self, peer: SocketAddr, now: Instant) -> ClientId {
        let id = self.core.connect(peer, crate::event::Via::Ws, now);
        self.transports
            .insert(id, Transport::websocket(&self.cfg, Vec::new()));
        id
    }

    /// Bytes from a client.
    pub fn receive(&mut self, id: ClientId, bytes: &[u8], now: Instant) {
        let Some(transport) = self.transports.get_mut(&id) else {
            return;
        };
        self.core.heard(id, bytes.len(), now);
        // The server's read buffer is its own, and transports may decode in
        // place (WebSocket unmasking): the same here.
        self.scratch.clear();
        self.scratch.extend_from_slice(bytes);
        transport.received(&mut self.core, id, &mut self.scratch, now);
    }

    /// Timers, and input held back (a rate limit, a long queue) that may
    /// now go on (as the server does every round).
    pub fn tick(&mut self, now: Instant) {
        self.resume_input(now);
        self.core.tick(now);
    }

    /// Offers the core the input its transports hold that it takes now;
    /// returns whether any was taken.
    pub fn resume_input(&mut self, now: Instant) -> bool {
        let mut moved = false;
        for (&id, transport) in &mut self.transports {
            if transport.has_pending_input() && self.core.wants_input(id, now) {
                let before = self.core.stats().frames_in;
                transport.resume(&mut self.core, id, now);
                moved |= self.core.stats().frames_in > before;
            }
        }
        moved
    }

    /// The peer closed or reset.
    pub fn peer_gone(&mut self, id: ClientId, now: Instant) {
        self.core.peer_gone(id, now);
    }

    /// Appends what is queued for `id` to `out`, framed as a TCP client
    /// gets it, as if the socket took it all; returns how many bytes.
    pub fn take_output(&mut self, id: ClientId, out: &mut Vec<u8>) -> usize {
        self.forget_dirty();
        let before = out.len();
        if let Some(transport) = self.transports.get_mut(&id) {
            let mut sink = |slices: &[std::io::IoSlice<'_>]| {
                let mut n = 0;
                for s in slices {
                    out.extend_from_slice(s);
                    n += s.len();
                }
                Ok(n)
            };
            transport
                .flush(&mut self.core, id, &mut sink)
                .expect("writing to memory");
        }
        out.len() - before
    }

    /// As [`take_output`](Self::take_output), but as if the socket took at
    /// most `max` bytes: a frame may be left partly written, as a full
    /// socket buffer leaves it.
    pub fn take_output_limited(&mut self, id: ClientId, out: &mut Vec<u8>, max: usize) -> usize {
        self.forget_dirty();
        let before = out.len();
        if let Some(transport) = self.transports.get_mut(&id) {
            let mut room = max;
            let mut sink = |slices: &[std::io::IoSlice<'_>]| {
                let mut n = 0;
                for s in slices {
                    let take = s.len().min(room);
                    out.extend_from_slice(&s[..take]);
                    room -= take;
                    n += take;
                    if take < s.len() {
                        break;
                    }
                }
                Ok(n)
            };
            transport
                .flush(&mut self.core, id, &mut sink)
                .expect("writing to memory");
        }
        out.len() - before
    }

    /// Drops what is queued for `id` as if written; returns how many bytes.
    pub fn discard_output(&mut self, id: ClientId) -> usize {
        let mut out = Vec::new();
        self.take_output(id, &mut out)
    }

    /// Empties the list of clients worth a write attempt (whose queue
    /// became non-empty, and every follower of the log for everyone when
    /// something was logged that not all of them took; the server drains
    /// it every round to write to them); returns how many entries it held.
    pub fn take_dirty(&mut self) -> usize {
        let mut dirty = Vec::new();
        self.core.take_dirty(&mut dirty);
        dirty.len()
    }

    /// Forgets connections that finished closing, as the server would after
    /// flushing them; returns their ids.
    pub fn reap(&mut self, now: Instant) -> Vec<ClientId> {
        self.forget_dirty();
        self.core.end_round();
        self.finished.clear();
        self.core.finished(now, &mut self.finished);
        let ids: Vec<ClientId> = self.finished.iter().map(|&(id, _)| id).collect();
        for &id in &ids {
            self.core.remove(id, now);
            self.transports.remove(&id);
        }
        ids
    }

    /// The server takes the core's list of clients with new output every
    /// round; here output is taken by hand, so the list is only emptied, or
    /// it would grow by an id each time a queue goes from empty to not empty.
    fn forget_dirty(&mut self) {
        let mut dirty = Vec::new();
        self.core.take_dirty(&mut dirty);
    }

    /// The events so far.
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.core.events().drain(..)
    }

    /// Host send.
    pub fn send(&mut self, id: ClientId, json: &[u8], now: Instant) -> Result<()> {
        self.core.send(id, json, now)
    }

    /// Host broadcast.
    pub fn broadcast(&mut self, json: &[u8], now: Instant) -> Result<usize> {
        self.core.broadcast(json, now)
    }

    /// Host kick.
    pub fn kick(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.core.kick(id, message, now)
    }

    /// Host room send.
    pub fn room_send(&mut self, room: &str, json: &[u8], now: Instant) -> Result<usize> {
        self.core.room_send(room, json, now)
    }

    /// Host removal of a client from a room.
    pub fn room_remove(&mut self, id: ClientId, room: &str, now: Instant) -> Result<()> {
        self.core.room_remove(id, room, now)
    }

    /// Host approval of a waiting registration.
    pub fn approve(&mut self, id: ClientId, now: Instant) -> Result<()> {
        self.core.approve(id, now)
    }

    /// Host refusal of a waiting registration.
    pub fn reject(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.core.reject(id, message, now)
    }

    /// Host release of an intercepted message.
    pub fn release(&mut self, ticket: u64, now: Instant) -> Result<()> {
        self.core.release(ticket, now)
    }

    /// Host discard of an intercepted message.
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>, now: Instant) -> Result<()> {
        self.core.drop_held(ticket, code, message, now)
    }

    /// Host notice to one client.
    pub fn notice(&mut self, id: ClientId, text: &str, now: Instant) -> Result<()> {
        self.core.notice(id, text, now)
    }

    /// Host notice to every registered client.
    pub fn notice_all(&mut self, text: &str, now: Instant) -> Result<usize> {
        self.core.notice_all(text, now)
    }

    /// Whether `id` is a parked session.
    pub fn is_parked(&self, id: ClientId) -> bool {
        self.core.is_parked(id)
    }

    /// Whether `id` is connected and not closing.
    pub fn is_open(&self, id: ClientId) -> bool {
        self.core.is_open(id)
    }

    /// Starts closing every client, giving up flushing at `deadline`.
    pub fn shutdown(&mut self, now: Instant, deadline: Instant) {
        self.core.shutdown(now, deadline);
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The protocol core itself, for the pipe's host calls.
    pub(crate) fn inner(&mut self) -> &mut protocol::Core {
        &mut self.core
    }
}
