//! The C ABI (`include/chat.h`, generated from this module by cbindgen): a
//! thin layer over [`Server`](crate::Server).
//!
//! Every exported function runs its body in `error::boundary`, so no panic
//! unwinds into C and every failure sets this thread's last error. Argument
//! pointers are checked by the helpers in `args` and the handle is made,
//! borrowed and freed only in `handle`. See `/work/shared/C_API.md`.

mod args;
mod authority;
mod config;
mod error;
mod event;
mod handle;
mod log;
mod lookup;
mod notice;
mod rooms;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_authority;
#[cfg(test)]
mod tests_config;
#[cfg(test)]
mod tests_lookup;
#[cfg(test)]
mod tests_rooms;
#[cfg(test)]
mod tests_support;

use std::ffi::{c_char, c_int, CStr};
use std::os::fd::BorrowedFd;
use std::ptr;
use std::time::Duration;

use crate::{sys, Server};
use error::{as_int, boundary, ErrorCode, Failure};

pub use authority::{chat_approve, chat_drop, chat_reject, chat_release, chat_set_user_data};
pub use config::ChatConfig;
pub use error::{
    CHAT_ERR_ADDR, CHAT_ERR_BIND, CHAT_ERR_CONFIG, CHAT_ERR_FD_SETSIZE, CHAT_ERR_INVALID, CHAT_ERR_IO,
    CHAT_ERR_NOT_JSON_OBJECT, CHAT_ERR_NULL, CHAT_ERR_PANIC, CHAT_ERR_SHUTTING_DOWN, CHAT_ERR_TOO_LARGE,
    CHAT_ERR_UNKNOWN_CLIENT, CHAT_ERR_UTF8, CHAT_OK,
};
pub use event::{
    ChatEvent, CHAT_EVENT_CONNECTED, CHAT_EVENT_DISCONNECTED, CHAT_EVENT_MESSAGE, CHAT_EVENT_REGISTERED,
};
pub use handle::ChatServer;
pub use log::{
    chat_server_set_log, ChatLogFn, CHAT_LOG_DEBUG, CHAT_LOG_ERROR, CHAT_LOG_INFO, CHAT_LOG_OFF,
    CHAT_LOG_TRACE, CHAT_LOG_WARN,
};
pub use lookup::{
    chat_client_nick, chat_client_peer, chat_find_client, chat_server_local_addr, chat_server_ws_addr,
};
pub use notice::{chat_notice, chat_notice_all};
pub use rooms::{chat_room_members, chat_room_remove, chat_room_send};
pub use types::{ChatPollFd, ChatStats, CHAT_POLL_READ, CHAT_POLL_WRITE};

/// The library's version, `CHAT_VERSION` as a C string.
const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("the package version has a NUL in it"),
};

/// A count as a non-negative `int`, saturating.
fn count(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// Fills `*out` with the defaults: `struct_size = sizeof(ChatConfig)`,
/// `listen_addr = "127.0.0.1:7878"` (a static string), `max_clients` what
/// `FD_SETSIZE` allows less a margin, `max_frame_bytes = 65536`,
/// `max_queue_bytes = 1 MiB`, `idle_timeout_ms = 0` (none),
/// `max_events = 65536`, and each later field's documented default (rooms
/// and flood limits, authority off). It writes the whole
/// `sizeof(ChatConfig)` of this header: `out` must be that large. NULL sets
/// the last error (`CHAT_ERR_NULL`) and does nothing else.
///
/// # Safety
/// `out` is NULL or points to a writable `ChatConfig`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_config_default(out: *mut ChatConfig) {
    boundary(
        "chat_config_default",
        |_| (),
        || {
            let out = args::non_null(out, "out")?;
            // SAFETY: `out` points to a writable ChatConfig (caller).
            unsafe { out.as_ptr().write(config::default_config()) };
            Ok(())
        },
    )
}

