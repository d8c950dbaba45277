//! Input: what a transport decoded from a connection, handed to the core
//! one payload at a time while the client may send more (its rate limit,
//! its state); the rest waits in the transport, and TCP pushes back.

use std::time::Instant;

use super::Core;
use crate::code::Code;
use crate::event::{ClientId, Reason};

/// A connection broke its transport's framing: what to tell it before it
/// is dropped as `protocol_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The error frame to send first, if the transport can still carry one
    /// (a length-prefix stream can; a WebSocket says it with its close
    /// code instead).
    pub farewell: Option<(Code, String)>,
}

/// What a transport's decoder has next for the core.
#[derive(Debug)]
pub enum Next<'a> {
    /// A complete payload.
    Payload(&'a [u8]),
    /// Something the transport handled itself (a WebSocket ping): ask
    /// again.
    Handled,
    /// More bytes are needed (or the peer closed the stream cleanly).
    Done,
    /// The stream broke its framing; no payload comes after this.
    Violation(Violation),
}

/// Complete payloads a transport decoded, taken one at a time.
pub trait PayloadSource {
    /// What the decoder has next.
    fn next_payload(&mut self) -> Next<'_>;
}

impl Core {
    /// `n` bytes arrived from `id`, before decoding: it is alive, and they
    /// count against its byte rate.
    pub fn heard(&mut self, id: ClientId, n: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        conn.last_heard = now;
        conn.pinged = false;
        if let Some(limiter) = &mut conn.limiter {
            limiter.took_bytes(n, now);
        }
        self.stats.bytes_in += n as u64;
    }

    /// Handles payloads from `source` as long as `id` may send more: not
    /// closing, within its frame rate. What is left stays in `source` for
    /// a later call (see [`wants_input`](Self::wants_input)).
    pub fn take_input<S: PayloadSource + ?Sized>(&mut self, id: ClientId, source: &mut S, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.is_closing() || conn.over_cap || self.delivery.backlogged(conn) {
                break;
            }
            if !conn.limiter.as_mut().is_none_or(|l| l.frame_allowed(now)) {
                break;
            }
            // A resumable session over its cap keeps what is queued for it
            // until it parks at the end of this step: its own requests
            // (each `who` may answer kilobytes) must not grow that.
            if conn.over_cap && conn.session.is_some() {
                break;
            }
            match source.next_payload() {
                Next::Done => break,
                Next::Handled => {}
                Next::Payload(payload) => {
                    if let Some(limiter) = &mut conn.limiter {
                        limiter.took_frame(now);
                    }
                    self.stats.frames_in += 1;
                    self.dispatch(id, payload, now);
                }
                Next::Violation(violation) => {
                    let farewell = violation
                        .farewell
                        .as_ref()
                        .map(|(code, why)| (*code, Some(why.as_str())));
                    self.leave(id, Reason::ProtocolError, now, farewell);
                    break;
                }
            }
        }
        self.police(id, now);
        self.drop_doomed(now);
    }

    /// The transport of `id` failed in a way that leaves nothing to say
    /// (a TLS error: no frame can reach the client): it leaves as
    /// `protocol_error`.
    pub fn transport_failed(&mut self, id: ClientId, now: Instant) {
        self.leave(id, Reason::ProtocolError, now, None);
        self.drop_doomed(now);
    }

    /// The transport of `id` holds `bytes` of its own on the way to the
    /// socket (TLS records): the queue cap counts them.
    pub fn transport_holds(&mut self, id: ClientId, bytes: usize) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.transport_held = bytes;
            self.delivery.note_limit(conn);
        }
    }

    /// Whether the core takes payloads from `id` now: not closing, not
    /// held back by its rate limit, not so far behind in reading its own
    /// output that its input is paused.
    pub fn wants_input(&self, id: ClientId, now: Instant) -> bool {
        self.conns.get(&id).is_some_and(|c| {
            !c.is_closing() && !c.over_cap && !self.delivery.backlogged(c) && c.throttled_until(now).is_none()
        })
    }

    /// Most bytes worth reading from `id` now, by its byte rate.
    pub fn read_allowance(&self, id: ClientId, now: Instant) -> usize {
        self.conns
            .get(&id)
            .and_then(|c| c.limiter.as_ref())
            .map_or(usize::MAX, |l| l.read_allowance(now))
    }

    /// Tells a client newly over its rate limit, and drops one that has
    /// stayed over it past the grace period.
    fn police(&mut self, id: ClientId, now: Instant) {
        let grace = self.rate_limits.grace();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        let Some(limiter) = &mut conn.limiter else { return };
        let verdict = limiter.check(now, grace);
        if let Some(until) = limiter.blocked_until(now) {
            // Its input resumes then: a round must come.
            self.timers.wake_at(until);
        }
        use super::ratelimit::Verdict;
        match verdict {
            Verdict::Fine | Verdict::Throttled => {}
            Verdict::Warn => {
                let why = "over the rate limit: input paused until it recovers";
                self.reply_error(id, Code::RateLimited, Some(why));
            }
            Verdict::Drop => {
                let why = Some("over the rate limit for too long");
                self.leave(id, Reason::ProtocolError, now, Some((Code::ProtocolError, why)));
            }
        }
    }
}
