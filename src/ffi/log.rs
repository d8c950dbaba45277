//! Logging for C hosts (`chat_server_set_log`): the library logs through
//! the `log` facade, and this module routes each record to the callback of
//! the server whose call made it.
//!
//! The `log` facade has one logger per process, but a process may run
//! several servers, each with its own callback, or none. The routing is by
//! thread and call: every exported function that takes a server makes that
//! server's callback the current one on this thread for the length of the
//! call (see [`enter`], used by `handle`), and the process's logger (this
//! module's [`Dispatch`], installed on the first `chat_server_set_log`)
//! hands each record to the current callback, if any. A record made outside
//! any call on a server with a callback goes nowhere; so does one from
//! another crate's target (only `chat` and `chat::*` records are routed), so
//! a host's own Rust code never reaches a server's callback.
//!
//! `log`'s global level is kept at the highest level any live server asked
//! for, so with no callback set every `log!` in the library costs one
//! relaxed atomic load and a compare.
//!
//! A Rust program that installed its own logger gets the library's records
//! there instead (the Rust API's way); `chat_server_set_log` then fails
//! with `CHAT_ERR_INVALID`, saying so.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::error::{as_int, boundary, ErrorCode, Failure};
use super::handle::{self, ChatServer};
use super::CHAT_OK;

/// A log callback: `level` is `CHAT_LOG_ERROR` (1) to `CHAT_LOG_TRACE` (5),
/// `message` one NUL-terminated line of UTF-8 text, valid only during the
/// call. It runs on the thread that pumps the server, inside the call on
/// that server that logged.
pub type ChatLogFn = Option<unsafe extern "C" fn(user: *mut c_void, level: c_int, message: *const c_char)>;

/// `chat_server_set_log` level: log nothing.
pub const CHAT_LOG_OFF: c_int = 0;
/// Log level: something failed that the server cannot take in its stride.
pub const CHAT_LOG_ERROR: c_int = 1;
/// Log level: trouble an operator should know of (out of descriptors, a
/// full server).
pub const CHAT_LOG_WARN: c_int = 2;
/// Log level: the server's life and clients dropped for cause (listening,
/// shutting down, `slow_consumer`, `timeout`, `protocol_error`).
pub const CHAT_LOG_INFO: c_int = 3;
/// Log level: every connection and departure.
pub const CHAT_LOG_DEBUG: c_int = 4;
/// Log level: everything.
pub const CHAT_LOG_TRACE: c_int = 5;

/// One server's callback, as set by the host.
#[derive(Clone, Copy)]
pub struct Sink {
    f: unsafe extern "C" fn(user: *mut c_void, level: c_int, message: *const c_char),
    user: *mut c_void,
    max: Level,
}