/// Like `chat_config_default`, but writes only the first `struct_size`
/// bytes (and sets `out->struct_size` to it): a host built against an older
/// header, whose `ChatConfig` is shorter, passes its own
/// `sizeof(ChatConfig)` and gets no overrun when the library has grown.
/// Returns `CHAT_OK`; `CHAT_ERR_NULL` for NULL; `CHAT_ERR_INVALID` if
/// `struct_size` does not cover `listen_addr`.
///
/// # Safety
/// `out` is NULL or points to `struct_size` writable bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_config_init(out: *mut ChatConfig, struct_size: u32) -> c_int {
    boundary(
        "chat_config_init",
        |code| code.as_int(),
        || {
            let out = args::non_null(out, "out")?;
            let full = config::default_config();
            let size = (struct_size as usize).min(size_of::<ChatConfig>());
            if size < config::CONFIG_MIN_SIZE {
                return Err(Failure::new(
                    ErrorCode::Invalid,
                    format!(
                        "struct_size {struct_size} does not cover listen_addr ({} bytes)",
                        config::CONFIG_MIN_SIZE
                    ),
                ));
            }
            let full = ChatConfig {
                struct_size: size as u32,
                ..full
            };
            // SAFETY: `out` has `struct_size` >= `size` writable bytes
            // (caller), and `full` is a plain C struct of at least `size`.
            unsafe {
                std::ptr::copy_nonoverlapping((&raw const full).cast::<u8>(), out.as_ptr().cast::<u8>(), size)
            };
            Ok(CHAT_OK)
        },
    )
}

/// Makes a server listening on `cfg->listen_addr` (read only during this
/// call). Returns NULL on error, with `chat_last_error()` saying why and
/// `chat_last_error_code()` one of `CHAT_ERR_NULL`, `CHAT_ERR_INVALID`
/// (`struct_size` too small), `CHAT_ERR_UTF8`, `CHAT_ERR_ADDR`,
/// `CHAT_ERR_CONFIG`, `CHAT_ERR_BIND`, `CHAT_ERR_FD_SETSIZE` (the
/// listener's descriptor is `>= FD_SETSIZE`: the host holds too many) or
/// `CHAT_ERR_IO`. Free the server with `chat_server_free`.
///
/// # Safety
/// `cfg` is NULL or points to a readable `ChatConfig` of at least
/// `cfg->struct_size` bytes whose `listen_addr` is NULL or a NUL-terminated
/// string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_new(cfg: *const ChatConfig) -> *mut ChatServer {
    boundary(
        "chat_server_new",
        |_| ptr::null_mut(),
        || {
            let cfg = args::non_null(cfg.cast_mut(), "cfg")?;
            // SAFETY: `cfg` is readable as far as its struct_size says (caller).
            let cfg = unsafe { config::read_config(cfg) }?;
            Ok(handle::into_handle(Server::new(cfg)?))
        },
    )
}

/// The port the server listens on (the real one when 0 was asked); 0 if
/// `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live server from `chat_server_new`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_port(s: *const ChatServer) -> u16 {
    boundary(
        "chat_server_port",
        |_| 0,
        || {
            // SAFETY: `s` is NULL or live (caller).
            let inner = unsafe { handle::inner_ref(s) }?;
            Ok(inner.server.local_addr().port())
        },
    )
}

/// One round of the pump: one `select()` over the listener, the wake pipe,
/// the alarm (a timerfd holding the next deadline) and every client,
/// waiting at most `timeout_ms` (< 0: no limit, 0: do not wait), then
/// accepts, reads, routes and writes. Returns how many events wait for
/// `chat_server_next_event` (>= 0), or a negative `CHAT_ERR_*`. Returns
/// early when `chat_server_wakeup` is called, and may return once before
/// `timeout_ms` with nothing done when an earlier deadline it waited for
/// went away: call it again.
///
/// # Safety
/// `s` is NULL or a live server; no other call on it runs meanwhile (except
/// `chat_server_wakeup`).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_poll_once(s: *mut ChatServer, timeout_ms: i32) -> c_int {
    boundary("chat_server_poll_once", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        Ok(count(inner.server.poll_once(timeout)?))
    })
}

