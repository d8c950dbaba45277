//! The round's log of fanned-out payloads: each broadcast or room message
//! of a round once, with its length-prefixed frame, so that what a round
//! fans out to a client is one entry of its queue (a run of this log) and
//! one slice of one write, however many messages the round carried.
//!
//! Without it every delivery was a reference-count increment, a queue
//! push, a copy into the write's staging buffer, a pop and a decrement:
//! more user-space work per delivery, at 100 clients, than the kernel's
//! own. With it a delivery extends the run at the end of the recipient's
//! queue by one, and the write hands the kernel the frames as they lie
//! here, the way a bare relay sends a round's bytes.
//!
//! The log lives for one round. What a client's socket did not take by
//! the end of the round is turned back into entries of its own (the
//! shared payloads, not copies) before the log is cleared, so memory is
//! bounded as before: a slow reader never pins a round's worth of other
//! people's messages.

use std::ops::Range;

use crate::codec::length_prefix;
use crate::message::Payload;

/// Payloads at least this long are queued on their own, not logged: their
/// frame would be copied into the log once per round, and their two slices
/// (header and payload) cost the kernel nothing next to their bytes.
pub(super) const LOGGED_BELOW: usize = 4 * 1024;

/// This round's fanned-out payloads, oldest first.
#[derive(Debug, Default)]
pub struct RoundLog {
    payloads: Vec<Payload>,
    /// Every payload's frame (its 4-byte length, then the payload), back to
    /// back.
    framed: Vec<u8>,
    /// Where each payload's frame starts in `framed`, and one more: where
    /// the last one ends.
    starts: Vec<usize>,
}

/// The framed log is kept between rounds up to this capacity.
const FRAMED_KEEP: usize = 1 << 20;

impl RoundLog {
    /// Logs a payload (a shared reference, and its frame copied once);
    /// returns its index in this round.
    pub(super) fn append(&mut self, payload: &Payload) -> u32 {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.framed
            .extend_from_slice(&length_prefix::header(payload.len()));
        self.framed.extend_from_slice(payload);
        self.starts.push(self.framed.len());
        self.payloads.push(payload.clone());
        (self.payloads.len() - 1) as u32
    }

    /// The payloads of a run.
    pub fn payloads(&self, run: Range<u32>) -> &[Payload] {
        &self.payloads[run.start as usize..run.end as usize]
    }

    /// The frames of a run, back to back, as the length-prefix framing
    /// puts them on the wire.
    pub fn framed(&self, run: Range<u32>) -> &[u8] {
        &self.framed[self.starts[run.start as usize]..self.starts[run.end as usize]]
    }

    /// Forgets the round (every queue's runs must have been turned into
    /// entries of their own or written first).
    pub(super) fn clear(&mut self) {
        self.payloads.clear();
        self.starts.clear();
        self.framed.clear();
        if self.framed.capacity() > FRAMED_KEEP {
            self.framed = Vec::new();
            self.payloads = Vec::new();
            self.starts = Vec::new();
        }
    }

    /// Payloads logged this round.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.payloads.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_its_payloads_and_their_frames_back_to_back() {
        let mut log = RoundLog::default();
        assert_eq!(log.append(&Payload::from(b"ab")), 0);
        assert_eq!(log.append(&Payload::from(b"cde")), 1);
        assert_eq!(log.append(&Payload::from(b"f")), 2);
        assert_eq!(log.framed(1..3), b"\0\0\0\x03cde\0\0\0\x01f");
        assert_eq!(log.framed(0..1), b"\0\0\0\x02ab");
        assert_eq!(log.payloads(0..2).len(), 2);
        assert_eq!(&log.payloads(2..3)[0][..], b"f");
        log.clear();
        assert_eq!(log.len(), 0);
        assert_eq!(log.append(&Payload::from(b"g")), 0);
        assert_eq!(log.framed(0..1), b"\0\0\0\x01g");
    }
}
