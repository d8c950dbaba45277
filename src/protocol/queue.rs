//! One client's output queue: payloads waiting for its socket, in order,
//! each a shared reference (a broadcast sits in every queue once, never
//! copied), or a run of one of this round's logs of fanned-out payloads
//! ([`RoundLogs`]: a round's broadcasts to a client are one entry). The
//! queue knows nothing of framing: the transport that writes it adds its
//! own headers (or takes a run's length-prefixed frames as they lie in the
//! log) and tells the queue how far it got, in frames.

use std::collections::VecDeque;

use super::round_log::{Audience, LogFraming, RoundLog, RoundLogs};
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

/// One entry of a queue.
#[derive(Debug)]
enum Entry {
    /// A payload of its own.
    One(Payload),
    /// Payloads `start..end` of one of this round's logs, and what they
    /// count.
    Run {
        log: Audience,
        start: u32,
        end: u32,
        counted: usize,
    },
}

/// What a transport writes, entry by entry.
pub enum Chunk<'a> {
    /// One payload, to frame.
    One(&'a Payload),
    /// Consecutive payloads of the round's log, and their frames back to
    /// back in the framing asked for.
    Run(&'a [Payload], &'a [u8]),
}

/// Payloads waiting to be written, with how far the transport got into the
/// first.
#[derive(Debug, Default)]
pub struct OutQueue {
    entries: VecDeque<Entry>,
    /// How much of the first frame the transport has written, in its own
    /// units (its header's bytes and then the payload's): the queue only
    /// keeps the number for it, so a transport needs no state of its own
    /// about a half-written frame.
    head_written: usize,
    /// What the queue holds, as the cap counts it: every payload's length
    /// plus [`FRAME_OVERHEAD`].
    counted: usize,
    /// Frames waiting (a run counts each of its payloads).
    frames: usize,
    /// Entries that are runs of the round's log.
    runs: usize,
}

/// A queue as a transport sees it: its entries, runs resolved in the
/// round's logs.
#[derive(Clone, Copy)]
pub struct Output<'a> {
    queue: &'a OutQueue,
    logs: &'a RoundLogs,
}

impl<'a> Output<'a> {
    pub(super) fn new(queue: &'a OutQueue, logs: &'a RoundLogs) -> Self {
        Output { queue, logs }
    }

    /// The entries, oldest first, runs framed as `framing` frames them.
    pub fn chunks(&self, framing: LogFraming) -> impl Iterator<Item = Chunk<'a>> + 'a {
        let logs = self.logs;
        self.queue.entries.iter().map(move |e| match e {
            Entry::One(p) => Chunk::One(p),
            Entry::Run { log, start, end, .. } => {
                let log = logs.get(*log);
                Chunk::Run(log.payloads(*start..*end), log.framed(*start..*end, framing))
            }
        })
    }

    /// Every payload waiting, oldest first (runs taken apart).
    #[cfg(test)]
    pub fn payloads(&self) -> impl Iterator<Item = &'a Payload> + 'a {
        self.chunks(LogFraming::LengthPrefix).flat_map(|c| match c {
            Chunk::One(p) => std::slice::from_ref(p),
            Chunk::Run(ps, _) => ps,
        })
    }

    /// Entries waiting (a run is one).
    pub fn entries(&self) -> usize {
        self.queue.entries.len()
    }

    /// Frames waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.frames
    }

    /// How far into the first frame the transport has written.
    pub fn head_written(&self) -> usize {
        self.queue.head_written
    }
}

impl OutQueue {
    /// How far into the first payload's frame the transport has written.
    #[cfg(test)]
    pub fn head_written(&self) -> usize {
        self.head_written
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames
    }

    /// What the queue holds as the cap counts it.
    pub fn counted_bytes(&self) -> usize {
        self.counted
    }

    /// What `payload` adds to [`counted_bytes`](Self::counted_bytes).
    pub fn cost(payload: &[u8]) -> usize {
        payload.len() + FRAME_OVERHEAD
    }

    /// Whether some entry is a run of one of the round's logs.
    pub(super) fn has_runs(&self) -> bool {
        self.runs > 0
    }

    /// Appends a payload (a shared reference: no copy of the bytes).
    pub(super) fn push(&mut self, payload: Payload) {
        self.counted += Self::cost(&payload);
        self.frames += 1;
        self.entries.push_back(Entry::One(payload));
    }

