//! Rooms (protocol 1.1): named groups a client joins; a room message is
//! encoded once and shared by every member's queue, like a broadcast.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::Hub;
use crate::error::{Error, Result};
use crate::event::{ClientId, EventKind};
use crate::frame;
use crate::message::{self, JsonString, Outgoing, TextTo};

/// One room.
#[derive(Debug)]
pub(super) struct Room {
    /// The name as the first member wrote it.
    pub name: Arc<str>,
    /// Members in joining order.
    pub members: Vec<ClientId>,
}

/// Every room, by case-folded name. A room exists while it has members.
#[derive(Debug, Default)]
pub(super) struct Rooms {
    by_key: HashMap<String, Room>,
}

impl Rooms {
    pub fn get(&self, key: &str) -> Option<&Room> {
        self.by_key.get(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

impl Hub {
    /// `join`: limits first, then membership, reply, presence and event.
    pub(super) fn join(&mut self, id: ClientId, nick: &Arc<str>, name: &str) {
        if !message::valid_room(name) {
            let why = "a room name is # then 1 to 32 of A-Z a-z 0-9 _ -";
            return self.reply_error(id, "bad_room", None, Some(why));
        }
        let key = message::fold(name);
        let mine = &self.conns[&id].rooms;
        if !mine.contains(&key) {
            let refusal = match self.rooms.get(&key) {
                _ if mine.len() >= self.max_rooms_per_client => Some("too_many_rooms"),
                Some(room) if room.members.len() >= self.max_members_per_room => Some("room_full"),
                None if self.rooms.len() >= self.max_rooms => Some("server_room_limit"),
                _ => None,
            };
            if let Some(code) = refusal {
                return self.room_error(id, code, name);
            }
            let room = self.rooms.by_key.entry(key.clone()).or_insert_with(|| Room {
                name: name.into(),
                members: Vec::new(),
            });
            room.members.push(id);
            let room_name = room.name.clone();
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.rooms.push(key.clone());
            }
            let joined = Outgoing::Presence {
                nick,
                room: Some(&room_name),
                state: "joined",
                reason: None,
            };
            self.room_fan_out(&key, frame::encode_json(&joined), Some(id));
            self.push_event(id, EventKind::Joined { room: room_name });
        }
        // Joining a room one is in only repeats the member list.
        let Some(room) = self.rooms.get(&key) else { return };
        let mut members: Vec<&str> = room
            .members
            .iter()
            .filter_map(|m| self.conns.get(m)?.nick.as_deref())
            .collect();
        members.sort_unstable();
        let reply = frame::encode_json(&Outgoing::Joined {
            room: &room.name,
            members: &members,
        });
        self.enqueue(id, reply);
    }

    /// `part` from the client itself.
    pub(super) fn part_by_client(&mut self, id: ClientId, name: &str) {
        let key = message::fold(name);
        if !self.conns[&id].rooms.contains(&key) {
            return self.room_error(id, "not_in_room", name);
        }
        self.part(id, &key, true);
    }

    /// Takes a client out of a room: it is told (`parted`) when
    /// `tell_client`, the other members see `presence parted`, the host gets
    /// an event, and an empty room disappears.
    pub(super) fn part(&mut self, id: ClientId, key: &str, tell_client: bool) {
        let Some(room) = self.rooms.by_key.get_mut(key) else {
            return;
        };
        room.members.retain(|&m| m != id);
        let name = room.name.clone();
        let empty = room.members.is_empty();
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.rooms.retain(|k| k != key);
        }
        if tell_client {
            self.enqueue(id, frame::encode_json(&Outgoing::Parted { room: &name }));
        }
        if empty {
            self.rooms.by_key.remove(key);
        } else if !self.quiet {
            let nick = self
                .conns
                .get(&id)
                .and_then(|c| c.nick.clone())
                .unwrap_or_default();
            let parted = Outgoing::Presence {
                nick: &nick,
                room: Some(&name),
                state: "parted",
                reason: None,
            };
            self.room_fan_out(key, frame::encode_json(&parted), None);
        }
        self.push_event(id, EventKind::Parted { room: name });
    }

    /// `room`: a message to every other member.
    pub(super) fn room_message(
        &mut self,
        id: ClientId,
        from: &Arc<str>,
        name: &str,
        text: JsonString<'_>,
        ack: Option<&RawValue>,
    ) {
        let mut buf = [0u8; 64];
        let key = message::fold_in(name, &mut buf);
        let Some(room) = self.rooms.get(&key).filter(|r| r.members.contains(&id)) else {
            return self.room_error(id, "not_in_room", name);
        };
        let frame = message::text_frame(from, TextTo::Room { room: &room.name }, text);
        let queued = self.room_fan_out(&key, frame.clone(), Some(id));
        self.routed(id, frame, queued, ack);
    }

    fn room_error(&mut self, id: ClientId, code: &str, room: &str) {
        let frame = frame::encode_json(&Outgoing::Error {
            code,
            to: None,
            room: Some(room),
            message: None,
        });
        self.enqueue(id, frame);
    }

    /// Queues `frame` to every member of a room but `except`; returns how
    /// many took it.
    fn room_fan_out(&mut self, key: &str, frame: frame::WireFrame, except: Option<ClientId>) -> usize {
        let mut recipients = std::mem::take(&mut self.scratch);
        recipients.clear();
        if let Some(room) = self.rooms.get(key) {
            recipients.extend(room.members.iter().copied().filter(|&m| Some(m) != except));
        }
        let mut queued = 0;
        for &r in &recipients {
            queued += usize::from(self.enqueue(r, frame.clone()));
        }
        self.scratch = recipients;
        queued
    }

    // ----- what the host calls -----

    /// Queues one JSON object, as given, to every member of a room; returns
    /// how many queues took it.
    pub fn room_send(&mut self, name: &str, payload: &[u8], now: Instant) -> Result<usize> {
        self.check_payload(payload)?;
        let key = message::fold(name);
        if self.rooms.get(&key).is_none() {
            return Err(Error::UnknownRoom(name.to_string()));
        }
        let queued = self.room_fan_out(&key, frame::encode(payload), None);
        self.drop_doomed(now);
        Ok(queued)
    }

    /// A room's members, in joining order; `None` if there is no such room.
    pub fn room_members(&self, name: &str) -> Option<Vec<ClientId>> {
        self.rooms.get(&message::fold(name)).map(|r| r.members.clone())
    }

    /// Every room's name.
    pub fn room_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.rooms.by_key.values().map(|r| r.name.clone()).collect();
        names.sort_unstable();
        names
    }

    /// Takes a client out of a room on the host's behalf; the client gets
    /// `{"type":"parted","room":R}`.
    pub fn room_remove(&mut self, id: ClientId, name: &str, now: Instant) -> Result<()> {
        if self.conns.get(&id).is_none_or(|c| c.is_closing()) {
            return Err(Error::UnknownClient(id));
        }
        let key = message::fold(name);
        if self.rooms.get(&key).is_none() {
            return Err(Error::UnknownRoom(name.to_string()));
        }
        let member = self.rooms.get(&key).is_some_and(|r| r.members.contains(&id));
        if !member {
            return Err(Error::NotInRoom {
                client: id,
                room: name.to_string(),
            });
        }
        self.part(id, &key, true);
        self.drop_doomed(now);
        Ok(())
    }
}
