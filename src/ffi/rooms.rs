//! The C ABI of rooms (protocol 1.1): what a host does with a room. Clients
//! join and part by themselves; the host sees that as `CHAT_EVENT_JOINED`
//! and `CHAT_EVENT_PARTED`.

use std::ffi::{c_char, c_int};

use super::error::{as_int, boundary, Failure};
use super::handle::{self, ChatServer};
use super::{args, count, CHAT_OK};
use crate::{ClientId, Error, Server};

/// The most precise reason `client` is not in `room`: the core reports an
/// unknown client or room as not being in it, but a C host checks the code.
fn not_in_room(server: &Server, e: Error, client: ClientId, room: &str) -> Failure {
    match e {
        Error::NotInRoom { .. } if server.peer_addr(client).is_none() => Error::UnknownClient(client).into(),
        Error::NotInRoom { .. } if server.room_members(room).is_none() => {
            Error::UnknownRoom(room.to_string()).into()
        }
        e => e.into(),
    }
}

/// Queues one frame to every member of a room: `json` is exactly one JSON
/// object of `len` bytes (UTF-8, not NUL-terminated), sent as given, encoded
/// once and shared by every member's queue. `room` is its name, `#` and
/// all, compared case-insensitively. Returns how many members it was queued
/// to (>= 0), or `CHAT_ERR_NULL`, `CHAT_ERR_UTF8` (room),
/// `CHAT_ERR_NOT_JSON_OBJECT`, `CHAT_ERR_TOO_LARGE` (over
/// `max_frame_bytes`), `CHAT_ERR_UNKNOWN_ROOM` (no member has that room),
/// `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `room` is NULL
/// or a NUL-terminated string; `json` is NULL or points to `len` readable
/// bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_room_send(
    s: *mut ChatServer,
    room: *const c_char,
    json: *const u8,
    len: usize,
) -> c_int {
    boundary("chat_room_send", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `room` is NULL or a NUL-terminated string (caller).
        let room = unsafe { args::utf8(room, "room") }?;
        // SAFETY: `json` is NULL or has `len` readable bytes (caller).
        let json = unsafe { args::bytes(json, len, "json") }?;
        Ok(count(inner.server.room_send(room, json)?))
    })
}

/// A room's members, in joining order. Returns how many there are (>= 1: an
/// empty room does not exist) and writes the first `min(that, cap)` client
/// ids to `out`; call again with more room if it returned more than `cap`.
/// `out` may be NULL when `cap` is 0. Errors: `CHAT_ERR_NULL`,
/// `CHAT_ERR_UTF8` (room), `CHAT_ERR_UNKNOWN_ROOM`.
///
/// # Safety
/// `s` is NULL or a live server, not being changed by another call; `room`
/// is NULL or a NUL-terminated string; `out` is NULL or points to `cap`
/// writable `uint64_t`s.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_room_members(
    s: *const ChatServer,
    room: *const c_char,
    out: *mut u64,
    cap: usize,
) -> c_int {
    boundary("chat_room_members", as_int, || {
        // SAFETY: `s` is NULL or live (caller).
        let inner = unsafe { handle::inner_ref(s) }?;
        // SAFETY: `room` is NULL or a NUL-terminated string (caller).
        let room = unsafe { args::utf8(room, "room") }?;
        let out = if cap > 0 {
            Some(args::non_null(out, "out")?)
        } else {
            None
        };
        let members = inner
            .server
            .room_members(room)
            .ok_or_else(|| Error::UnknownRoom(room.to_string()))?;
        if let Some(out) = out {
            for (i, &id) in members.iter().take(cap).enumerate() {
                // SAFETY: i < cap, and `out` has `cap` writable entries
                // (caller).
                unsafe { out.as_ptr().add(i).write(id) };
            }
        }
        Ok(count(members.len()))
    })
}

/// Takes a client out of a room on the host's behalf: the client gets
/// `{"type":"parted","room":R}`, the other members see it part, and a
/// `CHAT_EVENT_PARTED` follows. Returns `CHAT_OK`, or `CHAT_ERR_NULL`,
/// `CHAT_ERR_UTF8` (room), `CHAT_ERR_UNKNOWN_CLIENT` (no such client),
/// `CHAT_ERR_UNKNOWN_ROOM` (no such room), `CHAT_ERR_NOT_IN_ROOM` (both
/// exist, but the client is not a member), `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `room` is NULL
/// or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_room_remove(s: *mut ChatServer, client: u64, room: *const c_char) -> c_int {
    boundary("chat_room_remove", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `room` is NULL or a NUL-terminated string (caller).
        let room = unsafe { args::utf8(room, "room") }?;
        let server = &mut inner.server;
        server
            .room_remove(client, room)
            .map_err(|e| not_in_room(server, e, client, room))?;
        Ok(CHAT_OK)
    })
}