/// Takes the oldest waiting event. Set `out->struct_size` to
/// `sizeof(ChatEvent)` first: the library zeroes the fields it covers, then
/// returns 1 with them filled, 0 when no event waits, or a negative
/// `CHAT_ERR_*`: `CHAT_ERR_NULL`, or `CHAT_ERR_INVALID` when `struct_size`
/// does not cover `client` (nothing is written then, and the event stays
/// queued). Fields past `struct_size` are never written. The pointers in
/// `*out` stay valid until the next `chat_server_next_event`,
/// `chat_server_poll_once` or `chat_server_free` on `s`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `out` is NULL or
/// points to a writable struct of at least `out->struct_size` bytes (and at
/// least the `struct_size` field).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_next_event(s: *mut ChatServer, out: *mut ChatEvent) -> c_int {
    boundary("chat_server_next_event", as_int, || {
        let out = args::non_null(out, "out")?;
        // SAFETY: `out` starts with a readable struct_size (caller).
        let covered = unsafe { event::covered(out) }?;
        // SAFETY: `out` has `struct_size` >= `covered` writable bytes.
        unsafe { event::write_event(out, &ChatEvent::zeroed(), covered) };
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        let Some(ev) = inner.server.next_event() else {
            return Ok(0);
        };
        let filled = inner.event.fill(&ev);
        // SAFETY: as above.
        unsafe { event::write_event(out, &filled, covered) };
        Ok(1)
    })
}

/// For hosts that run their own `poll`/`epoll` loop instead of a blocking
/// `chat_server_poll_once(s, -1)`: the descriptors the server wants watched
/// now. Returns how many there are (>= 0) and fills the first
/// `min(that, cap)` entries of `out`; call again with more room if it
/// returned more than `cap`. `out` may be NULL when `cap` is 0. Watch them
/// (`CHAT_POLL_READ` as `POLLIN`, `CHAT_POLL_WRITE` as `POLLOUT`) for at
/// most `chat_server_timeout_ms(s)`, then call `chat_server_poll_once(s, 0)`.
/// The set changes after every call that does I/O or queues output: ask
/// again each time round. The wake pipe is among them, so
/// `chat_server_wakeup` also wakes the host's loop; so is the alarm, which
/// only `chat_server_poll_once` with a timeout sets.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `out` is NULL
/// or points to `cap` writable `ChatPollFd`s.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_fds(s: *const ChatServer, out: *mut ChatPollFd, cap: usize) -> c_int {
    boundary("chat_server_fds", as_int, || {
        // The server refreshes scratch buffers to compute the set; what a
        // host can observe does not change, as `const` promises.
        // SAFETY: `s` is NULL or a live handle made by Box::into_raw, so
        // writable, and used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s.cast_mut()) }?;
        let out = if cap > 0 {
            Some(args::non_null(out, "out")?)
        } else {
            None
        };
        let wanted = inner.server.fds();
        if let Some(out) = out {
            for (i, w) in wanted.iter().take(cap).enumerate() {
                // SAFETY: i < cap, and `out` has `cap` writable entries
                // (caller).
                unsafe { out.as_ptr().add(i).write(types::poll_fd(w)) };
            }
        }
        Ok(count(wanted.len()))
    })
}

/// For hosts with their own loop: the longest they may wait before calling
/// `chat_server_poll_once(s, 0)` again, in milliseconds (rounded up), or -1
/// for no limit (nothing is timed). -1 also when `s` is NULL (with the last
/// error set).
///
/// # Safety
/// `s` is NULL or a live server, not being changed by another call.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_timeout_ms(s: *const ChatServer) -> i32 {
    boundary(
        "chat_server_timeout_ms",
        |_| -1,
        || {
            // SAFETY: `s` is NULL or live (caller).
            let inner = unsafe { handle::inner_ref(s) }?;
            Ok(inner.server.timeout().map_or(-1, |d| {
                i32::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
            }))
        },
    )
}

