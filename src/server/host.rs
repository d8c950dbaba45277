//! What the host does to clients: send, broadcast, kick, rooms, approval,
//! interception, user data; and what it may ask about them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Server, Waker};
use crate::error::{Error, Result};
use crate::event::ClientId;
use crate::stats::Stats;

impl Server {
    /// Queues one JSON object, exactly as given, to one client.
    pub fn send(&mut self, client: ClientId, json: &[u8]) -> Result<()> {
        self.core.send(client, json, self.live()?)
    }

    /// Queues one JSON object to every registered client (encoded once,
    /// shared by every queue). Returns how many clients it was queued to.
    pub fn broadcast(&mut self, json: &[u8]) -> Result<usize> {
        self.core.broadcast(json, self.live()?)
    }

    /// Disconnects a client: it gets `{"type":"error","code":"kicked"}`
    /// (with `message`, if given) and others see it leave with reason
    /// `kicked`.
    pub fn kick(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        self.core.kick(client, message, self.live()?)
    }

    /// Queues one JSON object, exactly as given, to every member of a
    /// room; returns how many members it was queued to.
    pub fn room_send(&mut self, room: &str, json: &[u8]) -> Result<usize> {
        self.core.room_send(room, json, self.live()?)
    }

    /// A room's members, in joining order; `None` if no such room exists.
    pub fn room_members(&self, room: &str) -> Option<Vec<ClientId>> {
        self.core.room_members(room)
    }

    /// Every room's name, sorted.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.core.room_names()
    }

    /// Takes a client out of a room: it gets `{"type":"parted","room":R}`
    /// and the other members see it part.
    pub fn room_remove(&mut self, client: ClientId, room: &str) -> Result<()> {
        self.core.room_remove(client, room, self.live()?)
    }

    /// With [`Config::approve_registrations`](crate::Config::approve_registrations): lets a client whose
    /// `ApprovalRequested` event arrived register.
    pub fn approve(&mut self, client: ClientId) -> Result<()> {
        self.core.approve(client, self.live()?)
    }

    /// With [`Config::approve_registrations`](crate::Config::approve_registrations): refuses a client's `hello`;
    /// it gets `{"type":"error","code":"rejected","message":message}`.
    pub fn reject(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        self.core.reject(client, message, self.live()?)
    }

    /// With [`Config::intercept_messages`](crate::Config::intercept_messages): routes a held message as it is.
    /// A message whose sender left is forgotten with it (`UnknownTicket`).
    pub fn release(&mut self, ticket: u64) -> Result<()> {
        self.core.release(ticket, self.live()?)
    }

    /// With [`Config::intercept_messages`](crate::Config::intercept_messages): discards a held message; its
    /// sender gets `{"type":"error","code":code,"message":message}`.
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>) -> Result<()> {
        self.core.drop_held(ticket, code, message, self.live()?)
    }

    /// Sends one client (connected, or a parked session) what the host says
    /// itself: `{"type":"notice","text":text}`. Clients cannot send a
    /// `notice`, so none can pose as the host.
    pub fn notice(&mut self, client: ClientId, text: &str) -> Result<()> {
        self.core.notice(client, text, self.live()?)
    }

    /// Sends every registered client (parked sessions included) the notice
    /// `{"type":"notice","text":text}`, encoded once; returns how many
    /// clients it was queued to.
    pub fn notice_all(&mut self, text: &str) -> Result<usize> {
        self.core.notice_all(text, self.live()?)
    }

    /// Whether `client` is a resumable session that is parked: its
    /// connection ended and it waits for a resume (a `Parked` event said
    /// so; `Resumed` or `Disconnected` ends that).
    pub fn is_parked(&self, client: ClientId) -> bool {
        self.core.is_parked(client)
    }

    /// Attaches a value to a client; every later event of it carries it.
    pub fn set_user_data(&mut self, client: ClientId, data: u64) -> Result<()> {
        self.core.set_user_data(client, data)
    }

    /// A client's user data (0 until set).
    pub fn user_data(&self, client: ClientId) -> Option<u64> {
        self.core.user_data(client)
    }

    /// The time, for a call that gives the server new work; refused once
    /// a shutdown has begun.
    fn live(&self) -> Result<Instant> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        Ok(Instant::now())
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            draining: self.slots.drains() as u64,
            drained_bytes: self.drained_bytes,
            ..self.core.stats()
        }
    }

    /// A handle that makes a blocked `poll_once` return, from any thread.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// A connected client's nick, once registered.
    pub fn nick(&self, client: ClientId) -> Option<&str> {
        self.core.nick(client)
    }

    /// A connected client's address.
    pub fn peer_addr(&self, client: ClientId) -> Option<SocketAddr> {
        self.core.peer(client)
    }

    /// How a connected client is connected (TCP, TLS, WebSocket).
    pub fn client_via(&self, client: ClientId) -> Option<crate::Via> {
        self.core.via(client)
    }

    /// The registered client with this nick, compared case-insensitively
    /// as the protocol compares nicks; `None` if nobody has it (a client
    /// that is leaving no longer has its nick).
    pub fn find_client(&self, nick: &str) -> Option<ClientId> {
        self.core.find_client(nick)
    }

    /// Whether `client` is connected and has not left: no `Disconnected`
    /// event has been made for it.
    pub fn is_connected(&self, client: ClientId) -> bool {
        self.core.is_open(client)
    }
}
