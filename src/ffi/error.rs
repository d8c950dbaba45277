//! The C ABI's error codes, this thread's last error, and the boundary that
//! every exported function runs its body in.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::Error;

/// Success.
pub const CHAT_OK: c_int = 0;
/// A required pointer was NULL.
pub const CHAT_ERR_NULL: c_int = -1;
/// A bad value or length: `struct_size` too small, a negative deadline...
pub const CHAT_ERR_INVALID: c_int = -2;
/// A string is not UTF-8.
pub const CHAT_ERR_UTF8: c_int = -3;
/// A payload is not one JSON object (bytes that are not UTF-8 JSON included).
pub const CHAT_ERR_NOT_JSON_OBJECT: c_int = -4;
/// A payload is over `max_frame_bytes`.
pub const CHAT_ERR_TOO_LARGE: c_int = -5;
/// No connected client has that id (never connected, gone, or being closed).
pub const CHAT_ERR_UNKNOWN_CLIENT: c_int = -6;
/// `listen_addr` does not parse as `IP:port`.
pub const CHAT_ERR_ADDR: c_int = -7;
/// The listener cannot be bound or cannot listen.
pub const CHAT_ERR_BIND: c_int = -8;
/// A descriptor the server needs is `>= FD_SETSIZE`, so `select()` cannot
/// watch it.
pub const CHAT_ERR_FD_SETSIZE: c_int = -9;
/// A limit in `ChatConfig` is out of range.
pub const CHAT_ERR_CONFIG: c_int = -10;
/// An operating-system call failed.
pub const CHAT_ERR_IO: c_int = -11;
/// The server is shutting down.
pub const CHAT_ERR_SHUTTING_DOWN: c_int = -12;
/// A bug: a Rust panic was caught at the boundary. The server may be in a
/// bad state; free it.
pub const CHAT_ERR_PANIC: c_int = -13;
/// No room by that name exists.
pub const CHAT_ERR_UNKNOWN_ROOM: c_int = -14;
/// The client is not a member of that room.
pub const CHAT_ERR_NOT_IN_ROOM: c_int = -15;
/// No held message has that ticket (released, dropped, or never held).
pub const CHAT_ERR_UNKNOWN_TICKET: c_int = -16;
/// The client is not waiting for approval.
pub const CHAT_ERR_NOT_PENDING: c_int = -17;
/// The TLS certificate or key is unreadable, of a kind the server cannot
/// use, or they do not match (`chat_last_error` says which).
pub const CHAT_ERR_TLS: c_int = -18;

/// The `CHAT_ERR_*` codes as a Rust type. The values are the constants
/// above: they are the ABI, never renumbered or reused.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `CHAT_ERR_NULL`.
    Null = CHAT_ERR_NULL,
    /// `CHAT_ERR_INVALID`.
    Invalid = CHAT_ERR_INVALID,
    /// `CHAT_ERR_UTF8`.
    Utf8 = CHAT_ERR_UTF8,
    /// `CHAT_ERR_NOT_JSON_OBJECT`.
    NotJsonObject = CHAT_ERR_NOT_JSON_OBJECT,
    /// `CHAT_ERR_TOO_LARGE`.
    TooLarge = CHAT_ERR_TOO_LARGE,
    /// `CHAT_ERR_UNKNOWN_CLIENT`.
    UnknownClient = CHAT_ERR_UNKNOWN_CLIENT,
    /// `CHAT_ERR_ADDR`.
    Addr = CHAT_ERR_ADDR,
    /// `CHAT_ERR_BIND`.
    Bind = CHAT_ERR_BIND,
    /// `CHAT_ERR_FD_SETSIZE`.
    FdSetSize = CHAT_ERR_FD_SETSIZE,
    /// `CHAT_ERR_CONFIG`.
    Config = CHAT_ERR_CONFIG,
    /// `CHAT_ERR_IO`.
    Io = CHAT_ERR_IO,
    /// `CHAT_ERR_SHUTTING_DOWN`.
    ShuttingDown = CHAT_ERR_SHUTTING_DOWN,
    /// `CHAT_ERR_PANIC`.
    Panic = CHAT_ERR_PANIC,
    /// `CHAT_ERR_UNKNOWN_ROOM`.
    UnknownRoom = CHAT_ERR_UNKNOWN_ROOM,
    /// `CHAT_ERR_NOT_IN_ROOM`.
    NotInRoom = CHAT_ERR_NOT_IN_ROOM,
    /// `CHAT_ERR_UNKNOWN_TICKET`.
    UnknownTicket = CHAT_ERR_UNKNOWN_TICKET,
    /// `CHAT_ERR_NOT_PENDING`.
    NotPending = CHAT_ERR_NOT_PENDING,
    /// `CHAT_ERR_TLS`.
    Tls = CHAT_ERR_TLS,
}