    /// Appends payloads `start..end` of the round's `log`, which count
    /// `cost`: the run at the end grows when it ends just before them.
    #[inline]
    pub(super) fn push_logged(&mut self, log: Audience, start: u32, end: u32, cost: usize) {
        self.counted += cost;
        self.frames += (end - start) as usize;
        if let Some(Entry::Run {
            log: l,
            end: e,
            counted,
            ..
        }) = self.entries.back_mut()
        {
            if *l == log && *e == start {
                *e = end;
                *counted += cost;
                return;
            }
        }
        self.runs += 1;
        self.entries.push_back(Entry::Run {
            log,
            start,
            end,
            counted: cost,
        });
    }

    /// Turns runs of the round's logs into entries of their own (the
    /// shared payloads), before the logs are cleared.
    pub(super) fn detach(&mut self, logs: &RoundLogs) {
        if self.runs == 0 {
            return;
        }
        let old = std::mem::take(&mut self.entries);
        self.entries.reserve(self.frames);
        for entry in old {
            match entry {
                Entry::One(p) => self.entries.push_back(Entry::One(p)),
                Entry::Run { log, start, end, .. } => self
                    .entries
                    .extend(logs.get(log).payloads(start..end).iter().cloned().map(Entry::One)),
            }
        }
        self.runs = 0;
    }

    /// The transport wrote `whole` frames from the front and is
    /// `head_written` into the next; returns the bytes (as counted) that
    /// left the queue.
    pub(super) fn advance(&mut self, logs: &RoundLogs, whole: usize, head_written: usize) -> usize {
        self.advance_with(logs, whole, head_written, None::<fn(Payload)>)
    }

    /// [`advance`](Self::advance), handing each payload written whole to
    /// `written` (a resumable session keeps them), oldest first.
    pub(super) fn advance_with(
        &mut self,
        logs: &RoundLogs,
        whole: usize,
        head_written: usize,
        mut written: Option<impl FnMut(Payload)>,
    ) -> usize {
        let mut freed = 0;
        let mut left = whole;
        while left > 0 {
            match self.entries.front_mut() {
                None => break,
                Some(Entry::One(_)) => {
                    let Some(Entry::One(payload)) = self.entries.pop_front() else {
                        unreachable!()
                    };
                    freed += Self::cost(&payload);
                    if let Some(written) = &mut written {
                        written(payload);
                    }
                    left -= 1;
                }
                Some(Entry::Run {
                    log,
                    start,
                    end,
                    counted,
                }) => {
                    let n = ((*end - *start) as usize).min(left);
                    let log: &RoundLog = logs.get(*log);
                    let gone = log.payloads(*start..*start + n as u32);
                    left -= n;
                    if let Some(written) = &mut written {
                        gone.iter().cloned().for_each(&mut *written);
                    }
                    if *start + n as u32 == *end {
                        freed += *counted;
                        self.entries.pop_front();
                        self.runs -= 1;
                    } else {
                        let cost = log.cost_before(*start + n as u32) - log.cost_before(*start);
                        *start += n as u32;
                        *counted -= cost;
                        freed += cost;
                    }
                }
            }
        }
        self.frames -= whole - left;
        self.counted -= freed;
        self.head_written = if self.entries.is_empty() { 0 } else { head_written };
        if self.entries.is_empty() && self.entries.capacity() > IDLE_SLOTS {
            // A burst is over: an idle client should cost what an idle
            // client costs.
            self.entries = VecDeque::new();
        }
        freed
    }

    /// Moves the payloads from position `at` on into a queue of their own,
    /// none of them started (a partly written one is to be sent again,
    /// whole, elsewhere). This queue keeps the ones before `at`, and its
    /// first payload if it was partly written, so that the stream it was
    /// going to still ends on a frame boundary. Returns the new queue and
    /// the bytes (as counted) that left this one. Only for a resumable
    /// session's queue, which never holds runs.
    pub(super) fn split_off(&mut self, at: usize) -> (OutQueue, usize) {
        debug_assert_eq!(self.runs, 0, "a resumable session's queue holds no runs");
        let at = at.min(self.entries.len());
        let rest = self.entries.split_off(at);
        if at == 0 && self.head_written > 0 {
            if let Some(Entry::One(head)) = rest.front() {
                self.entries.push_back(Entry::One(head.clone()));
            }
        }
        let mut moved = OutQueue::default();
        for entry in rest {
            if let Entry::One(payload) = entry {
                moved.push(payload);
            }
        }
        let before = self.counted;
        self.recount();
        if self.entries.is_empty() {
            self.head_written = 0;
        }
        (moved, before - self.counted)
    }