thread_local! {
    /// The callback of the server whose call runs on this thread now.
    static CURRENT: Cell<Option<Sink>> = const { Cell::new(None) };
    /// A callback is running on this thread: what it logs is dropped, and
    /// calls on servers are refused (they would alias the borrow the
    /// logging call holds).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// While alive, this thread's records go to one server's callback; dropped,
/// the one before is current again (a callback never nests calls, but a
/// panic unwinding through a call still restores it).
pub struct Scope {
    previous: Option<Sink>,
}

/// Makes `sink` current on this thread until the returned scope drops.
pub fn enter(sink: Option<Sink>) -> Scope {
    let previous = CURRENT.try_with(|c| c.replace(sink)).unwrap_or(None);
    Scope { previous }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

/// `CHAT_ERR_INVALID` if a log callback is running on this thread: the
/// library is in the middle of a call then, and must not be re-entered.
pub fn check_not_in_callback() -> Result<(), Failure> {
    if IN_CALLBACK.try_with(Cell::get).unwrap_or(false) {
        return Err(Failure::new(
            ErrorCode::Invalid,
            "called from inside a log callback, which must not call the library",
        ));
    }
    Ok(())
}

/// How many live servers log at each level (index: `Level as usize`).
static LEVELS: Mutex<[usize; 6]> = Mutex::new([0; 6]);

/// Whether this module's logger is the process's; set once.
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The process's logger, when the library installed it.
struct Dispatch;

static DISPATCH: Dispatch = Dispatch;

fn ours(target: &str) -> bool {
    target == "chat" || target.starts_with("chat::")
}

impl Log for Dispatch {
    fn enabled(&self, metadata: &Metadata) -> bool {
        ours(metadata.target())
            && CURRENT
                .try_with(|c| c.get().is_some_and(|s| metadata.level() <= s.max))
                .unwrap_or(false)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) || IN_CALLBACK.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let Some(sink) = CURRENT.try_with(Cell::get).ok().flatten() else {
            return;
        };
        let text = record.args().to_string().replace('\0', "\\0");
        let Ok(text) = CString::new(text) else {
            return;
        };
        IN_CALLBACK.with(|c| c.set(true));
        // The host gave `f` and `user` to chat_server_set_log for this
        // server, and neither can be replaced or freed during this call.
        // SAFETY: `f` may be called with `user` until replaced or the
        // server freed (the host's promise); `text` outlives the call.
        unsafe { (sink.f)(sink.user, record.level() as c_int, text.as_ptr()) };
        IN_CALLBACK.with(|c| c.set(false));
    }

    fn flush(&self) {}
}

/// Installs [`Dispatch`] as the process's logger on the first call; whether
/// it is the process's logger.
fn install() -> bool {
    *INSTALLED.get_or_init(|| log::set_logger(&DISPATCH).is_ok())
}

/// The `log` level filter for the highest level any server asked for.
fn highest(levels: &[usize; 6]) -> LevelFilter {
    let max = (1..=5).rev().find(|&l| levels[l] > 0).unwrap_or(0);
    level_filter(max as c_int)
}

fn level_filter(level: c_int) -> LevelFilter {
    match level {
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        5 => LevelFilter::Trace,
        _ => LevelFilter::Off,
    }
}

/// One server's callback, and its share of the process's level.
#[derive(Default)]
pub struct LogSlot {
    sink: Option<Sink>,
}

impl LogSlot {
    /// The callback for calls on this server, if one is set.
    pub fn sink(&self) -> Option<Sink> {
        self.sink
    }

    /// Sets (or with `f` NULL or `max_level` 0, removes) the callback.
    pub fn set(&mut self, max_level: c_int, f: ChatLogFn, user: *mut c_void) -> Result<(), Failure> {
        if !(CHAT_LOG_OFF..=CHAT_LOG_TRACE).contains(&max_level) {
            return Err(Failure::new(
                ErrorCode::Invalid,
                format!("max_level {max_level} is not 0 (off) to 5 (trace)"),
            ));
        }
        let sink = match (f, level_filter(max_level).to_level()) {
            (Some(f), Some(max)) => Some(Sink { f, user, max }),
            _ => None,
        };
        if sink.is_some() && !install() {
            return Err(Failure::new(
                ErrorCode::Invalid,
                "another logger is installed in this process (log::set_logger): the library's \
                 records go to it",
            ));
        }
        self.replace(sink);
        // The running call's records follow the new setting at once.
        let _ = CURRENT.try_with(|c| c.set(sink));
        Ok(())
    }

    /// Swaps the callback and updates the process's level.
    fn replace(&mut self, sink: Option<Sink>) {
        let old = std::mem::replace(&mut self.sink, sink);
        if old.is_none() && sink.is_none() {
            return;
        }
        // A poisoned lock only means another thread panicked mid-update:
        // the counts are still whole numbers.
        let mut levels = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = old {
            levels[old.max as usize] -= 1;
        }
        if let Some(new) = sink {
            levels[new.max as usize] += 1;
        }
        if *INSTALLED.get().unwrap_or(&false) {
            log::set_max_level(highest(&levels));
        }
    }
}

impl Drop for LogSlot {
    fn drop(&mut self) {
        self.replace(None);
    }
}

/// Sends the server's log records at `max_level` and above to `callback`
/// (`CHAT_LOG_ERROR` 1 .. `CHAT_LOG_TRACE` 5), replacing any callback set
/// before; `max_level` `CHAT_LOG_OFF` (0) or a NULL `callback` turns it
/// off. The library is silent until asked.
///
/// `callback(user, level, message)` runs on the thread pumping `s`, inside
/// the call on `s` that logged. Records made while no call on `s` runs (in
/// `chat_server_new`, say) reach no callback, so each call that sets one is
/// followed by an info record saying where the server listens. Each
/// server's records go to its own callback only. `message` is one line of
/// text, valid during the callback only; it never holds a payload, a
/// token, a key or a password. The callback must return normally (C++:
/// catch everything) and must not call the library: a call on any server
/// from inside it fails with `CHAT_ERR_INVALID`. `user` is passed back as
/// given.
///
/// Returns `CHAT_OK`, `CHAT_ERR_NULL`, or `CHAT_ERR_INVALID` (`max_level`
/// out of range; or the process has a logger of its own, a Rust program's
/// through the `log` crate, which gets the library's records instead).
///
/// # Safety
/// `s` is NULL or a live server, used by this thread only; `callback` is
/// NULL or a function that may be called with `user` until it is replaced
/// or `s` is freed.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
#[no_mangle]
pub unsafe extern "C" fn chat_server_set_log(
    s: *mut ChatServer,
    max_level: c_int,
    callback: ChatLogFn,
    user: *mut c_void,
) -> c_int {
    boundary("chat_server_set_log", as_int, || {
        // SAFETY: `s` is NULL or live, used by this thread only (caller).
        let mut inner = unsafe { handle::inner_mut(s) }?;
        inner.log.set(max_level, callback, user)?;
        if inner.log.sink().is_some() {
            // What chat_server_new logged went nowhere: say it again.
            log::info!(
                "listening on {} (at most {} clients; logging from {} up)",
                inner.server.local_addr(),
                inner.server.config().max_clients,
                level_filter(max_level).as_str().to_lowercase()
            );
        }
        Ok(CHAT_OK)
    })
}
