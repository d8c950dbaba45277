//! Host authority: approval of registrations, interception of messages,
//! and per-client user data. All through events and calls; nothing calls
//! back into the host.

use std::sync::Arc;
use std::time::Instant;

use super::Hub;
use crate::conn::Phase;
use crate::error::{Error, Result};
use crate::event::{ClientId, EventKind, HeldMessage};
use crate::frame;
use crate::message::{self, Outgoing};

/// A message waiting for the host's verdict.
#[derive(Debug)]
pub(super) struct Held {
    pub sender: ClientId,
    pub payload: Arc<[u8]>,
}

impl Hub {
    /// A valid, free nick under `approve_registrations`: reserve it and ask
    /// the host.
    pub(super) fn await_approval(
        &mut self,
        id: ClientId,
        key: String,
        nick: Arc<str>,
        token: Option<String>,
        now: Instant,
    ) {
        self.reserved.insert(key, id);
        let deadline = now + self.approval_timeout;
        self.wake_at(deadline);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::AwaitingApproval { nick, deadline };
        }
        self.push_event(
            id,
            EventKind::ApprovalRequested {
                token: token.map(Arc::from),
            },
        );
    }

    /// Takes a client out of `AwaitingApproval`, freeing its nick; returns
    /// the nick, or `None` if it was not waiting.
    pub(super) fn end_approval(&mut self, id: ClientId) -> Option<Arc<str>> {
        let conn = self.conns.get_mut(&id)?;
        let Phase::AwaitingApproval { nick, .. } = &conn.phase else {
            return None;
        };
        let nick = nick.clone();
        conn.phase = Phase::Handshake;
        self.reserved.remove(&message::fold(&nick));
        Some(nick)
    }

    /// Lets a client waiting for approval in: it gets its `welcome`.
    pub fn approve(&mut self, id: ClientId, now: Instant) -> Result<()> {
        self.known(id)?;
        let nick = self.end_approval(id).ok_or(Error::NotAwaitingApproval(id))?;
        self.register(id, nick);
        self.drop_doomed(now);
        Ok(())
    }

    /// Refuses a client waiting for approval: it gets
    /// `{"type":"error","code":"rejected","message":...}` and may try
    /// `hello` again.
    pub fn reject(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.known(id)?;
        self.end_approval(id).ok_or(Error::NotAwaitingApproval(id))?;
        let frame = frame::encode_json(&Outgoing::Error {
            code: "rejected",
            to: None,
            room: None,
            message,
        });
        self.enqueue(id, frame);
        self.drop_doomed(now);
        Ok(())
    }

    /// Under `intercept_messages`: keeps a routable frame for the host.
    pub(super) fn hold(&mut self, id: ClientId, payload: &[u8]) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let payload: Arc<[u8]> = payload.into();
        self.held.insert(
            ticket,
            Held {
                sender: id,
                payload: payload.clone(),
            },
        );
        self.push_event(id, EventKind::Intercepted(HeldMessage::new(ticket, payload)));
    }

    /// Routes a held message as if it had just arrived. A message whose
    /// sender left is forgotten with it: `UnknownTicket`.
    pub fn release(&mut self, ticket: u64, now: Instant) -> Result<()> {
        let held = self.held.remove(&ticket).ok_or(Error::UnknownTicket(ticket))?;
        // Held messages leave with their sender, so it is still registered.
        let from = self.conns.get(&held.sender).and_then(|c| c.nick.clone());
        if let (Some(from), Ok(msg)) = (from, message::parse(&held.payload)) {
            self.route(held.sender, &from, msg, now);
        }
        self.drop_doomed(now);
        Ok(())
    }

    /// Discards a held message; its sender gets
    /// `{"type":"error","code":code,"message":...}`.
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>, now: Instant) -> Result<()> {
        let held = self.held.remove(&ticket).ok_or(Error::UnknownTicket(ticket))?;
        let frame = frame::encode_json(&Outgoing::Error {
            code,
            to: None,
            room: None,
            message,
        });
        self.enqueue(held.sender, frame);
        self.drop_doomed(now);
        Ok(())
    }

    /// `UnknownClient` unless `id` is connected and not closing.
    fn known(&self, id: ClientId) -> Result<()> {
        match self.conns.get(&id) {
            Some(conn) if !conn.is_closing() => Ok(()),
            _ => Err(Error::UnknownClient(id)),
        }
    }

    /// Attaches a value the host chooses to a client; every later event of
    /// that client carries it.
    pub fn set_user_data(&mut self, id: ClientId, data: u64) -> Result<()> {
        let conn = self
            .conns
            .get_mut(&id)
            .filter(|c| !c.is_closing())
            .ok_or(Error::UnknownClient(id))?;
        conn.user_data = data;
        Ok(())
    }

    /// A client's user data.
    pub fn user_data(&self, id: ClientId) -> Option<u64> {
        self.conns.get(&id).map(|c| c.user_data)
    }
}
