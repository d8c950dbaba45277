//! What each client frame does: registration, then routing.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::Hub;
use crate::conn::Phase;
use crate::event::{ClientId, EventKind, Reason, RoutedMessage};
use crate::frame::{self, WireFrame};
use crate::message::{self, Incoming, Outgoing, TextTo};

impl Hub {
    /// Handles one complete frame from a client.
    pub(super) fn dispatch(&mut self, id: ClientId, payload: &[u8], now: Instant) {
        let msg = match message::parse(payload) {
            Ok(msg) => msg,
            Err(err) => return self.reply_error(id, err.code(), None, None),
        };
        let Some(conn) = self.conns.get(&id) else { return };
        let from = match (&conn.phase, &conn.nick) {
            (Phase::Registered, Some(nick)) => nick.clone(),
            (Phase::AwaitingApproval { .. }, _) => {
                return match msg {
                    Incoming::Hello { .. } => {
                        self.reply_error(id, "bad_request", None, Some("hello pending approval"))
                    }
                    _ => self.reply_error(
                        id,
                        "not_registered",
                        None,
                        Some("waiting for the host to approve"),
                    ),
                };
            }
            _ => {
                return match msg {
                    Incoming::Hello { nick, token } => self.hello(id, &nick, token.map(Cow::into_owned), now),
                    _ => self.reply_error(id, "not_registered", None, Some("send hello first")),
                };
            }
        };
        let routable = matches!(
            msg,
            Incoming::Msg { .. } | Incoming::All { .. } | Incoming::Room { .. }
        );
        if self.intercept_messages && routable {
            return self.hold(id, payload);
        }
        self.route(id, &from, msg, now);
    }

    /// Everything a registered client may send, once past interception.
    pub(super) fn route(&mut self, id: ClientId, from: &Arc<str>, msg: Incoming<'_>, now: Instant) {
        match msg {
            Incoming::Hello { .. } => self.reply_error(id, "bad_request", None, Some("already registered")),
            Incoming::Msg { to, text, id: ack } => {
                let mut key = [0u8; 64];
                let Some(&to_id) = self.nicks.get(&*message::fold_in(&to, &mut key)) else {
                    return self.reply_error(id, "no_such_user", Some(&to), None);
                };
                let to_nick = self.conns[&to_id].nick.clone().unwrap_or_default();
                let frame = message::text_frame(from, TextTo::One { to: &to_nick }, text);
                let queued = usize::from(self.enqueue(to_id, frame.clone()));
                self.routed(id, frame, queued, ack);
            }
            Incoming::All { text, id: ack } => {
                let frame = message::text_frame(from, TextTo::All, text);
                let queued = self.fan_out(frame.clone(), Some(id));
                self.routed(id, frame, queued, ack);
            }
            Incoming::Who => {
                let users: Vec<&str> = self.roster.iter().map(|n| &**n).collect();
                let frame = frame::encode_json(&Outgoing::Users { users: &users });
                self.enqueue(id, frame);
            }
            Incoming::Ping { id: ping } => {
                self.enqueue(id, frame::encode_json(&Outgoing::Pong { id: ping }));
            }
            Incoming::Pong => {}
            Incoming::Quit => self.leave(id, Reason::Quit, now, None),
            Incoming::Join { room } => self.join(id, from, &room),
            Incoming::Part { room } => self.part_by_client(id, &room),
            Incoming::Room { room, text, id: ack } => self.room_message(id, from, &room, text, ack),
        }
    }

    /// A `hello` from a client not yet registered.
    fn hello(&mut self, id: ClientId, nick: &str, token: Option<String>, now: Instant) {
        if !message::valid_nick(nick) {
            let why = "a nick is 1 to 32 of A-Z a-z 0-9 _ -";
            return self.reply_error(id, "bad_nick", None, Some(why));
        }
        let key = message::fold(nick);
        if self.nicks.contains_key(&key) || self.reserved.contains_key(&key) {
            return self.reply_error(id, "nick_taken", None, None);
        }
        if self.approve_registrations {
            self.await_approval(id, key, nick.into(), token, now);
        } else {
            self.register(id, nick.into());
        }
    }

    /// Completes registration: welcome, presence, event.
    pub(super) fn register(&mut self, id: ClientId, nick: Arc<str>) {
        self.nicks.insert(message::fold(&nick), id);
        self.roster.insert(nick.clone());
        self.stats.registered += 1;
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.nick = Some(nick.clone());
            conn.phase = Phase::Registered;
            if let Some(idle) = self.idle_timeout {
                let probe_at = conn.last_heard + idle / 2;
                self.wake_at(probe_at);
            }
        }
        let users: Vec<&str> = self.roster.iter().map(|n| &**n).collect();
        let welcome = frame::encode_json(&Outgoing::Welcome {
            nick: &nick,
            users: &users,
        });
        self.enqueue(id, welcome);
        let online = Outgoing::Presence {
            nick: &nick,
            room: None,
            state: "online",
            reason: None,
        };
        self.fan_out(frame::encode_json(&online), Some(id));
        self.push_event(id, EventKind::Registered);
    }

    /// After a `msg`, `all` or `room`: the ack the sender asked for and the
    /// event.
    pub(super) fn routed(&mut self, id: ClientId, frame: WireFrame, queued: usize, ack: Option<&RawValue>) {
        if let Some(ack) = ack {
            self.enqueue(id, frame::encode_json(&Outgoing::Ack { id: ack, queued }));
        }
        self.push_event(id, EventKind::Message(RoutedMessage::new(frame, queued)));
    }
}
