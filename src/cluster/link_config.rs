//! What a [`Link`](super::link::Link) is told when it is made.

use std::time::Duration;

use super::scripts::Script;
use super::url::RedisUrl;
use crate::codec::resp::Limits;

/// What a connection is for. A node has one of each: replies to commands
/// never wait behind a subscriber's backlog, and one subscribed socket
/// keeps every sender's order across channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Pipelined commands, replies matched in order.
    Commands,
    /// `SUBSCRIBE`/`PSUBSCRIBE` only; pushes messages.
    Subscriber,
}

/// How a subscriber proves its subscriptions work after each (re)connect:
/// the caller publishes `prefix NONCE` on `channel` (from the command
/// link) and the subscriber must see it come back within the reply
/// timeout. Payloads on `channel` starting with `prefix` and a space are
/// the link's own and never reach the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// A channel the subscriber is subscribed to (added if it is not).
    pub channel: Vec<u8>,
    /// What the probe payload starts with.
    pub prefix: Vec<u8>,
}

/// How a link connects, times out, backs off and bounds what it holds.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Where Redis is, and the AUTH and SELECT to send.
    pub url: RedisUrl,
    /// Commands or subscriber.
    pub role: Role,
    /// Sent as `CLIENT SETNAME` (no spaces; empty: not sent), so
    /// `CLIENT LIST` shows which node a connection is.
    pub client_name: String,
    /// Scripts loaded (`SCRIPT LOAD`) on every connection of a command
    /// link, so `EVALSHA` works from the first command.
    pub scripts: Vec<&'static Script>,
    /// From `connecting` until the TCP connection is up.
    pub connect_timeout: Duration,
    /// Every reply is due this long after its command was queued (or the
    /// connection came up, if later). A late reply means the link is dead:
    /// a stopped Redis accepts connections and never answers.
    pub reply_timeout: Duration,
    /// A `PING` after this long without a byte from Redis, so a silent
    /// link is found dead within `ping_interval + reply_timeout`.
    pub ping_interval: Duration,
    /// The first reconnect delay; doubled on each failure, with jitter.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
    /// The most bytes of the caller's commands waiting to be written;
    /// a command past it is refused ([`SendError::Full`](super::link_event::SendError::Full)).
    pub max_pending_bytes: usize,
    /// The longest a command may wait while Redis is unreachable; older
    /// ones fail as [`Failure::Expired`](super::link_event::Failure::Expired).
    pub max_pending_age: Duration,
    /// Bounds on each reply.
    pub limits: Limits,
    /// The subscriber's probe, if any.
    pub probe: Option<Probe>,
    /// Seeds the backoff jitter (give each node its own, such as its pid
    /// and the time).
    pub seed: u64,
}

impl LinkConfig {
    /// A link to `url` with defaults that find a dead Redis within a few
    /// seconds (reply timeout 3 s, ping after 1 s idle), reconnect from
    /// 50 ms to 2 s apart, and hold at most 8 MiB for 5 s while Redis is
    /// away.
    pub fn new(url: RedisUrl, role: Role, client_name: impl Into<String>) -> LinkConfig {
        LinkConfig {
            url,
            role,
            client_name: client_name.into(),
            scripts: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            reply_timeout: Duration::from_secs(3),
            ping_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            max_pending_bytes: 8 << 20,
            max_pending_age: Duration::from_secs(5),
            limits: Limits::default(),
            probe: None,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}
