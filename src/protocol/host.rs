//! What the host asks of the core: send, broadcast, kick, rooms, approval,
//! interception and user data. Each call that queues output ends by
//! dropping the clients it pushed over their cap.

use std::sync::Arc;
use std::time::Instant;

use super::conn::Phase;
use super::Core;
use crate::code::Code;
use crate::error::{Error, Result};
use crate::event::{ClientId, EventKind, Reason};
use crate::message::{self, check_payload, error_payload, Payload};

impl Core {
    /// Queues one JSON object, as given, to one client.
    pub fn send(&mut self, id: ClientId, payload: &[u8], now: Instant) -> Result<()> {
        check_payload(payload, self.max_frame_bytes)?;
        self.known(id)?;
        self.reply(id, &Payload::from(payload));
        self.drop_doomed(now);
        Ok(())
    }

    /// Queues one JSON object to every registered client; returns how many
    /// queues took it.
    pub fn broadcast(&mut self, payload: &[u8], now: Instant) -> Result<usize> {
        check_payload(payload, self.max_frame_bytes)?;
        let payload = Payload::from(payload);
        let queued = self.delivery.fan_out_everyone(&mut self.conns, &payload, None);
        self.drop_doomed(now);
        Ok(queued)
    }

    /// Disconnects a client with reason `kicked`; `message` goes to it in
    /// the error frame.
    pub fn kick(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.known(id)?;
        // A parked session has no connection to say it to.
        self.end_parked(id, Reason::Kicked, now);
        self.leave(id, Reason::Kicked, now, Some((Code::Kicked, message)));
        self.drop_doomed(now);
        Ok(())
    }

    /// Queues one JSON object, as given, to every member of a room; returns
    /// how many queues took it.
    pub fn room_send(&mut self, name: &str, payload: &[u8], now: Instant) -> Result<usize> {
        check_payload(payload, self.max_frame_bytes)?;
        let Some(room) = self.rooms.get(&message::fold(name)) else {
            return Err(Error::UnknownRoom(name.to_string()));
        };
        let payload = Payload::from(payload);
        let queued = self
            .delivery
            .fan_out(&mut self.conns, room.members.iter().copied(), &payload, None);
        self.drop_doomed(now);
        Ok(queued)
    }

    /// A room's members, in joining order; `None` if there is no such room.
    pub fn room_members(&self, name: &str) -> Option<Vec<ClientId>> {
        self.rooms.get(&message::fold(name)).map(|r| r.members.clone())
    }

    /// Every room's name, sorted.
    pub fn room_names(&self) -> Vec<Arc<str>> {
        self.rooms.names()
    }

    /// Takes a client out of a room on the host's behalf; the client gets
    /// `{"type":"parted","room":R}`.
    pub fn room_remove(&mut self, id: ClientId, name: &str, now: Instant) -> Result<()> {
        self.known(id)?;
        let key = message::fold(name);
        if self.rooms.get(&key).is_none() {
            return Err(Error::UnknownRoom(name.to_string()));
        }
        if !self.rooms.is_member(id, &key) {
            return Err(Error::NotInRoom {
                client: id,
                room: name.to_string(),
            });
        }
        self.part(id, &key, true);
        if let Some(nick) = self.nick(id).map(str::to_string) {
            self.cluster_part(&nick, name, now);
        }
        self.drop_doomed(now);
        Ok(())
    }

    /// A valid, free nick under `approve_registrations`: reserve it and ask
    /// the host, who has until `deadline`.
    pub(super) fn await_approval(
        &mut self,
        id: ClientId,
        key: String,
        nick: Arc<str>,
        token: Option<String>,
        deadline: Instant,
        resumable: bool,
    ) {
        self.registry.reserve(key, id);
        self.timers.wake_at(deadline);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::AwaitingApproval {
                nick,
                deadline,
                resumable,
            };
        }
        self.push_event(
            id,
            EventKind::ApprovalRequested {
                token: token.map(Arc::from),
            },
        );
    }

    /// Takes a client out of `AwaitingApproval`, freeing its nick; returns
    /// the nick and whether it asked for a resumable session, or `None` if
    /// it was not waiting.
    pub(super) fn end_approval(&mut self, id: ClientId) -> Option<(Arc<str>, bool)> {
        let conn = self.conns.get_mut(&id)?;
        let Phase::AwaitingApproval { nick, resumable, .. } = &conn.phase else {
            return None;
        };
        let (nick, resumable) = (nick.clone(), *resumable);
        conn.phase = Phase::Handshake;
        self.registry.unreserve(&nick);
        Some((nick, resumable))
    }

    /// Lets a client waiting for approval in: it gets its `welcome`.
    pub fn approve(&mut self, id: ClientId, now: Instant) -> Result<()> {
        self.known(id)?;
        let (nick, resumable) = self.end_approval(id).ok_or(Error::NotAwaitingApproval(id))?;
        self.register(id, nick, resumable);
        self.drop_doomed(now);
        Ok(())
    }

    /// Refuses a client waiting for approval: it gets
    /// `{"type":"error","code":"rejected","message":...}` and may try
    /// `hello` again.
    pub fn reject(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        self.known(id)?;
        let (nick, _) = self.end_approval(id).ok_or(Error::NotAwaitingApproval(id))?;
        self.cluster_unclaim(id, Some(&nick), Reason::Kicked, now);
        self.reply_error(id, Code::Rejected, message);
        self.drop_doomed(now);
        Ok(())
    }

    /// Routes a held message as if it had just arrived. A message whose
    /// sender left is forgotten with it: `UnknownTicket`.
    pub fn release(&mut self, ticket: u64, now: Instant) -> Result<()> {
        let held = self.authority.take(ticket).ok_or(Error::UnknownTicket(ticket))?;
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
        let held = self.authority.take(ticket).ok_or(Error::UnknownTicket(ticket))?;
        self.reply(held.sender, &error_payload(code, None, None, message));
        self.drop_doomed(now);
        Ok(())
    }

    /// Attaches a value the host chooses to a client; every later event of
    /// that client carries it.
    pub fn set_user_data(&mut self, id: ClientId, data: u64) -> Result<()> {
        self.known(id)?;
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.user_data = data;
        }
        Ok(())
    }

    /// A client's user data.
    pub fn user_data(&self, id: ClientId) -> Option<u64> {
        self.conns.get(&id).map(|c| c.user_data)
    }

    /// `UnknownClient` unless `id` is connected and not closing, or a
    /// parked session (which takes the host's calls as a connected client
    /// would: what is sent to it waits for its resume).
    pub(super) fn known(&self, id: ClientId) -> Result<()> {
        if self.is_open(id) || self.conns.get(&id).is_some_and(|c| c.is_parked()) {
            Ok(())
        } else {
            Err(Error::UnknownClient(id))
        }
    }
}
