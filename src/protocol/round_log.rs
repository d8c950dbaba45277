//! The round's log of fanned-out payloads: each broadcast or room message
//! of a round once, with its frame in each framing (the length prefix of
//! TCP, a WebSocket text frame), so that what a round fans out to a client
//! is one entry of its queue (a run of this log) and one slice of one
//! write, however many messages the round carried. TLS takes the same
//! slice as plaintext for its records.
//!
//! Without it every delivery was a reference-count increment, a queue
//! push, a copy into the write's staging buffer, a pop and a decrement:
//! more user-space work per delivery, at 100 clients, than the kernel's
//! own. With it a delivery extends the run at the end of the recipient's
//! queue by one, and the write hands the kernel the frames as they lie
//! here, the way a bare relay sends a round's bytes.
//!
//! There are two logs, one per kind of audience ([`Audience`]): what
//! goes to every registered client, which most recipients take without
//! any work of their own per message (a cursor into the log, see
//! [`Delivery`](super::delivery::Delivery)), and what goes to a room's
//! members, which each member's queue takes as a run.
//!
//! The log lives for one round. What a client's socket did not take by
//! the end of the round is turned back into entries of its own (the
//! shared payloads, not copies) before the log is cleared, so memory is
//! bounded as before: a slow reader never pins a round's worth of other
//! people's messages.

use std::ops::Range;

use super::queue::OutQueue;
use crate::codec::{length_prefix, ws};
use crate::message::Payload;

/// Payloads at least this long are queued on their own, not logged: their
/// frame would be copied into the log once per round, and their two slices
/// (header and payload) cost the kernel nothing next to their bytes.
pub(super) const LOGGED_BELOW: usize = 4 * 1024;

/// The framings the log keeps every payload's frame in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFraming {
    /// A 4-byte big-endian length, then the payload.
    LengthPrefix,
    /// An unmasked WebSocket text frame (a 2- to 10-byte header).
    WebSocket,
}

/// Which of the round's two logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Payloads for every registered client (broadcasts, presence).
    Everyone,
    /// Payloads for a room's members, or any other list of recipients.
    Listed,
}

/// The round's two logs.
#[derive(Debug, Default)]
pub struct RoundLogs {
    logs: [RoundLog; 2],
}

impl RoundLogs {
    /// One of the logs.
    pub fn get(&self, audience: Audience) -> &RoundLog {
        &self.logs[audience as usize]
    }

    pub(super) fn get_mut(&mut self, audience: Audience) -> &mut RoundLog {
        &mut self.logs[audience as usize]
    }

    /// Forgets the round.
    pub(super) fn clear(&mut self) {
        for log in &mut self.logs {
            log.clear();
        }
    }
}

/// This round's fanned-out payloads, oldest first.
#[derive(Debug, Default)]
pub struct RoundLog {
    payloads: Vec<Payload>,
    /// What the payloads before each one count against a queue's cap
    /// ([`OutQueue::cost`]), and one more: what they all count. A run's
    /// cost is a difference of two.
    costs_before: Vec<usize>,
    /// Every payload's frame in each framing, back to back.
    framed: [Framed; 2],
}

/// The frames of every payload in one framing, back to back.
#[derive(Debug, Default)]
struct Framed {
    bytes: Vec<u8>,
    /// Where each payload's frame starts in `bytes`, and one more: where
    /// the last one ends.
    starts: Vec<usize>,
}

impl Framed {
    fn append(&mut self, header: &[u8], payload: &[u8]) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(payload);
        self.starts.push(self.bytes.len());
    }

    fn run(&self, run: Range<u32>) -> &[u8] {
        &self.bytes[self.starts[run.start as usize]..self.starts[run.end as usize]]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.starts.clear();
        if self.bytes.capacity() > FRAMED_KEEP {
            *self = Framed::default();
        }
    }
}

/// The framed log is kept between rounds up to this capacity.
const FRAMED_KEEP: usize = 1 << 20;

impl RoundLog {
    /// Logs a payload (a shared reference, and its frames copied once);
    /// returns its index in this round.
    pub(super) fn append(&mut self, payload: &Payload) -> u32 {
        self.framed[LogFraming::LengthPrefix as usize].append(&length_prefix::header(payload.len()), payload);
        self.framed[LogFraming::WebSocket as usize].append(&ws::frame::Header::text(payload.len()), payload);
        self.payloads.push(payload.clone());
        if self.costs_before.is_empty() {
            self.costs_before.push(0);
        }
        self.costs_before
            .push(self.total_cost() + OutQueue::cost(payload));
        (self.payloads.len() - 1) as u32
    }

    /// Payloads logged this round.
    pub fn len(&self) -> u32 {
        self.payloads.len() as u32
    }

    /// What payloads `..index` count against a queue's cap.
    pub fn cost_before(&self, index: u32) -> usize {
        self.costs_before.get(index as usize).copied().unwrap_or(0)
    }

    /// What every payload logged this round counts.
    pub fn total_cost(&self) -> usize {
        self.costs_before.last().copied().unwrap_or(0)
    }

    /// The payloads of a run.
    pub fn payloads(&self, run: Range<u32>) -> &[Payload] {
        &self.payloads[run.start as usize..run.end as usize]
    }

    /// The frames of a run, back to back, as `framing` puts them on the
    /// wire.
    pub fn framed(&self, run: Range<u32>, framing: LogFraming) -> &[u8] {
        self.framed[framing as usize].run(run)
    }

    /// Forgets the round (every queue's runs must have been turned into
    /// entries of their own or written first).
    pub(super) fn clear(&mut self) {
        self.payloads.clear();
        self.costs_before.clear();
        for f in &mut self.framed {
            f.clear();
        }
        if self.payloads.capacity() > FRAMED_KEEP / 64 {
            self.payloads = Vec::new();
            self.costs_before = Vec::new();
        }
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
        assert_eq!(
            log.framed(1..3, LogFraming::LengthPrefix),
            b"\0\0\0\x03cde\0\0\0\x01f"
        );
        assert_eq!(log.framed(0..1, LogFraming::LengthPrefix), b"\0\0\0\x02ab");
        assert_eq!(log.framed(1..3, LogFraming::WebSocket), b"\x81\x03cde\x81\x01f");
        assert_eq!(log.payloads(0..2).len(), 2);
        assert_eq!(&log.payloads(2..3)[0][..], b"f");
        assert_eq!(log.cost_before(0), 0);
        assert_eq!(log.cost_before(2), OutQueue::cost(b"ab") + OutQueue::cost(b"cde"));
        assert_eq!(log.total_cost(), log.cost_before(3));
        log.clear();
        assert_eq!(log.total_cost(), 0);
        assert_eq!(log.len(), 0);
        assert_eq!(log.append(&Payload::from(b"g")), 0);
        assert_eq!(log.framed(0..1, LogFraming::LengthPrefix), b"\0\0\0\x01g");
    }
}