/// Makes a blocked `chat_server_poll_once` (or a host's own `poll` on
/// `chat_server_fds`) return now, or the next one return at once. The ONE
/// call that is safe from another thread while `s` is being pumped, and
/// from a signal handler: it reads only the wake pipe's descriptor, fixed
/// when `s` was made, and writes one byte to it. Returns `CHAT_OK` or a
/// negative `CHAT_ERR_*` (only on a bug: a failure allocates the last
/// error message, which a signal handler cannot afford, but succeeding
/// allocates nothing).
///
/// # Safety
/// `s` is NULL or a live server, not freed before this call returns.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_wakeup(s: *mut ChatServer) -> c_int {
    boundary("chat_server_wakeup", as_int, || {
        // SAFETY: `s` is NULL or live (caller); only the immutable wake_fd
        // field is read, never borrowing the rest of the server.
        let fd = unsafe { handle::wake_fd(s) }?;
        // SAFETY: the handle keeps this write end open until it is freed,
        // which the caller promises does not happen during this call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        sys::wake(fd).map_err(|e| Failure::from(crate::Error::Io(e)))?;
        Ok(CHAT_OK)
    })
}

/// Queues one frame to one client: `json` is exactly one JSON object of
/// `len` bytes (not NUL-terminated; UTF-8), sent as given. Returns
/// `CHAT_OK`, or `CHAT_ERR_NULL`, `CHAT_ERR_NOT_JSON_OBJECT` (also for
/// bytes that are not UTF-8 JSON), `CHAT_ERR_TOO_LARGE` (over
/// `max_frame_bytes`), `CHAT_ERR_UNKNOWN_CLIENT` (gone, or being closed).
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `json` is NULL
/// or points to `len` readable bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_send(s: *mut ChatServer, client: u64, json: *const u8, len: usize) -> c_int {
    boundary("chat_send", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `json` is NULL or has `len` readable bytes (caller).
        let json = unsafe { args::bytes(json, len, "json") }?;
        inner.server.send(client, json)?;
        Ok(CHAT_OK)
    })
}

/// Queues one frame (a JSON object, as for `chat_send`) to every registered
/// client, encoded once. Returns how many clients it was queued to (>= 0),
/// or a negative `CHAT_ERR_*` as for `chat_send`.
///
/// # Safety
/// As `chat_send`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_broadcast(s: *mut ChatServer, json: *const u8, len: usize) -> c_int {
    boundary("chat_broadcast", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        // SAFETY: `json` is NULL or has `len` readable bytes (caller).
        let json = unsafe { args::bytes(json, len, "json") }?;
        Ok(count(inner.server.broadcast(json)?))
    })
}

/// Disconnects a client: it gets `{"type":"error","code":"kicked"}` (with
/// `"message": reason` unless `reason` is NULL), then is closed once that is
/// flushed; registered clients see it leave with reason `kicked`, and a
/// `CHAT_EVENT_DISCONNECTED` follows. Returns `CHAT_OK`, or
/// `CHAT_ERR_NULL`, `CHAT_ERR_UTF8` (reason), `CHAT_ERR_UNKNOWN_CLIENT`.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `reason` is NULL
/// or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_kick(s: *mut ChatServer, client: u64, reason: *const c_char) -> c_int {
    boundary("chat_kick", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        let reason = if reason.is_null() {
            None
        } else {
            // SAFETY: `reason` is a NUL-terminated string (caller).
            Some(unsafe { args::utf8(reason, "reason") }?)
        };
        inner.server.kick(client, reason)?;
        Ok(CHAT_OK)
    })
}