/// Every code, in numeric order (0 down).
pub(super) const ALL_CODES: [ErrorCode; 18] = [
    ErrorCode::Null,
    ErrorCode::Invalid,
    ErrorCode::Utf8,
    ErrorCode::NotJsonObject,
    ErrorCode::TooLarge,
    ErrorCode::UnknownClient,
    ErrorCode::Addr,
    ErrorCode::Bind,
    ErrorCode::FdSetSize,
    ErrorCode::Config,
    ErrorCode::Io,
    ErrorCode::ShuttingDown,
    ErrorCode::Panic,
    ErrorCode::UnknownRoom,
    ErrorCode::NotInRoom,
    ErrorCode::UnknownTicket,
    ErrorCode::NotPending,
    ErrorCode::Tls,
];

impl ErrorCode {
    /// The code a C caller sees.
    pub fn as_int(self) -> c_int {
        self as c_int
    }

    /// The code for a C value, if it is one.
    pub fn from_int(code: c_int) -> Option<ErrorCode> {
        ALL_CODES.into_iter().find(|c| c.as_int() == code)
    }

    /// The static text `chat_strerror` returns for it.
    pub fn text(self) -> &'static CStr {
        match self {
            ErrorCode::Null => c"a required pointer was NULL",
            ErrorCode::Invalid => c"invalid value or length",
            ErrorCode::Utf8 => c"a string is not UTF-8",
            ErrorCode::NotJsonObject => c"payload is not one JSON object",
            ErrorCode::TooLarge => c"payload is over max_frame_bytes",
            ErrorCode::UnknownClient => c"no connected client with that id",
            ErrorCode::Addr => c"listen address does not parse as IP:port",
            ErrorCode::Bind => c"cannot bind or listen on the address",
            ErrorCode::FdSetSize => c"descriptor is at or above FD_SETSIZE",
            ErrorCode::Config => c"a configuration limit is out of range",
            ErrorCode::Io => c"an operating-system call failed",
            ErrorCode::ShuttingDown => c"the server is shutting down",
            ErrorCode::Panic => c"internal error: a panic was caught (a bug in the chat library)",
            ErrorCode::UnknownRoom => c"no room by that name",
            ErrorCode::NotInRoom => c"the client is not in that room",
            ErrorCode::UnknownTicket => c"no held message with that ticket",
            ErrorCode::NotPending => c"the client is not waiting for approval",
            ErrorCode::Tls => c"the TLS certificate or key cannot be used",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().to_str().unwrap_or("?"))
    }
}

/// The one place a library error becomes a C code.
pub fn code_of(e: &Error) -> ErrorCode {
    match e {
        Error::Bind { .. } => ErrorCode::Bind,
        Error::FdTooHigh { .. } => ErrorCode::FdSetSize,
        Error::InvalidConfig(_) => ErrorCode::Config,
        Error::UnknownClient(_) => ErrorCode::UnknownClient,
        Error::NotJsonObject(_) => ErrorCode::NotJsonObject,
        Error::PayloadTooLarge { .. } => ErrorCode::TooLarge,
        Error::ShuttingDown => ErrorCode::ShuttingDown,
        Error::Io(_) => ErrorCode::Io,
        Error::UnknownRoom(_) => ErrorCode::UnknownRoom,
        Error::NotInRoom { .. } => ErrorCode::NotInRoom,
        Error::UnknownTicket(_) => ErrorCode::UnknownTicket,
        Error::NotAwaitingApproval(_) => ErrorCode::NotPending,
        Error::Tls(_) => ErrorCode::Tls,
    }
}

/// Why a call failed: its code and a message for `chat_last_error`.
#[derive(Debug)]
pub struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    /// A failure with its own message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A required pointer argument was NULL.
    pub fn null(what: &str) -> Failure {
        Failure::new(ErrorCode::Null, format!("{what} is NULL"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(code_of(&e), e.to_string())
    }
}

thread_local! {
    /// The last failure on this thread; `chat_last_error` lends out a pointer
    /// into it, so it is only replaced by the next failure.
    static LAST_ERROR: RefCell<Option<(ErrorCode, CString)>> = const { RefCell::new(None) };
}

fn set_last_error(code: ErrorCode, message: String) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // During thread teardown the slot may be gone: nobody can read it then.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some((code, message)));
}

/// This thread's last error message, or NULL.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ref().map_or(ptr::null(), |(_, m)| m.as_ptr()))
        .unwrap_or(ptr::null())
}

/// This thread's last error code, or `CHAT_OK`.
pub fn last_error_code() -> c_int {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ref().map_or(CHAT_OK, |(c, _)| c.as_int()))
        .unwrap_or(CHAT_OK)
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs the body of the exported function `name`. A failure sets this
/// thread's last error and returns `on_error(code)`; a panic is caught, so
/// it never unwinds into C, and is reported the same way as
/// `CHAT_ERR_PANIC`. The success path touches nothing but the body, which
/// keeps `chat_server_wakeup` usable from a signal handler.
pub fn boundary<T>(
    name: &str,
    on_error: impl FnOnce(ErrorCode) -> T,
    body: impl FnOnce() -> Result<T, Failure>,
) -> T {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => return value,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            ErrorCode::Panic,
            format!("panic: {} (a bug in the chat library)", panic_text(&*payload)),
        ),
    };
    set_last_error(failure.code, format!("{name}: {}", failure.message));
    on_error(failure.code)
}

/// `on_error` for functions that return an `int` code.
pub fn as_int(code: ErrorCode) -> c_int {
    code.as_int()
}
