//! What each client payload does: registration, then routing, rooms and
//! the small commands.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::conn::Phase;
use super::delivery::Kind;
use super::Core;
use crate::code::Code;
use crate::event::{ClientId, EventKind, Reason, RoutedMessage};
use crate::message::{
    self, encode_json, error_payload, text_payload, Incoming, JsonString, Outgoing, Payload, TextTo,
};

impl Core {
    /// Handles one complete payload from a client.
    pub(super) fn dispatch(&mut self, id: ClientId, payload: &[u8], now: Instant) {
        let msg = match message::parse(payload) {
            Ok(msg) => msg,
            Err(err) => return self.reply_error(id, err.code(), None),
        };
        let Some(conn) = self.conns.get(&id) else { return };
        let from = match (&conn.phase, &conn.nick) {
            (Phase::Registered, Some(nick)) => nick.clone(),
            (Phase::AwaitingApproval { .. }, _) => {
                return match msg {
                    Incoming::Hello { resume: Some(_), .. } => {
                        self.reply_error(id, Code::BadRequest, Some("hello pending approval"))
                    }
                    Incoming::Hello { .. } => {
                        self.reply_error(id, Code::BadRequest, Some("hello pending approval"))
                    }
                    _ => self.reply_error(id, Code::NotRegistered, Some("waiting for the host to approve")),
                };
            }
            _ => {
                return match msg {
                    Incoming::Hello {
                        nick,
                        resume: Some(resume),
                        ..
                    } => self.resume_hello(id, &nick, &resume, now),
                    Incoming::Hello {
                        nick,
                        token,
                        resumable,
                        resume: None,
                    } => self.hello(id, &nick, token.map(Cow::into_owned), resumable, now),
                    _ => self.reply_error(id, Code::NotRegistered, Some("send hello first")),
                };
            }
        };
        let routable = matches!(
            msg,
            Incoming::Msg { .. } | Incoming::All { .. } | Incoming::Room { .. }
        );
        if routable && self.authority.intercepts() {
            let held = self.authority.hold(id, payload.into());
            return self.push_event(id, EventKind::Intercepted(held));
        }
        self.route(id, &from, msg, now);
    }

    /// Everything a registered client may send, once past interception.
    pub(super) fn route(&mut self, id: ClientId, from: &Arc<str>, msg: Incoming<'_>, now: Instant) {
        match msg {
            Incoming::Hello { .. } => self.reply_error(id, Code::BadRequest, Some("already registered")),
            Incoming::Msg { to, text, id: ack } => {
                let Some(to_id) = self.registry.find(&to) else {
                    if let Some((payload, queued)) = self.relay_msg(from, &to, text, now) {
                        return self.routed(id, payload, queued, ack);
                    }
                    let reply = error_payload(Code::NoSuchUser.as_str(), Some(&to), None, None);
                    return self.reply(id, &reply);
                };
                let to_nick = self.conns[&to_id].nick.clone().unwrap_or_default();
                let payload = text_payload(from, TextTo::One { to: &to_nick }, text);
                let queued =
                    usize::from(
                        self.delivery
                            .deliver(&mut self.conns, to_id, &payload, Kind::Normal),
                    );
                self.routed(id, payload, queued, ack);
            }
            Incoming::All { text, id: ack } => {
                let payload = text_payload(from, TextTo::All, text);
                let queued = self
                    .delivery
                    .fan_out_everyone(&mut self.conns, &payload, Some(id));
                let queued = queued + self.relay_all(from, &payload, now);
                self.routed(id, payload, queued, ack);
            }
            Incoming::Who => {
                let users = encode_json(&Outgoing::Users {
                    users: &self.all_nicks(),
                });
                self.reply(id, &users);
            }
            Incoming::Ping { id: ping } => self.reply(id, &encode_json(&Outgoing::Pong { id: ping })),
            Incoming::Pong => {}
            Incoming::Quit => self.leave(id, Reason::Quit, now, None),
            Incoming::Join { room } if self.cluster.is_some() => self.cluster_join(id, from, &room, now),
            Incoming::Join { room } => self.join(id, from, &room),
            Incoming::Part { room } => self.part_by_client(id, &room, now),
            Incoming::Room { room, text, id: ack } => self.room_message(id, from, &room, text, ack, now),
            Incoming::Nick { nick } if self.cluster.is_some() => self.cluster_rename(id, from, &nick, now),
            Incoming::Nick { nick } => self.rename(id, from, &nick),
            Incoming::Members { room } => self.members(id, &room),
            Incoming::Rooms => self.list_rooms(id),
        }
    }

    /// A `hello` from a client not yet registered.
    fn hello(&mut self, id: ClientId, nick: &str, token: Option<String>, resumable: bool, now: Instant) {
        if self.is_claiming(id) {
            return self.reply_error(id, Code::BadRequest, Some("hello waiting for the cluster"));
        }
        if !message::valid_nick(nick) {
            return self.reply_error(id, Code::BadNick, Some("a nick is 1 to 32 of A-Z a-z 0-9 _ -"));
        }
        let key = message::fold(nick);
        if self.registry.is_taken(&key) {
            return self.reply_error(id, Code::NickTaken, None);
        }
        if self.cluster.is_some() {
            return self.claim(id, key, nick.into(), token, resumable, now);
        }
        match self.authority.approval_timeout() {
            Some(timeout) => self.await_approval(id, key, nick.into(), token, now + timeout, resumable),
            None => self.register(id, nick.into(), resumable),
        }
    }

