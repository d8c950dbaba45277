//! [`Payload`]: one JSON object ready to send, shared by every output queue
//! it goes to, and the pool that large payloads' buffers go back to.
//!
//! A large payload (a long text) is built straight into its final buffer,
//! and that buffer goes back to a small per-thread pool when the last
//! queue lets go of it. Without the pool every 16 KiB text was a fresh
//! heap block freed once written: the frees of one round (a read budget's
//! worth of texts) reached glibc's trim threshold, the top of the heap went
//! back to the kernel, and the next round faulted it in again (0.11 to
//! 0.17 minor page faults per 16 KiB message against 0.001 before, and a
//! fifth more server CPU per message). Small payloads keep one exact
//! allocation each: they never move the heap top by much, and a pool would
//! cost them more than it saves.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Payloads at least this long are built in pooled buffers.
pub(crate) const POOLED_MIN: usize = 4 * 1024;
/// Buffers larger than this are freed, not pooled (a rare huge payload
/// should not pin its memory).
const POOLED_MAX_CAPACITY: usize = 64 * 1024 + 1024;
/// Buffers kept per thread: at most about 1 MiB idle, more than one
/// round's worth of 16 KiB texts (a 128 KiB read budget holds 8).
const POOL_BUFFERS: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// One JSON object ready to send, shared by every output queue it is sent
/// to: a broadcast is encoded once and each recipient holds a reference,
/// never a copy. No framing: each transport adds its own when writing.
#[derive(Clone)]
pub struct Payload(Inner);

#[derive(Clone)]
enum Inner {
    /// One allocation of exactly the payload's size.
    Exact(Arc<[u8]>),
    /// A buffer that goes back to the pool when the last reference drops.
    Pooled(Arc<Pooled>),
}

/// A pooled buffer; its `Drop` gives it back.
struct Pooled(Vec<u8>);

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if (POOLED_MIN..=POOLED_MAX_CAPACITY).contains(&buf.capacity()) {
            // `try_with`: a payload dropped while its thread exits just
            // frees its buffer.
            let _ = POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < POOL_BUFFERS {
                    pool.push(buf);
                }
            });
        }
    }
}

impl Payload {
    /// A payload of `len` bytes (exactly: `write` must append `len`
    /// bytes) that `write` appends to an empty buffer: a pooled one for
    /// large payloads, so they are written once, where they stay.
    pub(crate) fn build(len: usize, write: impl FnOnce(&mut Vec<u8>)) -> Option<Payload> {
        if len < POOLED_MIN {
            return None;
        }
        let mut buf = POOL
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        buf.clear();
        buf.reserve_exact(len);
        write(&mut buf);
        debug_assert_eq!(buf.len(), len, "the payload's size was computed wrong");
        Some(Payload(Inner::Pooled(Arc::new(Pooled(buf)))))
    }

    /// Buffers in this thread's pool now (for tests).
    #[cfg(test)]
    pub(crate) fn pooled_buffers() -> usize {
        POOL.with(|pool| pool.borrow().len())
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Exact(bytes) => bytes,
            Inner::Pooled(pooled) => &pooled.0,
        }
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Payload(Inner::Exact(Arc::from(bytes)))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload(Inner::Exact(Arc::from(bytes)))
    }
}

impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(bytes: &[u8; N]) -> Self {
        Payload::from(&bytes[..])
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_payloads_buffer_goes_back_to_the_pool_when_its_last_reference_drops() {
        let before = Payload::pooled_buffers();
        let big = Payload::build(10_000, |out| out.resize(10_000, b'x')).expect("pooled");
        assert_eq!(big.len(), 10_000);
        let shared = big.clone();
        drop(big);
        assert_eq!(Payload::pooled_buffers(), before, "still referenced");
        drop(shared);
        assert_eq!(Payload::pooled_buffers(), before + 1);
        // The next one takes it.
        let again = Payload::build(5_000, |out| out.resize(5_000, b'y')).expect("pooled");
        assert_eq!(Payload::pooled_buffers(), before);
        assert!(again.iter().all(|&b| b == b'y'));
        assert_eq!(again.len(), 5_000);
    }

    #[test]
    fn small_payloads_are_not_pooled_and_compare_by_bytes() {
        assert!(Payload::build(100, |out| out.resize(100, 0)).is_none());
        assert_eq!(Payload::from(&b"{}"[..]), Payload::from(b"{}".to_vec()));
        assert_eq!(&Payload::from(&b"ab"[..])[..], b"ab");
    }

    #[test]
    fn the_pool_is_bounded_and_huge_buffers_are_freed() {
        let many: Vec<Payload> = (0..POOL_BUFFERS + 8)
            .map(|_| Payload::build(8192, |out| out.resize(8192, 1)).unwrap())
            .collect();
        drop(many);
        assert!(Payload::pooled_buffers() <= POOL_BUFFERS);
        let huge = Payload::build(1 << 20, |out| out.resize(1 << 20, 2)).unwrap();
        let n = Payload::pooled_buffers();
        drop(huge);
        assert_eq!(Payload::pooled_buffers(), n, "a 1 MiB buffer is freed");
    }
}
