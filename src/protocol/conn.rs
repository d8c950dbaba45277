//! One client's session state, without its socket or its framing: its
//! output queue, nick, rooms, phase and timers. Only the protocol core
//! reads or changes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::history::Session;
use super::queue::OutQueue;
use super::ratelimit::Limiter;
use crate::event::{Reason, Via};

/// Where a connection is in its life. Its tag comes first (`repr(u8)`), so
/// that checking which phase a connection is in reads the cache line of
/// [`Conn`]'s other per-round fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Connected, no successful `hello` yet.
    Handshake,
    /// Sent a valid `hello`; the host has not approved or rejected it yet.
    AwaitingApproval {
        /// The nick asked for (reserved meanwhile).
        nick: Arc<str>,
        /// When it is rejected if the host has not answered.
        deadline: Instant,
        /// Whether its `hello` asked for a resumable session.
        resumable: bool,
    },
    /// Registered with a nick.
    Registered,
    /// A resumable session whose connection ended (protocol 1.2): to
    /// everyone else it is still registered, frames for it go to its
    /// session's `held` queue, and it waits for a resume. Its connection's
    /// queue (`out`) only finishes a partly written frame and says the
    /// connection's farewell, as a closing one would.
    Parked {
        /// Why the connection ended; the session ends with it if it is not
        /// resumed in time.
        reason: Reason,
        /// The end of the resume window.
        until: Instant,
        /// When to give up flushing the connection; `None` once the server
        /// closed it (then only the session is left).
        linger: Option<Instant>,
    },
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
///
/// The fields every round reads for every client (the queue, the cursor,
/// the phase's tag and the few flags the write and the interest check
/// look at) come first and in this order (`repr(C)`), so that they share
/// the first two cache lines of the client's entry: with a thousand
/// clients the kernel's own per-socket work evicts them between one
/// client's turns, and each line more is one more miss per client and
/// round.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Conn {
    /// What waits to be written to it.
    pub out: OutQueue,
    /// Set while it follows the round's log for everyone (a registered
    /// plain client): the first payload of that log its queue has not
    /// taken yet, counting every payload ever logged. See `Delivery`.
    pub everyone_from: Option<u64>,
    /// A resumable session's state (protocol 1.2); `None` for the plain
    /// ones, which pay nothing for it.
    pub session: Option<Box<Session>>,
    /// Bytes its transport holds on the way to the socket (TLS records),
    /// counted against its cap with the queue.
    pub transport_held: usize,
    /// Flood control, when configured.
    pub limiter: Option<Box<Limiter>>,
    /// A payload did not fit under its cap: it is about to be dropped as a
    /// slow consumer and takes no more payloads meanwhile, so what it got
    /// is a gap-free prefix of what was sent to it.
    pub over_cap: bool,
    /// Whether the idle probe was sent since it was last heard.
    pub pinged: bool,
    /// Where it is in its life.
    pub phase: Phase,
    /// When it last sent anything.
    pub last_heard: Instant,
    /// Its address.
    pub peer: SocketAddr,
    /// How it is connected.
    pub via: Via,
    /// Its nick as registered (original case), once registered.
    pub nick: Option<Arc<str>>,
    /// When it connected.
    pub connected_at: Instant,
    /// The host's value for it, carried in its events.
    pub user_data: u64,
}

impl Conn {
    /// A connection that just arrived.
    pub fn new(peer: SocketAddr, via: Via, limiter: Option<Limiter>, now: Instant) -> Self {
        Conn {
            peer,
            via,
            nick: None,
            out: OutQueue::default(),
            phase: Phase::Handshake,
            connected_at: now,
            last_heard: now,
            pinged: false,
            limiter: limiter.map(Box::new),
            user_data: 0,
            over_cap: false,
            transport_held: 0,
            session: None,
            everyone_from: None,
        }
    }

    /// What counts against its `max_queue_bytes`: its queue's unwritten
    /// bytes and what its transport holds on the way to the socket.
    pub fn held_bytes(&self) -> usize {
        self.out.counted_bytes() + self.transport_held
    }

    /// Whether its connection is closing or gone (no more reading from it,
    /// and frames for it do not go to `out`): closing, or parked.
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. } | Phase::Parked { .. })
    }

    /// Whether it is a parked session.
    pub fn is_parked(&self) -> bool {
        matches!(self.phase, Phase::Parked { .. })
    }

    /// The nick its events carry: the registered one, or the one it waits
    /// to be approved for.
    pub fn event_nick(&self) -> Option<Arc<str>> {
        match &self.phase {
            Phase::AwaitingApproval { nick, .. } => Some(nick.clone()),
            _ => self.nick.clone(),
        }
    }

    /// When its rate limit lets it be read again; `None` if it is not
    /// throttled.
    pub fn throttled_until(&self, now: Instant) -> Option<Instant> {
        self.limiter.as_ref().and_then(|l| l.blocked_until(now))
    }
}
#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;

    #[test]
    fn what_every_round_reads_fits_in_two_cache_lines_with_the_key() {
        // The id (8 bytes) comes before the connection in its map entry.
        let hot_end = [
            offset_of!(Conn, out) + std::mem::size_of::<OutQueue>(),
            offset_of!(Conn, everyone_from) + 16,
            offset_of!(Conn, session) + 8,
            offset_of!(Conn, transport_held) + 8,
            offset_of!(Conn, limiter) + 8,
            offset_of!(Conn, over_cap) + 1,
            offset_of!(Conn, phase) + 1,
        ];
        assert!(hot_end.iter().all(|&end| 8 + end <= 128), "{hot_end:?}");
    }
}
