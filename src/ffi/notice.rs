//! The C ABI of host notices (protocol 1.2): what the host says itself, as
//! `{"type":"notice","text":...}`, which no client can send.

use std::ffi::{c_char, c_int};

use super::error::{as_int, boundary};
use super::handle::{self, ChatServer};
use super::{args, count, CHAT_OK};

/// Queues `{"type":"notice","text":text}` to one client: a connected one,
/// or a parked session (it gets it when it resumes). `text` is any
/// NUL-terminated UTF-8 string (escaped as JSON by the library). Returns
/// `CHAT_OK`, or `CHAT_ERR_NULL`, `CHAT_ERR_UTF8`, `CHAT_ERR_TOO_LARGE`
/// (the frame would pass `max_frame_bytes`), `CHAT_ERR_UNKNOWN_CLIENT`
/// (gone, or being closed), `CHAT_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `text` is NULL
/// or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_notice(s: *mut ChatServer, client: u64, text: *const c_char) -> c_int {
    boundary("chat_notice", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `text` is NULL or a NUL-terminated string (caller).
        let text = unsafe { args::utf8(text, "text") }?;
        inner.server.notice(client, text)?;
        Ok(CHAT_OK)
    })
}

/// Queues `{"type":"notice","text":text}` to every registered client
/// (parked sessions included), encoded once. Returns how many clients it
/// was queued to (>= 0), or a negative `CHAT_ERR_*` as for `chat_notice`.
///
/// # Safety
/// As `chat_notice`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_notice_all(s: *mut ChatServer, text: *const c_char) -> c_int {
    boundary("chat_notice_all", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `text` is NULL or a NUL-terminated string (caller).
        let text = unsafe { args::utf8(text, "text") }?;
        Ok(count(inner.server.notice_all(text)?))
    })
}
