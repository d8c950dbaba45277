//! The opaque `ChatServer` handle: made and freed in exactly one pair of
//! functions, borrowed through a few more, and the one field that another
//! thread may read. A borrow also makes the server's log callback the
//! current one on this thread for as long as it lasts (see `log`).

use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;

use super::error::Failure;
use super::event::EventText;
use super::log::{self, LogSlot, Scope};
use super::lookup::LookupText;
use crate::{Server, Waker};

/// A chat server owned by a C host. Opaque: C sees only pointers to it.
///
/// Not thread-safe: one thread makes every call on it, except
/// `chat_server_wakeup`, which any thread (or a signal handler) may call
/// while that thread pumps.
pub struct ChatServer {
    /// The wake pipe's write end. Written once, before the handle is given
    /// to the host, and never again; `chat_server_wakeup` reads only this
    /// field through the raw pointer, so it never makes a reference that
    /// could alias the `&mut Inner` of the pumping thread.
    wake_fd: RawFd,
    /// Everything else; only the pumping thread borrows it.
    inner: Inner,
}

/// The part of a handle that the pumping thread borrows.
pub struct Inner {
    /// The server itself.
    pub server: Server,
    /// Holds the wake pipe's write end open for as long as `wake_fd` names
    /// it (the server owns another reference, but this makes the handle's
    /// promise local).
    _waker: Waker,
    /// The text behind the pointers of the last event handed out.
    pub event: EventText,
    /// The text behind the pointers the lookups hand out.
    pub lookup: LookupText,
    /// The host's log callback, if it set one.
    pub log: LogSlot,
}

/// A borrow of a handle's `Inner` for one call, during which the server's
/// log callback is this thread's.
pub struct InnerMut<'a> {
    inner: &'a mut Inner,
    _log: Scope,
}

impl Deref for InnerMut<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner
    }
}

impl DerefMut for InnerMut<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.inner
    }
}

/// A shared borrow of a handle's `Inner` for one call, as [`InnerMut`].
pub struct InnerRef<'a> {
    inner: &'a Inner,
    _log: Scope,
}

impl Deref for InnerRef<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner
    }
}

/// Gives a new server to C.
pub fn into_handle(server: Server) -> *mut ChatServer {
    let waker = server.waker();
    Box::into_raw(Box::new(ChatServer {
        wake_fd: waker.as_raw_fd(),
        inner: Inner {
            server,
            _waker: waker,
            event: EventText::default(),
            lookup: LookupText::default(),
            log: LogSlot::default(),
        },
    }))
}

/// Takes a server back from C and drops it; NULL does nothing.
///
/// # Safety
/// `s` is NULL or came from [`into_handle`] and was not freed yet; no other
/// call on it runs now or later.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn free_handle(s: *mut ChatServer) -> Result<(), Failure> {
    log::check_not_in_callback()?;
    if !s.is_null() {
        // SAFETY: the caller promises `s` came from Box::into_raw in
        // into_handle and is given back exactly once.
        drop(unsafe { Box::from_raw(s) });
    }
    Ok(())
}

/// Borrows a handle's server for a call that may change it.
///
/// # Safety
/// `s` is NULL or a live handle, and no other borrow of its `Inner` exists
/// for `'a` (the host calls from one thread).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn inner_mut<'a>(s: *mut ChatServer) -> Result<InnerMut<'a>, Failure> {
    if s.is_null() {
        return Err(Failure::null("the server"));
    }
    log::check_not_in_callback()?;
    // SAFETY: `s` is live (caller). `(*s).inner` is a place through the raw
    // pointer: the borrow covers `inner` only, never `wake_fd`, which
    // chat_server_wakeup may be reading from another thread.
    let inner = unsafe { &mut (*s).inner };
    let _log = log::enter(inner.log.sink());
    Ok(InnerMut { inner, _log })
}

/// Borrows a handle's server for a call that only reads it.
///
/// # Safety
/// `s` is NULL or a live handle, not borrowed mutably for `'a`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn inner_ref<'a>(s: *const ChatServer) -> Result<InnerRef<'a>, Failure> {
    if s.is_null() {
        return Err(Failure::null("the server"));
    }
    log::check_not_in_callback()?;
    // SAFETY: `s` is live and not mutably borrowed (caller); the borrow
    // covers `inner` only.
    let inner = unsafe { &(*s).inner };
    let _log = log::enter(inner.log.sink());
    Ok(InnerRef { inner, _log })
}

/// The wake pipe's write end, read without borrowing the rest of the handle
/// (another thread may hold `&mut Inner` meanwhile).
///
/// # Safety
/// `s` is NULL or a live handle (not freed, and not being freed).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn wake_fd(s: *const ChatServer) -> Result<RawFd, Failure> {
    if s.is_null() {
        return Err(Failure::null("the server"));
    }
    // SAFETY: `s` is live (caller). `wake_fd` is never written after
    // into_handle, so this read cannot race; `&raw const` makes no
    // reference, so it cannot alias another thread's `&mut Inner`.
    Ok(unsafe { (&raw const (*s).wake_fd).read() })
}