/// Graceful shutdown. The first call stops accepting, tells every client
/// `{"type":"error","code":"shutdown"}` (registered ones see the others
/// leave with reason `shutdown`) and starts flushing their queues, closing
/// each when flushed or when `deadline_ms` has passed; later calls ignore
/// `deadline_ms`. Returns 1 when every connection is closed, 0 when not yet:
/// keep calling `chat_server_poll_once` (and taking events), then this
/// again. `CHAT_ERR_INVALID` if `deadline_ms` < 0.
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_shutdown(s: *mut ChatServer, deadline_ms: i32) -> c_int {
    boundary("chat_server_shutdown", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        let deadline = u64::try_from(deadline_ms)
            .map_err(|_| Failure::new(ErrorCode::Invalid, format!("deadline_ms {deadline_ms} < 0")))?;
        Ok(c_int::from(
            inner.server.shutdown(Duration::from_millis(deadline)),
        ))
    })
}

/// Copies the counters into `*out`, writing only the fields that
/// `out->struct_size` covers (set it to `sizeof(ChatStats)`). Returns
/// `CHAT_OK`, `CHAT_ERR_NULL`, or `CHAT_ERR_INVALID` when `struct_size`
/// does not cover `clients`.
///
/// # Safety
/// `s` is NULL or a live server, not being changed by another call; `out`
/// is NULL or points to a writable struct of at least `out->struct_size`
/// bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_stats(s: *const ChatServer, out: *mut ChatStats) -> c_int {
    boundary("chat_server_stats", as_int, || {
        // SAFETY: `s` is NULL or live (caller).
        let inner = unsafe { handle::inner_ref(s) }?;
        let out = args::non_null(out, "out")?;
        // SAFETY: `out` is writable as far as its struct_size says (caller).
        unsafe { types::write_stats(out, &inner.server.stats()) }?;
        Ok(CHAT_OK)
    })
}

/// Closes every socket at once (no goodbye: use `chat_server_shutdown`
/// first for that) and frees the server. NULL does nothing.
///
/// # Safety
/// `s` is NULL or a live server; no call on it runs now (from any thread,
/// `chat_server_wakeup` included) or later.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_free(s: *mut ChatServer) {
    boundary(
        "chat_server_free",
        |_| (),
        || {
            // SAFETY: `s` is NULL or live and never used again (caller).
            unsafe { handle::free_handle(s) }
        },
    )
}

/// This thread's last error message, or NULL if no call on this thread
/// has failed. Successful calls leave it as it is; it stays valid until
/// the next failing call on this thread.
#[no_mangle]
pub extern "C" fn chat_last_error() -> *const c_char {
    boundary("chat_last_error", |_| ptr::null(), || Ok(error::last_error_ptr()))
}

/// This thread's last error code (`CHAT_ERR_*`), or `CHAT_OK` if no call
/// on this thread has failed; it goes with `chat_last_error()`.
#[no_mangle]
pub extern "C" fn chat_last_error_code() -> c_int {
    boundary("chat_last_error_code", as_int, || Ok(error::last_error_code()))
}

/// Static text for a return code: `"ok"` for `CHAT_OK`, a description for
/// each `CHAT_ERR_*`, and `"unknown error code"` for anything else. Never
/// NULL.
#[no_mangle]
pub extern "C" fn chat_strerror(code: c_int) -> *const c_char {
    boundary(
        "chat_strerror",
        |e| e.text().as_ptr(),
        || {
            Ok(match code {
                CHAT_OK => c"ok",
                _ => ErrorCode::from_int(code).map_or(c"unknown error code", ErrorCode::text),
            }
            .as_ptr())
        },
    )
}

/// The library's version, `"MAJOR.MINOR.PATCH"` (static): compare with
/// `CHAT_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn chat_version() -> *const c_char {
    boundary("chat_version", |e| e.text().as_ptr(), || Ok(VERSION.as_ptr()))
}
