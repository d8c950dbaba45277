//! What a [`Link`](super::link::Link) tells its caller: events, failures
//! and its state for stats.

use std::time::Instant;

use crate::codec::resp::{DecodeError, Reply};

/// Names one command of the caller's; its reply or failure carries it.
/// Increasing, never reused by a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

/// A message pushed to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubMessage {
    /// The channel it was published on.
    pub channel: Vec<u8>,
    /// The pattern that matched, for a `PSUBSCRIBE`.
    pub pattern: Option<Vec<u8>>,
    /// What was published.
    pub payload: Vec<u8>,
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The caller said the socket closed or failed.
    Closed,
    /// The TCP connection did not come up in time.
    ConnectTimeout,
    /// A reply did not come in time (Redis stopped, or a black hole).
    ReplyTimeout,
    /// The subscriber's probe did not come back in time.
    ProbeTimeout,
    /// The reply stream could not be decoded.
    Protocol(DecodeError),
    /// A reply that matches nothing asked for.
    Unexpected(&'static str),
    /// Redis refused a step of the handshake (AUTH, SELECT, SETNAME, SCRIPT
    /// LOAD, SUBSCRIBE): its error text.
    Refused(String),
}

/// Why a command of the caller's has no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It was (maybe partly) written when the link went down: Redis may or
    /// may not have run it.
    Lost,
    /// It waited longer than `max_pending_age` for Redis to come back; it
    /// was never written.
    Expired,
    /// The caller cancelled it (`cancel_pending`); it was never written.
    Cancelled,
}

/// Why a command was refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Queuing it would pass `max_pending_bytes` (Redis is slow or away).
    #[error("the Redis link's output is full ({waiting} bytes wait, {needed} more would pass {limit})")]
    Full {
        /// Bytes already waiting.
        waiting: usize,
        /// The command's size.
        needed: usize,
        /// `max_pending_bytes`.
        limit: usize,
    },
    /// Commands on a subscriber link, or (un)subscribing on a command link.
    #[error("not a command for this link's role")]
    WrongRole,
    /// `send_eval` with a script not in the link's config.
    #[error("script not registered with the link")]
    UnknownScript,
}

/// What a link tells its caller, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The handshake is answered (and, for a subscriber, every
    /// subscription confirmed and the probe seen): after every (re)connect.
    /// Redis may have restarted empty meanwhile: re-announce and resync.
    Ready,
    /// The reply to a command.
    Reply {
        /// The command's token.
        token: Token,
        /// What Redis answered (an error reply is a `Reply::Error`).
        reply: Reply,
    },
    /// A command that will have no reply.
    Failed {
        /// The command's token.
        token: Token,
        /// Why.
        why: Failure,
    },
    /// A message pushed to a subscriber.
    Message(PubMessage),
    /// Redis confirmed a `SUBSCRIBE` asked for while connected (the
    /// subscriptions of a handshake are confirmed by [`Ready`](Self::Ready)):
    /// from now on every message published on the channel reaches this
    /// link.
    Subscribed(Vec<u8>),
    /// The link is down: close its socket if still open; connect again
    /// when [`connect_due`](super::link::Link::connect_due) says so.
    Down(DownReason),
}

/// Where a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No connection; waiting to reconnect.
    Down,
    /// A TCP connect in progress.
    Connecting,
    /// Connected; AUTH, SELECT, SETNAME, scripts, subscriptions, probe in
    /// progress. The caller's commands are already pipelined after them.
    Handshaking,
    /// Everything answered.
    Ready,
}

/// A link's state and counters, for stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    /// Where it is.
    pub phase: Phase,
    /// Since when.
    pub since: Instant,
    /// When it last went down, while it has not been ready since.
    pub down_since: Option<Instant>,
    /// Why it last went down.
    pub last_down: Option<DownReason>,
    /// TCP connects started.
    pub connects: u64,
    /// Connects after the first.
    pub reconnects: u64,
    /// Times the link became ready.
    pub readies: u64,
    /// Commands of the caller's queued.
    pub commands: u64,
    /// Replies handed to the caller.
    pub replies: u64,
    /// Messages handed to the caller.
    pub messages: u64,
    /// Commands refused because the output was full.
    pub refused: u64,
    /// Their bytes.
    pub refused_bytes: u64,
    /// Commands failed as `Expired`.
    pub expired: u64,
    /// Commands failed as `Lost`.
    pub lost: u64,
    /// `EVALSHA`s answered `NOSCRIPT` and sent again as `EVAL`.
    pub noscript: u64,
    /// Bytes of the caller's commands waiting to be written.
    pub pending_bytes: usize,
    /// The caller's commands waiting to be written.
    pub pending_commands: usize,
    /// Commands written and not answered.
    pub in_flight: usize,
    /// Bytes read from Redis.
    pub bytes_in: u64,
    /// Bytes written to Redis.
    pub bytes_out: u64,
}

impl LinkStats {
    /// A link made at `now`, down and never connected.
    pub(crate) fn new(now: Instant) -> LinkStats {
        LinkStats {
            phase: Phase::Down,
            since: now,
            down_since: Some(now),
            last_down: None,
            connects: 0,
            reconnects: 0,
            readies: 0,
            commands: 0,
            replies: 0,
            messages: 0,
            refused: 0,
            refused_bytes: 0,
            expired: 0,
            lost: 0,
            noscript: 0,
            pending_bytes: 0,
            pending_commands: 0,
            in_flight: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}