    /// Counts the queue again from its entries (after a split).
    fn recount(&mut self) {
        self.counted = 0;
        self.frames = 0;
        self.runs = 0;
        for entry in &self.entries {
            match entry {
                Entry::One(p) => {
                    self.counted += Self::cost(p);
                    self.frames += 1;
                }
                Entry::Run {
                    start, end, counted, ..
                } => {
                    self.counted += counted;
                    self.frames += (end - start) as usize;
                    self.runs += 1;
                }
            }
        }
    }

    /// Empties the queue; returns the bytes (as counted) it held.
    pub(super) fn clear(&mut self) -> usize {
        self.entries.clear();
        self.head_written = 0;
        self.frames = 0;
        self.runs = 0;
        std::mem::take(&mut self.counted)
    }

    /// The payloads, oldest first, for a queue that is being dissolved
    /// (a resumable session's: it never holds runs).
    pub(super) fn into_payloads(self) -> impl Iterator<Item = Payload> {
        debug_assert_eq!(self.runs, 0, "a resumable session's queue holds no runs");
        self.entries.into_iter().filter_map(|e| match e {
            Entry::One(p) => Some(p),
            Entry::Run { .. } => None,
        })
    }

    /// Drops every payload not yet started, keeping a partly written head
    /// so the byte stream stays well framed. Returns the bytes (as counted)
    /// dropped.
    pub(super) fn drop_unstarted(&mut self, logs: &RoundLogs) -> usize {
        let keep = usize::from(self.head_written > 0).min(self.entries.len());
        self.entries.truncate(keep);
        if let Some(Entry::Run {
            log,
            start,
            end,
            counted,
        }) = self.entries.front_mut()
        {
            // Only the frame it is in the middle of.
            *end = *start + 1;
            *counted = Self::cost(&logs.get(*log).payloads(*start..*end)[0]);
        }
        let before = self.counted;
        self.recount();
        before - self.counted
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
        let log = RoundLogs::default();
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        assert_eq!(q.counted_bytes(), 6 + 2 * FRAME_OVERHEAD);
        assert_eq!(q.advance(&log, 0, 3), 0);
        assert_eq!(q.head_written(), 3);
        assert_eq!(q.advance(&log, 1, 1), 4 + FRAME_OVERHEAD);
        assert_eq!(
            Output::new(&q, &log).payloads().next().map(|p| &p[..]),
            Some(&b"ef"[..])
        );
        assert_eq!(q.head_written(), 1);
        assert_eq!(q.advance(&log, 1, 0), 2 + FRAME_OVERHEAD);
        assert!(q.is_empty());
        assert_eq!(q.counted_bytes(), 0);
    }

    #[test]
    fn split_off_keeps_a_partly_written_head_on_both_sides() {
        let log = RoundLogs::default();
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        q.push(payload(b"g"));
        q.advance(&log, 0, 2);
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
        let log = RoundLogs::default();
        let mut q = OutQueue::default();
        q.push(payload(b"abcd"));
        q.push(payload(b"ef"));
        q.advance(&log, 0, 1);
        assert_eq!(q.drop_unstarted(&log), 2 + FRAME_OVERHEAD);
        assert_eq!(q.len(), 1);
        let mut q2 = OutQueue::default();
        q2.push(payload(b"abcd"));
        assert_eq!(q2.drop_unstarted(&log), 4 + FRAME_OVERHEAD);
        assert!(q2.is_empty());
    }

    /// A queue with payload `a`, then `b`, `c`, `d` fanned out through the
    /// log, then `e`: three entries, five frames.
    fn with_a_run() -> (OutQueue, RoundLogs) {
        let mut logs = RoundLogs::default();
        let mut q = OutQueue::default();
        q.push(payload(b"a"));
        for p in [&b"bb"[..], b"ccc", b"dddd"] {
            let p = payload(p);
            let i = logs.get_mut(Audience::Listed).append(&p);
            q.push_logged(Audience::Listed, i, i + 1, OutQueue::cost(&p));
        }
        q.push(payload(b"e"));
        (q, logs)
    }

