//! The C ABI of host authority: approving or rejecting registrations
//! (`approve_registrations`), releasing or dropping held messages
//! (`intercept_messages`), and the user data every event of a client
//! carries.

use std::ffi::{c_char, c_int};

use super::error::{as_int, boundary, ErrorCode, Failure};
use super::handle::{self, ChatServer};
use super::{args, CHAT_OK};
use crate::{ClientId, Error, Server};

/// The error code a sender of a dropped message gets when the host names
/// none.
const DEFAULT_DROP_CODE: &str = "dropped";

/// The most precise reason `client` cannot be approved or rejected: the
/// core reports an unknown client as not waiting, but a C host checks the
/// code.
fn not_pending(server: &Server, e: Error, client: ClientId) -> Failure {
    match e {
        Error::NotAwaitingApproval(_) if server.peer_addr(client).is_none() => {
            Error::UnknownClient(client).into()
        }
        e => e.into(),
    }
}

/// A string argument that may be NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string unchanged for `'a`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
unsafe fn optional_utf8<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: `p` is a NUL-terminated string (caller).
    unsafe { args::utf8(p, what) }.map(Some)
}

/// With `approve_registrations`: lets in a client whose `CHAT_EVENT_APPROVAL`
/// arrived. It gets its `welcome` with the nick it asked for, the others
/// see it come online, and a `CHAT_EVENT_REGISTERED` follows (carrying the
/// user data set before this call). Returns `CHAT_OK`, or `CHAT_ERR_NULL`,
/// `CHAT_ERR_UNKNOWN_CLIENT` (no such client), `CHAT_ERR_NOT_PENDING` (not
/// waiting for approval: already answered, timed out, or never asked),
/// `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_approve(s: *mut ChatServer, client: u64) -> c_int {
    boundary("chat_approve", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        let server = &mut inner.server;
        server
            .approve(client)
            .map_err(|e| not_pending(server, e, client))?;
        Ok(CHAT_OK)
    })
}

/// With `approve_registrations`: refuses a client's `hello`. It gets
/// `{"type":"error","code":"rejected"}`, with `"message": message` unless
/// `message` is NULL, stays connected and may send `hello` again (a new
/// `CHAT_EVENT_APPROVAL`). Returns `CHAT_OK`, or `CHAT_ERR_NULL`,
/// `CHAT_ERR_UTF8` (message), `CHAT_ERR_UNKNOWN_CLIENT`,
/// `CHAT_ERR_NOT_PENDING`, `CHAT_ERR_SHUTTING_DOWN`, as `chat_approve`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `message` is
/// NULL or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_reject(s: *mut ChatServer, client: u64, message: *const c_char) -> c_int {
    boundary("chat_reject", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `message` is NULL or a NUL-terminated string (caller).
        let message = unsafe { optional_utf8(message, "message") }?;
        let server = &mut inner.server;
        server
            .reject(client, message)
            .map_err(|e| not_pending(server, e, client))?;
        Ok(CHAT_OK)
    })
}

/// With `intercept_messages`: routes the message held under `ticket` (from
/// a `CHAT_EVENT_INTERCEPTED`) exactly as if it had just arrived, its ack
/// included. Releasing in ticket order keeps each sender's order. Returns
/// `CHAT_OK`, or `CHAT_ERR_NULL`, `CHAT_ERR_UNKNOWN_TICKET` (released or
/// dropped already, never held, or its sender has left, which forgets it),
/// `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_release(s: *mut ChatServer, ticket: u64) -> c_int {
    boundary("chat_release", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        inner.server.release(ticket)?;
        Ok(CHAT_OK)
    })
}

/// With `intercept_messages`: discards the message held under `ticket`.
/// Its sender gets `{"type":"error","code":code}` (`code` NULL means
/// `"dropped"`), with `"message": message` unless `message` is NULL.
/// Returns `CHAT_OK`, or `CHAT_ERR_NULL`, `CHAT_ERR_UTF8` (code or
/// message), `CHAT_ERR_INVALID` (an empty code), `CHAT_ERR_UNKNOWN_TICKET`
/// (as for `chat_release`), `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `code` and
/// `message` are each NULL or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_drop(
    s: *mut ChatServer,
    ticket: u64,
    code: *const c_char,
    message: *const c_char,
) -> c_int {
    boundary("chat_drop", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `code` is NULL or a NUL-terminated string (caller).
        let code = unsafe { optional_utf8(code, "code") }?.unwrap_or(DEFAULT_DROP_CODE);
        if code.is_empty() {
            // The sender's client reads the code to know what happened.
            return Err(Failure::new(ErrorCode::Invalid, "code is empty"));
        }
        // SAFETY: `message` is NULL or a NUL-terminated string (caller).
        let message = unsafe { optional_utf8(message, "message") }?;
        inner.server.drop_held(ticket, code, message)?;
        Ok(CHAT_OK)
    })
}

/// Attaches a 64-bit value of the host's choosing (an index, a pointer
/// cast to `uint64_t`...) to a client: every later event of that client
/// carries it in `ChatEvent.user_data`, its `CHAT_EVENT_DISCONNECTED`
/// included. Events already waiting keep the value they were made with.
/// It starts as 0; the library never reads it. Returns `CHAT_OK`, or
/// `CHAT_ERR_NULL`, `CHAT_ERR_UNKNOWN_CLIENT` (gone, or being closed).
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_set_user_data(s: *mut ChatServer, client: u64, data: u64) -> c_int {
    boundary("chat_set_user_data", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        inner.server.set_user_data(client, data)?;
        Ok(CHAT_OK)
    })
}
