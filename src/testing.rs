//! The sans-IO core behind a small facade, for benchmarks, fuzzers and
//! tests that need no sockets. Not a stable API: it follows the internals.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::error::Result;
use crate::event::{ClientId, Event};
use crate::protocol::Hub;
use crate::stats::Stats;

/// Every session and the routing between them, driven by hand: bytes in
/// with [`receive`](Core::receive), frames out with
/// [`take_output`](Core::take_output).
#[derive(Debug)]
pub struct Core {
    hub: Hub,
    finished: Vec<ClientId>,
}

impl Core {
    /// A core with the limits of `cfg` (its address is not used).
    pub fn new(cfg: &Config) -> Self {
        Core {
            hub: Hub::new(cfg),
            finished: Vec::new(),
        }
    }

    /// A new connection from `peer`.
    pub fn connect(&mut self, peer: SocketAddr, now: Instant) -> ClientId {
        self.hub.connect(peer, now)
    }

    /// Bytes from a client.
    pub fn receive(&mut self, id: ClientId, bytes: &[u8], now: Instant) {
        self.hub.receive(id, bytes, now);
    }

    /// Timers.
    pub fn tick(&mut self, now: Instant) {
        self.hub.tick(now);
    }

    /// The peer closed or reset.
    pub fn peer_gone(&mut self, id: ClientId, now: Instant) {
        self.hub.peer_gone(id, now);
    }

    /// Appends what is queued for `id` to `out`, as if the socket took it
    /// all; returns how many bytes.
    pub fn take_output(&mut self, id: ClientId, out: &mut Vec<u8>) -> usize {
        self.forget_dirty();
        let mut total = 0;
        while let Some(conn) = self.hub.conn(id) {
            let mut slices = [std::io::IoSlice::new(&[]); 64];
            let n = conn.out.slices(&mut slices);
            if n == 0 {
                break;
            }
            let before = out.len();
            for s in &slices[..n] {
                out.extend_from_slice(s);
            }
            let len = out.len() - before;
            self.hub.written(id, len);
            total += len;
        }
        total
    }

    /// Drops what is queued for `id` as if written; returns how many bytes.
    pub fn discard_output(&mut self, id: ClientId) -> usize {
        self.forget_dirty();
        let queued = self.hub.conn(id).map_or(0, |c| c.out.queued_bytes());
        self.hub.written(id, queued);
        queued
    }

    /// Empties the list of clients whose queue became non-empty (the
    /// server drains it every round to write to them); returns how many
    /// entries it held.
    pub fn take_dirty(&mut self) -> usize {
        let mut dirty = Vec::new();
        self.hub.take_dirty(&mut dirty);
        dirty.len()
    }

    /// Forgets connections that finished closing, as the server would after
    /// flushing them; returns their ids.
    pub fn reap(&mut self, now: Instant) -> Vec<ClientId> {
        self.forget_dirty();
        self.finished.clear();
        self.hub.finished(now, &mut self.finished);
        for &id in &self.finished {
            self.hub.remove(id, now);
        }
        self.finished.clone()
    }

    /// The server takes the hub's list of clients with new output every
    /// round; here output is taken by hand, so the list is only emptied, or
    /// it would grow by an id each time a queue goes from empty to not empty.
    fn forget_dirty(&mut self) {
        self.finished.clear();
        self.hub.take_dirty(&mut self.finished);
        self.finished.clear();
    }

    /// The events so far.
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.hub.events().drain(..)
    }

    /// Host send.
    pub fn send(&mut self, id: ClientId, json: &[u8], now: Instant) -> Result<()> {
        self.hub.send(id, json, now)
    }

    /// Host broadcast.
    pub fn broadcast(&mut self, json: &[u8], now: Instant) -> Result<usize> {
        self.hub.broadcast(json, now)
    }

    /// Host kick.
    pub fn kick(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.hub.kick(id, message, now)
    }

    /// Host room send.
    pub fn room_send(&mut self, room: &str, json: &[u8], now: Instant) -> Result<usize> {
        self.hub.room_send(room, json, now)
    }

    /// Host removal of a client from a room.
    pub fn room_remove(&mut self, id: ClientId, room: &str, now: Instant) -> Result<()> {
        self.hub.room_remove(id, room, now)
    }

    /// Host approval of a waiting registration.
    pub fn approve(&mut self, id: ClientId, now: Instant) -> Result<()> {
        self.hub.approve(id, now)
    }

    /// Host refusal of a waiting registration.
    pub fn reject(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.hub.reject(id, message, now)
    }

    /// Host release of an intercepted message.
    pub fn release(&mut self, ticket: u64, now: Instant) -> Result<()> {
        self.hub.release(ticket, now)
    }

    /// Host discard of an intercepted message.
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>, now: Instant) -> Result<()> {
        self.hub.drop_held(ticket, code, message, now)
    }

    /// Starts closing every client, giving up flushing at `deadline`.
    pub fn shutdown(&mut self, now: Instant, deadline: Instant) {
        self.hub.shutdown(now, deadline);
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }
}
