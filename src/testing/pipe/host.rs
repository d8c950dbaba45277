//! The host's side of the in-memory pipe: the calls of
//! [`Server`](crate::Server) on the pipe's core, at the pipe's clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use super::Inner;
use crate::error::{Error, Result};
use crate::event::ClientId;
use crate::stats::Stats;

/// The host's side of the pipe: the calls of [`Server`](crate::Server), at
/// the pipe's clock.
#[derive(Debug)]
pub struct Host<'a> {
    pub(super) inner: &'a mut Inner,
}

impl Host<'_> {
    /// The clock, for a call that gives the server new work; refused once
    /// a shutdown has begun.
    fn live(&self) -> Result<Instant> {
        if self.inner.shutting_down {
            return Err(Error::ShuttingDown);
        }
        Ok(self.inner.now)
    }

    /// As [`Server::send`](crate::Server::send).
    pub fn send(&mut self, client: ClientId, json: &[u8]) -> Result<()> {
        let now = self.live()?;
        self.inner.core.send(client, json, now)
    }

    /// As [`Server::broadcast`](crate::Server::broadcast).
    pub fn broadcast(&mut self, json: &[u8]) -> Result<usize> {
        let now = self.live()?;
        self.inner.core.broadcast(json, now)
    }

    /// As [`Server::kick`](crate::Server::kick).
    pub fn kick(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        let now = self.live()?;
        self.inner.core.kick(client, message, now)
    }

    /// As [`Server::room_send`](crate::Server::room_send).
    pub fn room_send(&mut self, room: &str, json: &[u8]) -> Result<usize> {
        let now = self.live()?;
        self.inner.core.room_send(room, json, now)
    }

    /// As [`Server::room_members`](crate::Server::room_members).
    pub fn room_members(&mut self, room: &str) -> Option<Vec<ClientId>> {
        self.inner.core.inner().room_members(room)
    }

    /// As [`Server::rooms`](crate::Server::rooms).
    pub fn rooms(&mut self) -> Vec<Arc<str>> {
        self.inner.core.inner().room_names()
    }

    /// As [`Server::room_remove`](crate::Server::room_remove).
    pub fn room_remove(&mut self, client: ClientId, room: &str) -> Result<()> {
        let now = self.live()?;
        self.inner.core.room_remove(client, room, now)
    }

    /// As [`Server::approve`](crate::Server::approve).
    pub fn approve(&mut self, client: ClientId) -> Result<()> {
        let now = self.live()?;
        self.inner.core.approve(client, now)
    }

    /// As [`Server::reject`](crate::Server::reject).
    pub fn reject(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        let now = self.live()?;
        self.inner.core.reject(client, message, now)
    }

    /// As [`Server::release`](crate::Server::release).
    pub fn release(&mut self, ticket: u64) -> Result<()> {
        let now = self.live()?;
        self.inner.core.release(ticket, now)
    }

    /// As [`Server::drop_held`](crate::Server::drop_held).
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>) -> Result<()> {
        let now = self.live()?;
        self.inner.core.drop_held(ticket, code, message, now)
    }

    /// As [`Server::notice`](crate::Server::notice).
    pub fn notice(&mut self, client: ClientId, text: &str) -> Result<()> {
        let now = self.live()?;
        self.inner.core.notice(client, text, now)
    }

    /// As [`Server::notice_all`](crate::Server::notice_all).
    pub fn notice_all(&mut self, text: &str) -> Result<usize> {
        let now = self.live()?;
        self.inner.core.notice_all(text, now)
    }

    /// As [`Server::is_parked`](crate::Server::is_parked).
    pub fn is_parked(&mut self, client: ClientId) -> bool {
        self.inner.core.is_parked(client)
    }

    /// As [`Server::set_user_data`](crate::Server::set_user_data).
    pub fn set_user_data(&mut self, client: ClientId, data: u64) -> Result<()> {
        self.inner.core.inner().set_user_data(client, data)
    }

    /// As [`Server::user_data`](crate::Server::user_data).
    pub fn user_data(&mut self, client: ClientId) -> Option<u64> {
        self.inner.core.inner().user_data(client)
    }

    /// As [`Server::nick`](crate::Server::nick).
    pub fn nick(&mut self, client: ClientId) -> Option<&str> {
        self.inner.core.inner().nick(client)
    }

    /// As [`Server::peer_addr`](crate::Server::peer_addr).
    pub fn peer_addr(&mut self, client: ClientId) -> Option<SocketAddr> {
        self.inner.core.inner().peer(client)
    }

    /// As [`Server::stats`](crate::Server::stats).
    pub fn stats(&mut self) -> Stats {
        self.inner.core.stats()
    }

    /// As [`Server::shutdown`](crate::Server::shutdown): starts closing
    /// every client; true once all are closed.
    pub fn shutdown(&mut self, deadline: Duration) -> bool {
        if !self.inner.shutting_down {
            self.inner.shutting_down = true;
            let now = self.inner.now;
            self.inner.core.shutdown(now, now + deadline);
            self.inner.pump();
        }
        self.inner.inboxes.values().all(|i| i.closed)
    }

    /// As [`Server::is_shutting_down`](crate::Server::is_shutting_down).
    pub fn is_shutting_down(&mut self) -> bool {
        self.inner.shutting_down
    }
}
