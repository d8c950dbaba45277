//! `ChatEvent`, the C form of an [`Event`], and the buffers behind its
//! pointers.

use std::ffi::{c_char, CStr};
use std::io::Write;
use std::ptr;

use crate::{Event, EventKind, Reason};

/// A connection was accepted. Fills `client` and `peer`; `nick`, `payload`
/// and `reason` are NULL.
pub const CHAT_EVENT_CONNECTED: u32 = 1;
/// The client completed `hello`. Fills `client`, `peer` and `nick`.
pub const CHAT_EVENT_REGISTERED: u32 = 2;
/// The client's `msg` or `all` was routed by the library. Fills `client`,
/// `peer`, `nick` (the sender), `payload` and `payload_len` (the JSON
/// object as its recipients got it, with `"from"`), and `recipients`.
pub const CHAT_EVENT_MESSAGE: u32 = 3;
/// The client is gone and its id is no longer valid. Fills `client`,
/// `peer`, `reason`, and `nick` if it had registered (else NULL).
pub const CHAT_EVENT_DISCONNECTED: u32 = 4;
/// The client joined a room. Fills `client`, `peer`, `nick` and `room`.
pub const CHAT_EVENT_JOINED: u32 = 5;
/// The client left a room (by `part`, by `chat_room_remove`, or because it
/// left the server, then before its `DISCONNECTED`). Fills `client`,
/// `peer`, `nick` and `room`.
pub const CHAT_EVENT_PARTED: u32 = 6;
/// With `approve_registrations`: the client sent a valid `hello` and waits
/// for `chat_approve` or `chat_reject`. Fills `client`, `peer`, `nick` (the
/// nick asked for) and `token` (the hello's `"token"`, or NULL).
pub const CHAT_EVENT_APPROVAL: u32 = 7;
/// With `intercept_messages`: a `msg`, `all` or `room` frame waits for
/// `chat_release` or `chat_drop`. Fills `client`, `peer`, `nick`,
/// `ticket`, and `payload`/`payload_len` (the client's JSON as it sent it).
pub const CHAT_EVENT_INTERCEPTED: u32 = 8;
/// The client renamed itself with `nick` (protocol 1.2). Fills `client`,
/// `peer`, `nick` (the new nick) and `old_nick` (the one before).
pub const CHAT_EVENT_RENAMED: u32 = 9;
/// A resumable session resumed on this connection (protocol 1.2): the
/// client known until now as `previous` is `client` from now on (its nick,
/// rooms, user data and waiting frames moved here). `previous` is never
/// valid again and gets no `DISCONNECTED`. Fills `client` (the new id),
/// `peer` (the new connection's), `nick`, `previous` and `user_data`.
pub const CHAT_EVENT_RESUMED: u32 = 10;
/// The connection of a resumable session ended by `disconnect`, `timeout`
/// or `slow_consumer` (protocol 1.2) and the session is parked for
/// `resume_window_ms`, under the same id: it keeps its nick and rooms, and
/// `chat_send`, `chat_notice`, `chat_kick`... still work on the id (what is
/// sent waits for the resume). Either `RESUMED` (on a new id, with this one
/// in `previous`) or `DISCONNECTED` (on this id, when the session ends)
/// follows. Fills `client`, `peer` (the last connection's), `nick` and
/// `reason` (why the connection ended).
pub const CHAT_EVENT_PARKED: u32 = 11;

/// One thing that happened to one client, from `chat_server_next_event`.
/// The library zeroes it first; each `CHAT_EVENT_*` says which fields it
/// fills, the others stay 0 / NULL. Its pointers stay valid until the next
/// call that takes the same server (`chat_server_next_event`,
/// `chat_server_poll_once`, `chat_server_free`...): copy what you keep.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ChatEvent {
    /// `CHAT_EVENT_*`.
    pub kind: u32,
    /// The client, in every kind: never 0, never reused within a server.
    pub client: u64,
    /// Every kind: its address, `"IP:port"`, NUL-terminated.
    pub peer: *const c_char,
    /// `REGISTERED`, `MESSAGE`, and `DISCONNECTED` of a registered client:
    /// its nick, NUL-terminated; otherwise NULL.
    pub nick: *const c_char,
    /// `MESSAGE`: the JSON object as its recipients got it (with
    /// `"from"`), NUL-terminated too; otherwise NULL.
    pub payload: *const u8,
    /// `MESSAGE`: bytes at `payload`, not counting the NUL; otherwise 0.
    pub payload_len: usize,
    /// `DISCONNECTED`: why, a static string: `quit`, `disconnect`,
    /// `slow_consumer`, `timeout`, `protocol_error`, `kicked` or
    /// `shutdown`; otherwise NULL.
    pub reason: *const c_char,
    /// `MESSAGE`: how many output queues took it; otherwise 0.
    pub recipients: u32,
    /// `JOINED`, `PARTED`: the room's name, NUL-terminated; otherwise NULL.
    pub room: *const c_char,
    /// `INTERCEPTED`: what to pass to `chat_release` or `chat_drop`;
    /// otherwise 0.
    pub ticket: u64,
    /// `APPROVAL`: the `"token"` of the client's hello, NUL-terminated, or
    /// NULL if it sent none; otherwise NULL.
    pub token: *const c_char,
    /// Every kind: the value set with `chat_set_user_data` (0 until then).
    pub user_data: u64,
    /// `RENAMED`: the nick before, NUL-terminated; otherwise NULL.
    pub old_nick: *const c_char,
    /// `RESUMED`: the id the session had before; otherwise 0.
    pub previous: u64,
}

