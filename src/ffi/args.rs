//! Checked conversions of C arguments: a pointer that must not be NULL, a
//! pointer and a length, a C string that must be UTF-8.

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;

use super::error::{ErrorCode, Failure};

/// A pointer the call needs, or `CHAT_ERR_NULL` naming `what`.
pub fn non_null<T>(p: *mut T, what: &str) -> Result<NonNull<T>, Failure> {
    NonNull::new(p).ok_or_else(|| Failure::null(what))
}

/// `len` bytes at `p`. NULL is an error even when `len` is 0, so that a
/// host's forgotten buffer is reported rather than sent as nothing.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay unchanged for `'a`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(
            ErrorCode::Invalid,
            format!("{what}: length {len} is too large"),
        ));
    }
    // SAFETY: `p` is not NULL and points to `len` readable bytes (caller);
    // `len` fits in isize, as from_raw_parts requires.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A NUL-terminated string that must be UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string unchanged for `'a`.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn utf8<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: `p` is not NULL and NUL-terminated (caller).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|e| Failure::new(ErrorCode::Utf8, format!("{what} is not UTF-8: {e}")))
}
