//! What a [`Backplane`](super::backplane::Backplane) tells the core: the
//! outcomes of its claims, joins and renames, deliveries from other nodes,
//! presence of remote users, node lifecycle, and whether the cluster is up;
//! and its counters.

use super::link_event::LinkStats;
use crate::message::Payload;

/// One of a node's two Redis connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// Scripts and `PUBLISH`, pipelined.
    Commands,
    /// `SUBSCRIBE`, and the messages pushed to it.
    Subscriber,
}

impl Which {
    /// Both, commands first.
    pub const BOTH: [Which; 2] = [Which::Commands, Which::Subscriber];
}

/// Names one `claim`, `join` or `rename` of the core's; its outcome event
/// carries it. Increasing, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// How a `claim` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The nick is this node's in the whole cluster: register the client.
    Claimed,
    /// Another node holds it (compared case-insensitively): `nick_taken`.
    Taken {
        /// The node that holds it.
        node: String,
    },
    /// The cluster is down, or the answer was lost: `unavailable`.
    Unavailable,
}

/// How a `join` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// A member in the whole cluster.
    Joined {
        /// The room as the cluster spells it (its creator's spelling):
        /// what `joined` and presence should say.
        room: String,
        /// False if it already was a member (nothing was published).
        new_member: bool,
    },
    /// The room has `max_members` members cluster-wide: `room_full`.
    Full,
    /// The cluster is down, or the answer was lost: `unavailable`.
    Unavailable,
}

/// How a `rename` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameOutcome {
    /// The new nick is this node's; the old one is free.
    Renamed,
    /// Another node holds the new nick: `nick_taken`.
    Taken {
        /// The node that holds it.
        node: String,
    },
    /// The cluster is down, or the answer was lost: `unavailable`.
    Unavailable,
}

/// A change about a user of another node, to tell the local clients that
/// would see it on one server. Nicks and rooms are as spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// `presence online` to every registered client.
    Online {
        /// The nick.
        nick: String,
    },
    /// `presence offline` with the reason, to every registered client
    /// (after a `Parted` for each of its rooms with local members).
    Offline {
        /// The nick.
        nick: String,
        /// `quit`, `disconnect`, `timeout`, `shutdown`, ...
        reason: String,
    },
    /// `presence renamed` (`old`) to every registered client.
    Renamed {
        /// The nick before.
        old: String,
        /// The nick after.
        new: String,
    },
    /// `presence joined` to the local members of the room.
    Joined {
        /// The member.
        nick: String,
        /// The room.
        room: String,
    },
    /// `presence parted` to the local members of the room.
    Parted {
        /// The member.
        nick: String,
        /// The room.
        room: String,
    },
}

/// What a backplane tells the core, in order. Deliveries and presence come
/// in the order Redis published them, so each sender's order holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackplaneEvent {
    /// A `claim` ended.
    Claim {
        /// The claim's ticket.
        ticket: Ticket,
        /// The nick claimed.
        nick: String,
        /// How.
        outcome: ClaimOutcome,
    },
    /// A `join` ended.
    Join {
        /// The join's ticket.
        ticket: Ticket,
        /// The member.
        nick: String,
        /// The room as the core asked for it.
        room: String,
        /// How.
        outcome: JoinOutcome,
    },
    /// A `rename` ended.
    Rename {
        /// The rename's ticket.
        ticket: Ticket,
        /// The nick before.
        old: String,
        /// The nick asked for.
        new: String,
        /// How.
        outcome: RenameOutcome,
    },
    /// A `msg` from another node for a local user: queue `payload` to it.
    Deliver {
        /// The sender (on another node).
        from: String,
        /// The local recipient, as spelled here.
        to: String,
        /// The frame, as the sender's node encoded it.
        payload: Payload,
    },
    /// An `all` from another node: queue `payload` to every local
    /// registered client (shared: encoded once for all of them).
    Broadcast {
        /// The sender (on another node).
        from: String,
        /// The frame.
        payload: Payload,
    },
    /// A `room` message from another node: queue `payload` to every local
    /// member of the room.
    Room {
        /// The room, as spelled here.
        room: String,
        /// The sender (on another node).
        from: String,
        /// The frame.
        payload: Payload,
    },
    /// A remote user's presence changed.
    Presence(Presence),
    /// A local user's nick turned out to be held by another node (after
    /// Redis lost its state and another node claimed the nick first): the
    /// backplane has forgotten it; the core drops the client (telling it
    /// why) and tells the other local clients it went offline; a
    /// `Presence::Online` for the winner follows.
    Evicted {
        /// The local user's nick.
        nick: String,
        /// The node that holds it now.
        holder: String,
    },
    /// Another node registered (started, or came back after being reaped).
    NodeUp {
        /// The node.
        node: String,
    },
    /// Another node is gone (reaped after `node_timeout` of silence, or
    /// left). Its users' `Presence::Offline` came before, one each: this is
    /// for the host and the logs, not for the clients.
    NodeDown {
        /// The node.
        node: String,
        /// Why: `disconnect` (reaped) or its own reason (`shutdown`).
        reason: String,
        /// Its nicks freed just before.
        nicks: Vec<String>,
    },
    /// The cluster is usable: both links ready, the directory current, this
    /// node registered. `hello` and `join` work again.
    Up,
    /// The cluster is not usable: `hello`, `join` and `nick` get
    /// `unavailable`; local chat goes on.
    Down,
}

/// Why a relay to other nodes was not handed to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No such nick in the cluster's directory.
    #[error("no such user in the cluster")]
    NoSuchUser,
    /// The nick is this node's: deliver it locally.
    #[error("the nick is on this node")]
    Local,
    /// The command link's output is full (Redis slow or away): dropped.
    #[error("the Redis link's output is full")]
    Full,
}

/// Where a nick is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<'a> {
    /// The nick as spelled by its holder.
    pub nick: &'a str,
    /// The node that holds it.
    pub node: &'a str,
    /// Whether that is this node.
    pub local: bool,
}

/// A backplane's state and counters, for `chat_server_stats` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackplaneStats {
    /// This node's id.
    pub node: String,
    /// Whether the cluster is usable ([`BackplaneEvent::Up`]).
    pub up: bool,
    /// The command link.
    pub commands: LinkStats,
    /// The subscriber link.
    pub subscriber: LinkStats,
    /// Nodes registered in the directory (this one included).
    pub nodes: usize,
    /// Nicks in the cluster.
    pub users: usize,
    /// Nicks held by this node.
    pub local_users: usize,
    /// Reconnects of both links.
    pub reconnects: u64,
    /// Frames published for other nodes (msg, all, room).
    pub relayed_out: u64,
    /// Frames from other nodes handed to the core.
    pub relayed_in: u64,
    /// Relays refused because the command link's output was full.
    pub relay_refused: u64,
    /// Relays that never reached Redis (expired while it was away, or lost
    /// with a connection).
    pub relay_failed: u64,
    /// Relays from other nodes dropped: for nobody here, malformed, or past
    /// the bound of what is held while the directory is read.
    pub relay_dropped: u64,
    /// Directory snapshots read (each (re)connect, and each gap).
    pub resyncs: u64,
    /// Gaps found in the directory's event stream.
    pub gaps: u64,
    /// Times this node re-announced its users and rooms.
    pub reannounces: u64,
    /// Local users evicted because another node held their nick.
    pub evictions: u64,
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Other nodes this node reaped.
    pub reaped: u64,
}
