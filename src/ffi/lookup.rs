//! Lookups a host needs instead of keeping its own tables: a client by
//! nick, a client's nick and address, the server's addresses. The strings
//! they return live in the handle, each in its own buffer, until the next
//! call on the server.

use std::ffi::c_char;
use std::io::Write;
use std::net::SocketAddr;
use std::ptr;

use super::args;
use super::error::{boundary, ErrorCode, Failure};
use super::handle::{self, ChatServer};
use crate::Error;

/// The NUL-terminated text behind the pointers the lookups returned last.
#[derive(Debug, Default)]
pub struct LookupText {
    nick: Vec<u8>,
    peer: Vec<u8>,
    local_addr: Vec<u8>,
    ws_addr: Vec<u8>,
}

/// Replaces `buf` with `text` and a NUL; returns where it starts.
fn c_text(buf: &mut Vec<u8>, text: impl std::fmt::Display) -> *const c_char {
    buf.clear();
    // A Vec takes every write; nicks and addresses have no NUL in them.
    let _ = write!(buf, "{text}\0");
    buf.as_ptr().cast()
}

/// The id of the registered client whose nick is `nick`, compared
/// case-insensitively as the protocol compares nicks (`ALICE` finds
/// `alice`). Returns the id (> 0), or a negative `CHAT_ERR_*`:
/// `CHAT_ERR_NULL`, `CHAT_ERR_UTF8` (nick), `CHAT_ERR_UNKNOWN_CLIENT` (no
/// registered client has that nick: never had, left, or still waiting for
/// approval).
///
/// # Safety
/// `s` is NULL or a live server, not being changed by another call; `nick`
/// is NULL or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_find_client(s: *const ChatServer, nick: *const c_char) -> i64 {
    boundary(
        "chat_find_client",
        |code| i64::from(code.as_int()),
        || {
            // SAFETY: `s` is NULL or live (caller).
            let inner = unsafe { handle::inner_ref(s) }?;
            // SAFETY: `nick` is NULL or a NUL-terminated string (caller).
            let nick = unsafe { args::utf8(nick, "nick") }?;
            let id = inner.server.find_client(nick).ok_or_else(|| {
                Failure::new(
                    ErrorCode::UnknownClient,
                    format!("no registered client is named {nick:?}"),
                )
            })?;
            i64::try_from(id).map_err(|_| Failure::new(ErrorCode::Invalid, "client id past INT64_MAX"))
        },
    )
}

/// A client's nick, NUL-terminated, or NULL: when it has not registered
/// yet (nothing else is wrong then, and the last error is left alone), or
/// on an error (`CHAT_ERR_NULL`, or `CHAT_ERR_UNKNOWN_CLIENT` for an id that
/// is not connected, or has left: its `CHAT_EVENT_DISCONNECTED` is made).
/// The string stays valid until the next call on `s`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_client_nick(s: *const ChatServer, client: u64) -> *const c_char {
    boundary(
        "chat_client_nick",
        |_| ptr::null(),
        || {
            // The buffer behind the answer is refreshed; what a host can
            // observe of the server does not change, as `const` promises.
            // SAFETY: `s` is NULL or a live handle made by Box::into_raw, so
            // writable, and used by this thread only (caller).
            let mut inner = unsafe { handle::inner_mut(s.cast_mut()) }?;
            let inner = &mut *inner;
            if !inner.server.is_connected(client) {
                return Err(Error::UnknownClient(client).into());
            }
            Ok(match inner.server.nick(client) {
                Some(nick) => c_text(&mut inner.lookup.nick, nick),
                None => ptr::null(),
            })
        },
    )
}

/// A client's address, `"IP:port"` (IPv6 as `"[::1]:port"`),
/// NUL-terminated; NULL on an error: `CHAT_ERR_NULL`, or
/// `CHAT_ERR_UNKNOWN_CLIENT` as for `chat_client_nick`. The string stays
/// valid until the next call on `s`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_client_peer(s: *const ChatServer, client: u64) -> *const c_char {
    boundary(
        "chat_client_peer",
        |_| ptr::null(),
        || {
            // SAFETY: as in chat_client_nick.
            let mut inner = unsafe { handle::inner_mut(s.cast_mut()) }?;
            let inner = &mut *inner;
            let peer = inner
                .server
                .peer_addr(client)
                .filter(|_| inner.server.is_connected(client))
                .ok_or(Error::UnknownClient(client))?;
            Ok(c_text(&mut inner.lookup.peer, peer))
        },
    )
}

/// The address the server listens on, `"IP:port"` with the real port when
/// 0 was asked (`"127.0.0.1:7878"`), NUL-terminated; NULL if `s` is NULL
/// (`CHAT_ERR_NULL`). The string stays valid until the next call on `s`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_local_addr(s: *const ChatServer) -> *const c_char {
    boundary(
        "chat_server_local_addr",
        |_| ptr::null(),
        || {
            // SAFETY: as in chat_client_nick.
            let mut inner = unsafe { handle::inner_mut(s.cast_mut()) }?;
            let inner = &mut *inner;
            Ok(c_text(&mut inner.lookup.local_addr, inner.server.local_addr()))
        },
    )
}

/// The address the WebSocket listener is bound to, as
/// `chat_server_local_addr`; NULL when the server has none (no
/// `ws_listen_addr`: the last error is left alone then) or `s` is NULL
/// (`CHAT_ERR_NULL`). The string stays valid until the next call on `s`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_ws_addr(s: *const ChatServer) -> *const c_char {
    boundary(
        "chat_server_ws_addr",
        |_| ptr::null(),
        || {
            // SAFETY: as in chat_client_nick.
            let mut inner = unsafe { handle::inner_mut(s.cast_mut()) }?;
            let inner = &mut *inner;
            let ws: Option<SocketAddr> = inner.server.ws_addr();
            Ok(ws.map_or(ptr::null(), |addr| c_text(&mut inner.lookup.ws_addr, addr)))
        },
    )
}
