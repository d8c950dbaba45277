//! `ChatEvent`, the C form of an [`Event`], the buffers behind its
//! pointers, and the copy that writes only as much of it as the host's
//! `struct_size` covers.

use std::ffi::{c_char, CStr};
use std::io::Write;
use std::mem::{offset_of, size_of};
use std::ptr::{self, NonNull};

use super::error::{ErrorCode, Failure};
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
/// Set `struct_size` to `sizeof(ChatEvent)` first: the library writes only
/// the fields it covers, so a host built against this header keeps working
/// when later versions append fields. It zeroes those fields first; each
/// `CHAT_EVENT_*` says which it fills, the others stay 0 / NULL. Its
/// pointers stay valid until the next `chat_server_next_event`,
/// `chat_server_poll_once` or `chat_server_free` on the same server: copy
/// what you keep.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ChatEvent {
    /// Set by the host to `sizeof(ChatEvent)` before each
    /// `chat_server_next_event`; the library writes only the fields this
    /// covers, and never this one. Must cover `client`.
    pub struct_size: u32,
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
    /// An event with every field 0 or NULL but `struct_size`, which is
    /// this struct's whole size: what a host passes to
    /// `chat_server_next_event`.
    pub fn new() -> ChatEvent {
        ChatEvent {
            struct_size: size_of::<ChatEvent>() as u32,
            ..ChatEvent::zeroed()
        }
    }

    /// An event with every field 0 or NULL, `struct_size` included.
    pub fn zeroed() -> ChatEvent {
        ChatEvent {
            struct_size: 0,
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

impl Default for ChatEvent {
    fn default() -> ChatEvent {
        ChatEvent::new()
    }
}

/// Where each field of `ChatEvent` ends, in order: a host's `struct_size`
/// is rounded down to one of these, so that no field is ever half written.
/// A field appended to the struct must be appended here too (a unit test
/// checks that the last one ends the struct).
pub(super) const FIELD_ENDS: [usize; 15] = [
    end_of(offset_of!(ChatEvent, struct_size), size_of::<u32>()),
    end_of(offset_of!(ChatEvent, kind), size_of::<u32>()),
    end_of(offset_of!(ChatEvent, client), size_of::<u64>()),
    end_of(offset_of!(ChatEvent, peer), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, nick), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, payload), size_of::<*const u8>()),
    end_of(offset_of!(ChatEvent, payload_len), size_of::<usize>()),
    end_of(offset_of!(ChatEvent, reason), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, recipients), size_of::<u32>()),
    end_of(offset_of!(ChatEvent, room), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, ticket), size_of::<u64>()),
    end_of(offset_of!(ChatEvent, token), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, user_data), size_of::<u64>()),
    end_of(offset_of!(ChatEvent, old_nick), size_of::<*const c_char>()),
    end_of(offset_of!(ChatEvent, previous), size_of::<u64>()),
];

const fn end_of(offset: usize, size: usize) -> usize {
    offset + size
}

/// The least `struct_size` a host may pass: up to `client`.
pub(super) const EVENT_MIN_SIZE: usize = FIELD_ENDS[2];

/// How many bytes of a host's `ChatEvent` the library may write: its
/// `struct_size`, at most this struct's size, rounded down to a field's
/// end. `CHAT_ERR_INVALID` when it does not cover `client`.
///
/// # Safety
/// `out` points to at least the `struct_size` field of a `ChatEvent`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub(super) unsafe fn covered(out: NonNull<ChatEvent>) -> Result<usize, Failure> {
    // SAFETY: every version of the struct starts with struct_size (caller).
    let size = unsafe { (&raw const (*out.as_ptr()).struct_size).read() } as usize;
    if size < EVENT_MIN_SIZE {
        return Err(Failure::new(
            ErrorCode::Invalid,
            format!("event struct_size {size} does not cover client ({EVENT_MIN_SIZE} bytes)"),
        ));
    }
    Ok(FIELD_ENDS
        .iter()
        .copied()
        .filter(|&end| end <= size)
        .max()
        .unwrap_or(EVENT_MIN_SIZE))
}

/// Copies `ev` into the host's struct, every byte after `struct_size` up
/// to `covered` (from [`covered`]): `struct_size` itself is the host's.
///
/// # Safety
/// `out` points to at least `covered` writable bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub(super) unsafe fn write_event(out: NonNull<ChatEvent>, ev: &ChatEvent, covered: usize) {
    let start = FIELD_ENDS[0];
    let len = covered.min(size_of::<ChatEvent>()).saturating_sub(start);
    // SAFETY: `ev` is a whole ChatEvent, so `start + len` bytes of it are
    // readable; `out` has `covered` >= `start + len` writable bytes
    // (caller); the two cannot overlap (`ev` is the library's own).
    unsafe {
        ptr::copy_nonoverlapping(
            (ev as *const ChatEvent).cast::<u8>().add(start),
            out.as_ptr().cast::<u8>().add(start),
            len,
        )
    };
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
