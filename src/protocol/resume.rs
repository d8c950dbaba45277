//! Resuming (protocol 1.2): a `hello` with `resume` moves a resumable
//! session, parked or still connected, to the connection that sent it,
//! replaying the frames the client did not read; or answers
//! `resume_failed`. The session is found by nick, then its token compared
//! in constant time, so a wrong token (or a guessed one) touches nothing.
//!
//! Ids: the session takes the new connection's id. The host gets
//! `Resumed { previous }` on the new id; the previous id is never valid
//! again (no `Disconnected` for it), and nick, rooms, user data and
//! waiting frames moved with the session.

use std::time::Instant;

use super::conn::Phase;
use super::delivery::Kind;
use super::history::Token;
use super::queue::OutQueue;
use super::Core;
use crate::code::Code;
use crate::event::{ClientId, EventKind, Reason};
use crate::message::{encode_json, resume_failed_payload, Outgoing, Resume};

impl Core {
    /// A `hello` with `resume` from `id`, a connection not registered.
    pub(super) fn resume_hello(&mut self, id: ClientId, nick: &str, resume: &Resume<'_>, now: Instant) {
        let Some(old) = self.session_of(nick, &resume.session) else {
            return self.resume_failed(
                id,
                "unknown_session",
                "no such session: the token is wrong, spent or expired",
            );
        };
        let conn = &self.conns[&old];
        let live = !conn.is_parked();
        let Some(session) = conn.session.as_ref() else {
            return;
        };
        let pending = if live {
            conn.out.len() - session.uncounted
        } else {
            session.held.len()
        };
        if session.check(resume.received, pending).is_err() {
            self.resume_failed(id, "gap", "the frames after the count given are no longer held");
            return self.end_after_gap(old, now);
        }
        self.resume_on(id, old, live, resume.received, now);
    }

    /// The registered session named `nick` (any case) if it is resumable
    /// and `token` is its token.
    fn session_of(&self, nick: &str, token: &str) -> Option<ClientId> {
        let id = self.registry.find(nick)?;
        let conn = self.conns.get(&id)?;
        if !matches!(conn.phase, Phase::Registered | Phase::Parked { .. }) {
            return None;
        }
        conn.session.as_ref()?.token().matches(token).then_some(id)
    }

    /// `{"type":"error","code":"resume_failed","reason":W}`; the connection
    /// stays open for a plain `hello`.
    fn resume_failed(&mut self, id: ClientId, reason: &str, message: &str) {
        self.stats.resume_failed += 1;
        self.reply(id, &resume_failed_payload(reason, message));
    }

    /// After a `gap` the session ends: a parked one with the reason its
    /// connection ended for; one still connected (its client evidently
    /// reconnected) as `disconnect`, its connection closed with `replaced`.
    fn end_after_gap(&mut self, old: ClientId, now: Instant) {
        let Some(conn) = self.conns.get_mut(&old) else {
            return;
        };
        if let Phase::Parked { reason, .. } = conn.phase {
            return self.end_parked(old, reason, now);
        }
        // Not parkable any more: it leaves for good.
        conn.session = None;
        let why = Some("this session was resumed elsewhere");
        self.leave(old, Reason::Disconnect, now, Some((Code::Replaced, why)));
    }

    /// Moves the session of `old` to `id`: the old connection closes (with
    /// `replaced` if it was still open), `id` gets its `welcome` with a
    /// fresh token, then frames `received + 1` onwards, then live traffic.
    /// Nobody else is told.
    fn resume_on(&mut self, id: ClientId, old: ClientId, live: bool, received: u64, now: Instant) {
        let token = Token::generate();
        let Some(conn) = self.conns.get_mut(&old) else {
            return;
        };
        let Some(mut session) = conn.session.take() else {
            return;
        };
        let Some(nick) = conn.nick.take() else {
            return;
        };
        let user_data = conn.user_data;
        let pending = if live {
            let (pending, released) = conn.out.split_off(session.uncounted);
            self.delivery.unqueued(released);
            pending
        } else {
            std::mem::take(&mut session.held)
        };
        self.retire(old, live, now);
        self.registry.rekey(&nick, id);
        self.delivery.rekey_everyone(old, id);
        self.rooms.rekey(old, id);
        self.authority.rekey(old, id);
        let frames = session.replay(received, pending);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.nick = Some(nick.clone());
        conn.phase = Phase::Registered;
        conn.user_data = user_data;
        self.timers.registered(conn);
        let welcome = encode_json(&Outgoing::Welcome {
            nick: &nick,
            users: &self.registry.roster(),
            session: token.as_ref().map(Token::as_str),
            resumed: true,
        });
        self.delivery.deliver(&mut self.conns, id, &welcome, Kind::Normal);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        session.uncounted = conn.out.len();
        session.allowance = frames.iter().map(|f| OutQueue::cost(f)).sum();
        for frame in frames {
            self.delivery.push(id, conn, frame);
        }
        // Without a fresh token (the OS gave no randomness) the session
        // goes on, but cannot be resumed again.
        conn.session = token.map(|token| {
            session.set_token(token);
            session
        });
        self.stats.resumed += 1;
        self.push_event(id, EventKind::Resumed { previous: old });
    }

    /// The old connection of a session that moved: one still open is told
    /// `replaced` and closes; a parked session's connection goes on closing
    /// if the server has not closed it yet, else it is forgotten.
    fn retire(&mut self, old: ClientId, live: bool, now: Instant) {
        if live {
            let why = Some("this session was resumed on another connection");
            let bye = crate::message::error_payload(Code::Replaced.as_str(), None, None, why);
            self.delivery.deliver(&mut self.conns, old, &bye, Kind::Farewell);
            let deadline = self.timers.start_closing(old, now);
            if let Some(conn) = self.conns.get_mut(&old) {
                // The connection's reason, for its transport's goodbye: the
                // session did not end, so no event and no counter.
                conn.phase = Phase::Closing {
                    reason: Reason::Disconnect,
                    deadline,
                };
            }
            return;
        }
        self.resumption.unparked();
        let Some(conn) = self.conns.get_mut(&old) else {
            return;
        };
        match conn.phase {
            Phase::Parked {
                reason,
                linger: Some(deadline),
                ..
            } => conn.phase = Phase::Closing { reason, deadline },
            _ => {
                self.conns.remove(&old);
            }
        }
    }
}
