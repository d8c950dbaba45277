//! The commands of protocol 1.2: `nick` (a rename), `members`, `rooms`,
//! and the host's notices, which no client can send.

use std::sync::Arc;
use std::time::Instant;

use super::Core;
use crate::code::Code;
use crate::error::{Error, Result};
use crate::event::{ClientId, EventKind};
use crate::message::{self, encode_json, error_payload, Outgoing, Payload, RoomCount};

impl Core {
    /// `nick`: the sender takes a new nick, if it is valid and free
    /// (its own in another case is free). It gets `nick`, everyone else who
    /// can see it (every registered client, room members among them: each
    /// once) `presence renamed`, the host an event. On failure nothing
    /// changes.
    pub(super) fn rename(&mut self, id: ClientId, old: &Arc<str>, wanted: &str) {
        if !message::valid_nick(wanted) {
            return self.reply_error(id, Code::BadNick, Some("a nick is 1 to 32 of A-Z a-z 0-9 _ -"));
        }
        let key = message::fold(wanted);
        if key != message::fold(old) && self.registry.is_taken(&key) {
            return self.reply_error(id, Code::NickTaken, None);
        }
        let reply = encode_json(&Outgoing::Nick { nick: wanted, old });
        if wanted == &**old {
            // Nothing to change, and nobody to tell.
            return self.reply(id, &reply);
        }
        let new: Arc<str> = wanted.into();
        self.registry.remove(old);
        self.registry.insert(id, new.clone());
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.nick = Some(new.clone());
        }
        self.reply(id, &reply);
        let renamed = encode_json(&Outgoing::Presence {
            nick: &new,
            old: Some(old),
            room: None,
            state: "renamed",
            reason: None,
        });
        self.delivery
            .fan_out_everyone(&mut self.conns, &renamed, Some(id));
        self.push_event(id, EventKind::Renamed { old: old.clone() });
    }

    /// `members`: the members of a room the sender is in, sorted.
    pub(super) fn members(&mut self, id: ClientId, name: &str) {
        if !message::valid_room(name) {
            let why = Some("a room name is # then 1 to 32 of A-Z a-z 0-9 _ -");
            let reply = error_payload(Code::BadRoom.as_str(), None, None, why);
            return self.reply(id, &reply);
        }
        let Some((key, room)) = self.rooms.joined_by(name, id) else {
            return self.room_error(id, Code::NotInRoom, name);
        };
        let room_name = room.name.clone();
        let key = key.to_string();
        let nicks = self.member_nicks(&key);
        let reply = encode_json(&Outgoing::Members {
            room: &room_name,
            members: &nicks,
        });
        self.reply(id, &reply);
    }

    /// `rooms`: every room with its member count, sorted by name.
    pub(super) fn list_rooms(&mut self, id: ClientId) {
        let counts = self.rooms.counts();
        let rooms: Vec<RoomCount<'_>> = match &self.cluster {
            Some(c) => {
                c.bp.rooms()
                    .into_iter()
                    .map(|(room, members)| RoomCount { room, members })
                    .collect()
            }
            None => counts
                .iter()
                .map(|(room, members)| RoomCount {
                    room,
                    members: *members,
                })
                .collect(),
        };
        let reply = encode_json(&Outgoing::Rooms { rooms: &rooms });
        self.reply(id, &reply);
    }

    /// The nicks of a room's members (parked sessions included), sorted.
    pub(super) fn member_nicks(&self, key: &str) -> Vec<&str> {
        if let Some(c) = &self.cluster {
            return c.bp.room_members(key);
        }
        let Some(room) = self.rooms.get(key) else {
            return Vec::new();
        };
        let mut nicks: Vec<&str> = room
            .members
            .iter()
            .filter_map(|m| self.conns.get(m)?.nick.as_deref())
            .collect();
        nicks.sort_unstable();
        nicks
    }

    /// Queues `{"type":"notice","text":text}` to one client (connected, or
    /// a parked session).
    pub fn notice(&mut self, id: ClientId, text: &str, now: Instant) -> Result<()> {
        self.known(id)?;
        let payload = self.notice_payload(text)?;
        self.reply(id, &payload);
        self.drop_doomed(now);
        Ok(())
    }

    /// Queues `{"type":"notice","text":text}` to every registered client
    /// (parked sessions included), encoded once; returns how many queues
    /// took it.
    pub fn notice_all(&mut self, text: &str, now: Instant) -> Result<usize> {
        let payload = self.notice_payload(text)?;
        let queued = self.delivery.fan_out_everyone(&mut self.conns, &payload, None);
        self.drop_doomed(now);
        Ok(queued)
    }

    /// A notice's payload, within `max_frame_bytes`.
    fn notice_payload(&self, text: &str) -> Result<Payload> {
        let payload = encode_json(&Outgoing::Notice { text });
        if payload.len() > self.max_frame_bytes {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: self.max_frame_bytes,
            });
        }
        Ok(payload)
    }
}
