//! One client's state, without its socket: input reassembly, output queue,
//! nick and timers.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::event::Reason;
use crate::frame::{FrameDecoder, WireFrame};
use crate::ratelimit::Limiter;

/// Frames waiting for the socket to be writable, with how much of the first
/// one was already written.
#[derive(Debug, Default)]
pub struct OutQueue {
    frames: VecDeque<WireFrame>,
    /// Bytes of `frames[0]` already on the wire.
    head_written: usize,
    /// Bytes still to write, over all frames.
    queued: usize,
}

impl OutQueue {
    /// Bytes still to write.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Appends a frame (a shared reference: no copy of the bytes).
    pub fn push(&mut self, frame: WireFrame) {
        self.queued += frame.len();
        self.frames.push_back(frame);
    }

    /// Fills `out` with slices of the waiting bytes, in order, for one
    /// gathering write; returns how many it filled.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, frame) in self.frames.iter().take(out.len()).enumerate() {
            let skip = if i == 0 { self.head_written } else { 0 };
            out[i] = IoSlice::new(&frame[skip..]);
            n += 1;
        }
        n
    }

    /// Records that `written` bytes left; returns how many frames were
    /// completed.
    pub fn consume(&mut self, mut written: usize) -> usize {
        self.queued -= written;
        let mut done = 0;
        while written > 0 {
            let head_left = self.frames[0].len() - self.head_written;
            if written >= head_left {
                written -= head_left;
                self.frames.pop_front();
                self.head_written = 0;
                done += 1;
            } else {
                self.head_written += written;
                written = 0;
            }
        }
        done
    }

    /// Drops every frame not yet started, keeping a partly written head so
    /// the byte stream stays well framed. Returns the bytes dropped.
    pub fn drop_unstarted(&mut self) -> usize {
        let keep = usize::from(self.head_written > 0);
        let dropped: usize = self.frames.drain(keep..).map(|f| f.len()).sum();
        self.queued -= dropped;
        dropped
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connected, no successful `hello` yet.
    Handshake,
    /// Sent a valid `hello`; the host has not approved or rejected it yet.
    AwaitingApproval {
        /// The nick asked for (reserved meanwhile).
        nick: Arc<str>,
        /// When it is rejected if the host has not answered.
        deadline: Instant,
    },
    /// Registered with a nick.
    Registered,
    /// Gone as far as everyone else knows (its `Disconnected` event is out);
    /// the server only flushes what is queued, then closes the socket.
    Closing {
        /// Why it is closing.
        reason: Reason,
        /// When to give up flushing.
        deadline: Instant,
    },
}

/// One client.
#[derive(Debug)]
pub struct Conn {
    /// Its address.
    pub peer: SocketAddr,
    /// Its nick as registered (original case), once registered.
    pub nick: Option<Arc<str>>,
    /// Reassembly of its input.
    pub decoder: FrameDecoder,
    /// What waits to be written to it.
    pub out: OutQueue,
    /// Where it is in its life.
    pub phase: Phase,
    /// When it connected.
    pub connected_at: Instant,
    /// When it last sent anything.
    pub last_heard: Instant,
    /// Whether the idle probe was sent since it was last heard.
    pub pinged: bool,
    /// Flood control, when configured.
    pub limiter: Option<Limiter>,
    /// The rooms it is in, by case-folded name.
    pub rooms: Vec<String>,
    /// The host's value for it, carried in its events.
    pub user_data: u64,
}

impl Conn {
    /// A connection that just arrived.
    pub fn new(peer: SocketAddr, max_frame_bytes: usize, limiter: Option<Limiter>, now: Instant) -> Self {
        Conn {
            peer,
            nick: None,
            decoder: FrameDecoder::new(max_frame_bytes),
            out: OutQueue::default(),
            phase: Phase::Handshake,
            connected_at: now,
            last_heard: now,
            pinged: false,
            limiter,
            rooms: Vec::new(),
            user_data: 0,
        }
    }

    /// Whether it is closing (no more reading or routing to it).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Whether its socket should be read now: not closing, not throttled.
    pub fn wants_input(&self, now: Instant) -> bool {
        !self.is_closing() && self.throttled_until(now).is_none()
    }

    /// When its rate limit lets it be read again; `None` if it is not
    /// throttled.
    pub fn throttled_until(&self, now: Instant) -> Option<Instant> {
        self.limiter.as_ref().and_then(|l| l.blocked_until(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> WireFrame {
        Arc::from(bytes)
    }

    #[test]
    fn queue_tracks_partial_writes() {
        let mut q = OutQueue::default();
        q.push(frame(b"abcd"));
        q.push(frame(b"ef"));
        assert_eq!(q.queued_bytes(), 6);
        assert_eq!(q.consume(3), 0);
        let mut slices = [IoSlice::new(&[]); 4];
        let n = q.slices(&mut slices);
        assert_eq!(n, 2);
        assert_eq!(&*slices[0], b"d");
        assert_eq!(&*slices[1], b"ef");
        assert_eq!(q.consume(2), 1);
        assert_eq!(q.queued_bytes(), 1);
        assert_eq!(q.consume(1), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn drop_unstarted_keeps_a_partly_written_head() {
        let mut q = OutQueue::default();
        q.push(frame(b"abcd"));
        q.push(frame(b"ef"));
        q.consume(1);
        assert_eq!(q.drop_unstarted(), 2);
        assert_eq!(q.queued_bytes(), 3);
        let mut q2 = OutQueue::default();
        q2.push(frame(b"abcd"));
        assert_eq!(q2.drop_unstarted(), 4);
        assert!(q2.is_empty());
    }
}
