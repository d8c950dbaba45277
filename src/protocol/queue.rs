//! One client's output queue: payloads waiting for its socket, in order,
//! each a shared reference (a broadcast sits in every queue once, never
//! copied). The queue knows nothing of framing: the transport that writes
//! it adds its own headers and tells the queue how far it got.

use std::collections::VecDeque;

use crate::message::Payload;

/// Bytes a queued payload is counted for beyond its own length: what it
/// costs in memory besides its bytes, so that `max_queue_bytes` bounds
/// memory, not only payload: its shared allocation's header (the `Arc`'s
/// two counts, 16 bytes) and the allocator's (8, and rounding up to 16),
/// the queue's slot (a 16-byte pointer, in a ring that may be twice as
/// long as it is full), and its framing on the wire (up to 10 bytes). 64 in
/// all: tiny frames were counted a third of what they took before.
pub const FRAME_OVERHEAD: usize = 64;
/// A queue that has been emptied gives back a ring longer than this.
const IDLE_SLOTS: usize = 64;

/// Payloads waiting to be written, with how far the transport got into the
/// first.
#[derive(Debug, Default)]
pub struct OutQueue {
    payloads: VecDeque<Payload>,
    /// How much of `payloads[0]` the transport has written, in its own
    /// units (its header's bytes and then the payload's): the queue only
    /// keeps the number for it, so a transport needs no state of its own
    /// about a half-written frame.
    head_written: usize,
    /// What the queue holds, as the cap counts it: every payload's length
    /// plus [`FRAME_OVERHEAD`].
    counted: usize,
}

impl OutQueue {
    /// The payloads waiting, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Payload> + '_ {
        self.payloads.iter()
    }

    /// How far into the first payload's frame the transport has written.
    pub fn head_written(&self) -> usize {
        self.head_written
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Payloads waiting.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// What the queue holds as the cap counts it.
    pub fn counted_bytes(&self) -> usize {
        self.counted
    }

    /// What `payload` adds to [`counted_bytes`](Self::counted_bytes).
    pub fn cost(payload: &[u8]) -> usize {
        payload.len() + FRAME_OVERHEAD
    }

    /// Appends a payload (a shared reference: no copy of the bytes).
    pub(super) fn push(&mut self, payload: Payload) {
        self.counted += Self::cost(&payload);
        self.payloads.push_back(payload);
    }

    /// The transport wrote `whole` payloads from the front and is
    /// `head_written` into the next one; returns the bytes (as counted)
    /// that left the queue.
    pub(super) fn advance(&mut self, whole: usize, head_written: usize) -> usize {
        self.advance_with(whole, head_written, drop)
    }

    /// [`advance`](Self::advance), handing each payload written whole to
    /// `written` (a resumable session keeps them), oldest first.
    pub(super) fn advance_with(
        &mut self,
        whole: usize,
        head_written: usize,
        mut written: impl FnMut(Payload),
    ) -> usize {
        let mut freed = 0;
        for payload in self.payloads.drain(..whole) {
            freed += Self::cost(&payload);
            written(payload);
        }
        self.counted -= freed;
        self.head_written = if self.payloads.is_empty() { 0 } else { head_written };
        if self.payloads.is_empty() && self.payloads.capacity() > IDLE_SLOTS {
            // A burst is over: an idle client should cost what an idle
            // client costs.
            self.payloads = VecDeque::new();
        }
        freed
    }

    /// Moves the payloads from position `at` on into a queue of their own,
    /// none of them started (a partly written one is to be sent again,
    /// whole, elsewhere). This queue keeps the ones before `at`, and its
    /// first payload if it was partly written, so that the stream it was
    /// going to still ends on a frame boundary. Returns the new queue and
    /// the bytes (as counted) that left this one.
    pub(super) fn split_off(&mut self, at: usize) -> (OutQueue, usize) {
        let at = at.min(self.payloads.len());
        let rest = self.payloads.split_off(at);
        if at == 0 && self.head_written > 0 {
            if let Some(head) = rest.front() {
                self.payloads.push_back(head.clone());
            }
        }
        let mut moved = OutQueue::default();
        for payload in rest {
            moved.push(payload);
        }
        let before = self.counted;
        self.counted = self.payloads.iter().map(|p| Self::cost(p)).sum();
        if self.payloads.is_empty() {
            self.head_written = 0;
        }
        (moved, before - self.counted)
    }

    /// Empties the queue; returns the bytes (as counted) it held.
    pub(super) fn clear(&mut self) -> usize {
        self.payloads.clear();
        self.head_written = 0;
        std::mem::take(&mut self.counted)
    }

    /// The payloads, oldest first, for a queue that is being dissolved.
    pub(super) fn into_payloads(self) -> impl Iterator<Item = Payload> {
        self.payloads.into_iter()
    }

    /// Drops every payload not yet started, keeping a partly written head
    /// so the byte stream stays well framed. Returns the bytes (as counted)
    /// dropped.
    pub(super) fn drop_unstarted(&mut self) -> usize {
        let keep = usize::from(self.head_written > 0).min(self.payloads.len());
        let dropped: usize = self.payloads.drain(keep..).map(|p| Self::cost(&p)).sum();
        self.counted -= dropped;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(bytes: &[u8]) -> Payload {
        Payload::from(bytes)
    }

    #[test]
    fn the_transport_advances_it_by_whole_payloads_and_a_head_offset() {
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        assert_eq!(q.counted_bytes(), 6 + 2 * FRAME_OVERHEAD);
        assert_eq!(q.advance(0, 3), 0);
        assert_eq!(q.head_written(), 3);
        assert_eq!(q.advance(1, 1), 4 + FRAME_OVERHEAD);
        assert_eq!(q.iter().next().map(|p| &p[..]), Some(&b"ef"[..]));
        assert_eq!(q.head_written(), 1);
        assert_eq!(q.advance(1, 0), 2 + FRAME_OVERHEAD);
        assert!(q.is_empty());
        assert_eq!(q.counted_bytes(), 0);
    }

    #[test]
    fn split_off_keeps_a_partly_written_head_on_both_sides() {
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        q.push(payload(b"g"));
        q.advance(0, 2);
        let (moved, freed) = q.split_off(0);
        assert_eq!(moved.len(), 3);
        assert_eq!(moved.head_written(), 0);
        assert_eq!(moved.counted_bytes(), 7 + 3 * FRAME_OVERHEAD);
        assert_eq!(q.len(), 1);
        assert_eq!(q.head_written(), 2);
        assert_eq!(freed, 3 + 2 * FRAME_OVERHEAD);
        let mut q = OutQueue::default();
        q.push(payload(b"welcome"));
        q.push(payload(b"ef"));
        let (moved, freed) = q.split_off(1);
        assert_eq!(moved.len(), 1);
        assert_eq!(q.len(), 1);
        assert_eq!(freed, 2 + FRAME_OVERHEAD);
        assert_eq!(q.clear(), 7 + FRAME_OVERHEAD);
        assert!(q.is_empty());
    }

    #[test]
    fn drop_unstarted_keeps_a_partly_written_head() {
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        q.advance(0, 1);
        assert_eq!(q.drop_unstarted(), 2 + FRAME_OVERHEAD);
        assert_eq!(q.len(), 1);
        let mut q2 = OutQueue::default();
        q2.push(payload(b"abcd"));
        assert_eq!(q2.drop_unstarted(), 4 + FRAME_OVERHEAD);
        assert!(q2.is_empty());
    }
}