impl ChatEvent {
    /// An event with every field 0 or NULL.
    pub fn zeroed() -> ChatEvent {
        ChatEvent {
            kind: 0,
            client: 0,
            peer: ptr::null(),
            nick: ptr::null(),
            payload: ptr::null(),
            payload_len: 0,
            reason: ptr::null(),
            recipients: 0,
            room: ptr::null(),
            ticket: 0,
            token: ptr::null(),
            user_data: 0,
            old_nick: ptr::null(),
            previous: 0,
        }
    }
}

/// The protocol's word for a reason, as a static C string.
pub fn reason_text(reason: Reason) -> &'static CStr {
    match reason {
        Reason::Quit => c"quit",
        Reason::Disconnect => c"disconnect",
        Reason::SlowConsumer => c"slow_consumer",
        Reason::Timeout => c"timeout",
        Reason::ProtocolError => c"protocol_error",
        Reason::Kicked => c"kicked",
        Reason::Shutdown => c"shutdown",
    }
}

/// The NUL-terminated text behind the last `ChatEvent` handed out. The
/// buffers are reused, so a `ChatEvent`'s pointers die with the next fill.
#[derive(Debug, Default)]
pub struct EventText {
    peer: Vec<u8>,
    nick: Vec<u8>,
    payload: Vec<u8>,
    room: Vec<u8>,
    token: Vec<u8>,
    old_nick: Vec<u8>,
}

/// Replaces `buf` with `bytes` and a NUL; returns where it starts.
fn nul_terminated(buf: &mut Vec<u8>, bytes: &[u8]) -> *const u8 {
    buf.clear();
    buf.extend_from_slice(bytes);
    buf.push(0);
    buf.as_ptr()
}

impl EventText {
    /// The C form of `ev`, pointing into these buffers.
    pub fn fill(&mut self, ev: &Event) -> ChatEvent {
        let mut out = ChatEvent::zeroed();
        out.client = ev.client;
        out.user_data = ev.user_data;
        self.peer.clear();
        // A Vec takes every write; the address has no NUL in it.
        let _ = write!(self.peer, "{}{}\0", ev.via.scheme(), ev.peer);
        out.peer = self.peer.as_ptr().cast();
        if let Some(nick) = &ev.nick {
            // Nicks are [A-Za-z0-9_-]: no NUL inside.
            out.nick = nul_terminated(&mut self.nick, nick.as_bytes()).cast();
        }
        match &ev.kind {
            EventKind::Connected => out.kind = CHAT_EVENT_CONNECTED,
            EventKind::Registered => out.kind = CHAT_EVENT_REGISTERED,
            EventKind::Message(m) => {
                out.kind = CHAT_EVENT_MESSAGE;
                // JSON has no raw NUL byte, so the NUL ends it for C string
                // functions; payload_len is exact either way.
                out.payload = nul_terminated(&mut self.payload, m.payload());
                out.payload_len = m.payload().len();
                out.recipients = u32::try_from(m.recipients).unwrap_or(u32::MAX);
            }
            EventKind::Disconnected { reason } => {
                out.kind = CHAT_EVENT_DISCONNECTED;
                out.reason = reason_text(*reason).as_ptr();
            }
            EventKind::Joined { room } | EventKind::Parted { room } => {
                let joined = matches!(ev.kind, EventKind::Joined { .. });
                out.kind = if joined {
                    CHAT_EVENT_JOINED
                } else {
                    CHAT_EVENT_PARTED
                };
                // Room names are # and [A-Za-z0-9_-]: no NUL inside.
                out.room = nul_terminated(&mut self.room, room.as_bytes()).cast();
            }
            EventKind::ApprovalRequested { token } => {
                out.kind = CHAT_EVENT_APPROVAL;
                if let Some(token) = token {
                    // A token is any JSON string: one with a NUL inside
                    // reads as cut short in C.
                    out.token = nul_terminated(&mut self.token, token.as_bytes()).cast();
                }
            }
            EventKind::Intercepted(held) => {
                out.kind = CHAT_EVENT_INTERCEPTED;
                out.ticket = held.ticket;
                out.payload = nul_terminated(&mut self.payload, held.payload());
                out.payload_len = held.payload().len();
            }
            EventKind::Renamed { old } => {
                out.kind = CHAT_EVENT_RENAMED;
                // Nicks are [A-Za-z0-9_-]: no NUL inside.
                out.old_nick = nul_terminated(&mut self.old_nick, old.as_bytes()).cast();
            }
            EventKind::Resumed { previous } => {
                out.kind = CHAT_EVENT_RESUMED;
                out.previous = *previous;
            }
            EventKind::Parked { reason } => {
                out.kind = CHAT_EVENT_PARKED;
                out.reason = reason_text(*reason).as_ptr();
            }
        }
        out
    }
}