    fn texts(q: &OutQueue, log: &RoundLogs) -> Vec<Vec<u8>> {
        Output::new(q, log).payloads().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn consecutive_logged_payloads_are_one_run_counted_frame_by_frame() {
        let (q, log) = with_a_run();
        let out = Output::new(&q, &log);
        assert_eq!((out.entries(), out.len()), (3, 5));
        assert_eq!(q.counted_bytes(), 1 + 2 + 3 + 4 + 1 + 5 * FRAME_OVERHEAD);
        assert!(q.has_runs());
        let chunks: Vec<_> = out.chunks(LogFraming::LengthPrefix).collect();
        assert!(
            matches!(chunks[1], Chunk::Run(ps, framed) if ps.len() == 3 && framed == b"\0\0\0\x02bb\0\0\0\x03ccc\0\0\0\x04dddd")
        );
        assert_eq!(texts(&q, &log), [&b"a"[..], b"bb", b"ccc", b"dddd", b"e"]);
        // A payload logged after another queue's entry starts a new run.
        let mut log2 = RoundLogs::default();
        let mut q2 = OutQueue::default();
        let x = payload(b"x");
        let cost = OutQueue::cost(&x);
        let i = log2.get_mut(Audience::Listed).append(&x);
        q2.push_logged(Audience::Listed, i, i + 1, cost);
        log2.get_mut(Audience::Listed).append(&x);
        let i = log2.get_mut(Audience::Listed).append(&x);
        q2.push_logged(Audience::Listed, i, i + 1, cost);
        assert_eq!((Output::new(&q2, &log2).entries(), q2.len()), (2, 2));
        // Runs of the other log never merge with this one's.
        let j = log2.get_mut(Audience::Everyone).append(&x);
        q2.push_logged(Audience::Everyone, j, j + 1, cost);
        assert_eq!((Output::new(&q2, &log2).entries(), q2.len()), (3, 3));
    }

    #[test]
    fn advancing_into_a_run_splits_it_where_the_transport_stopped() {
        let (mut q, log) = with_a_run();
        let mut seen = Vec::new();
        // `a` and `bb` whole, 3 bytes into `ccc`'s frame.
        let freed = q.advance_with(&log, 2, 3, Some(|p: Payload| seen.push(p.to_vec())));
        assert_eq!(freed, 1 + 2 + 2 * FRAME_OVERHEAD);
        assert_eq!(seen, [&b"a"[..], b"bb"]);
        assert_eq!(q.head_written(), 3);
        assert_eq!(q.len(), 3);
        assert_eq!(texts(&q, &log), [&b"ccc"[..], b"dddd", b"e"]);
        assert_eq!(q.counted_bytes(), 3 + 4 + 1 + 3 * FRAME_OVERHEAD);
        assert_eq!(q.advance(&log, 2, 0), 3 + 4 + 2 * FRAME_OVERHEAD);
        assert!(!q.has_runs());
        assert_eq!(q.advance(&log, 1, 0), 1 + FRAME_OVERHEAD);
        assert!(q.is_empty());
        assert_eq!((q.len(), q.counted_bytes()), (0, 0));
    }

    #[test]
    fn detached_runs_are_entries_of_their_own_in_the_same_order() {
        let (mut q, log) = with_a_run();
        let counted = q.counted_bytes();
        q.detach(&log);
        assert!(!q.has_runs());
        let empty = RoundLogs::default();
        assert_eq!(Output::new(&q, &empty).entries(), 5);
        assert_eq!(texts(&q, &empty), [&b"a"[..], b"bb", b"ccc", b"dddd", b"e"]);
        assert_eq!(q.counted_bytes(), counted);
    }

    #[test]
    fn dropping_the_unstarted_keeps_only_the_frame_a_run_is_in_the_middle_of() {
        let (mut q, log) = with_a_run();
        q.advance(&log, 1, 2);
        let dropped = q.drop_unstarted(&log);
        assert_eq!(dropped, 3 + 4 + 1 + 3 * FRAME_OVERHEAD);
        assert_eq!(texts(&q, &log), [&b"bb"[..]]);
        assert_eq!(
            (q.len(), q.counted_bytes(), q.head_written()),
            (1, 2 + FRAME_OVERHEAD, 2)
        );
    }
}