    /// After a `msg`, `all` or `room`: the ack the sender asked for and the
    /// event.
    fn routed(&mut self, id: ClientId, payload: Payload, queued: usize, ack: Option<&RawValue>) {
        if let Some(ack) = ack {
            self.reply(id, &encode_json(&Outgoing::Ack { id: ack, queued }));
        }
        self.push_event(id, EventKind::Message(RoutedMessage::new(payload, queued)));
    }

    /// `join`: limits first, then membership, reply, presence and event.
    pub(super) fn join(&mut self, id: ClientId, nick: &Arc<str>, name: &str) {
        let joined = match self.rooms.join(id, name) {
            Ok(joined) => joined,
            Err(Code::BadRoom) => {
                let why = Some("a room name is # then 1 to 32 of A-Z a-z 0-9 _ -");
                let reply = error_payload(Code::BadRoom.as_str(), None, None, why);
                return self.reply(id, &reply);
            }
            Err(code) => return self.room_error(id, code, name),
        };
        if joined.new_member {
            let presence = encode_json(&Outgoing::Presence {
                nick,
                old: None,
                room: Some(&joined.name),
                state: "joined",
                reason: None,
            });
            let members = &self.rooms.get(&joined.key).expect("just joined").members;
            self.delivery
                .fan_out(&mut self.conns, members.iter().copied(), &presence, Some(id));
            self.push_event(
                id,
                EventKind::Joined {
                    room: joined.name.clone(),
                },
            );
        }
        // Joining a room one is in only repeats the member list.
        let nicks = self.member_nicks(&joined.key);
        let reply = encode_json(&Outgoing::Joined {
            room: &joined.name,
            members: &nicks,
        });
        self.reply(id, &reply);
    }

    /// `part` from the client itself.
    fn part_by_client(&mut self, id: ClientId, name: &str, now: Instant) {
        let key = message::fold(name);
        if !self.rooms.is_member(id, &key) {
            return self.room_error(id, Code::NotInRoom, name);
        }
        self.part(id, &key, true);
        if let Some(nick) = self.nick(id).map(str::to_string) {
            self.cluster_part(&nick, name, now);
        }
    }

    /// Takes a client out of a room: it is told (`parted`) when
    /// `tell_client`, the other members see `presence parted`, the host gets
    /// an event.
    pub(super) fn part(&mut self, id: ClientId, key: &str, tell_client: bool) {
        let Some(parted) = self.rooms.part(id, key) else {
            return;
        };
        if tell_client {
            self.reply(id, &encode_json(&Outgoing::Parted { room: &parted.name }));
        }
        if !parted.vanished && !self.quiet {
            let nick = self
                .conns
                .get(&id)
                .and_then(|c| c.nick.clone())
                .unwrap_or_default();
            let presence = encode_json(&Outgoing::Presence {
                nick: &nick,
                old: None,
                room: Some(&parted.name),
                state: "parted",
                reason: None,
            });
            let members = &self.rooms.get(key).expect("not vanished").members;
            self.delivery
                .fan_out(&mut self.conns, members.iter().copied(), &presence, None);
        }
        self.push_event(id, EventKind::Parted { room: parted.name });
    }

    /// `room`: a message to every other member.
    fn room_message(
        &mut self,
        id: ClientId,
        from: &Arc<str>,
        name: &str,
        text: JsonString<'_>,
        ack: Option<&RawValue>,
        now: Instant,
    ) {
        let Some((_, room)) = self.rooms.joined_by(name, id) else {
            return self.room_error(id, Code::NotInRoom, name);
        };
        let payload = text_payload(from, TextTo::Room { room: &room.name }, text);
        let queued = self
            .delivery
            .fan_out(&mut self.conns, room.members.iter().copied(), &payload, Some(id));
        let queued = match self.cluster.is_some().then(|| room.name.clone()) {
            Some(room_name) => queued + self.relay_room(from, &room_name, &payload, now),
            None => queued,
        };
        self.routed(id, payload, queued, ack);
    }

    /// A payload the client asked for (an answer, an error): queued under
    /// the cap like any other.
    pub(super) fn reply(&mut self, id: ClientId, payload: &Payload) {
        self.delivery.deliver(&mut self.conns, id, payload, Kind::Normal);
    }

    /// `{"type":"error","code":C,"message":M}` to `id`.
    pub(super) fn reply_error(&mut self, id: ClientId, code: Code, message: Option<&str>) {
        self.reply(id, &error_payload(code.as_str(), None, None, message));
    }

    pub(super) fn room_error(&mut self, id: ClientId, code: Code, room: &str) {
        self.reply(id, &error_payload(code.as_str(), None, Some(room), None));
    }
}
