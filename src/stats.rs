//! Counters a host can read at any time.

use crate::cluster::BackplaneStats;
use crate::event::Reason;

/// A snapshot of the server's counters, from
/// [`Server::stats`](crate::Server::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now (registered or not, closing ones included).
    pub clients: u64,
    /// Clients registered with a nick now.
    pub registered: u64,
    /// Connections accepted since the server started.
    pub accepted: u64,
    /// Connections refused with `server_full` (or dropped at accept).
    pub refused: u64,
    /// Connections closed before they were clients: a TLS handshake that
    /// failed (plaintext, garbage, a reset) or timed out, a WebSocket
    /// upgrade that timed out.
    pub failed_handshakes: u64,
    /// Frames received from clients.
    pub frames_in: u64,
    /// Frames completely written to clients.
    pub frames_out: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Bytes waiting in output queues now.
    pub queued_bytes: u64,
    /// The most bytes ever waiting in output queues at once.
    pub peak_queued_bytes: u64,
    /// Disconnects counted by reason, indexed by [`Reason::index`]. A
    /// resumable session counts once, when it ends for good (not when it
    /// parks).
    pub disconnects: [u64; Reason::ALL.len()],
    /// Resumable sessions parked now, waiting for a resume.
    pub parked: u64,
    /// Successful resumes since the server started.
    pub resumed: u64,
    /// Resumes answered `resume_failed` since the server started.
    pub resume_failed: u64,
    /// Bytes (as the queue cap counts them) that resumable sessions hold
    /// now for a resume: written frames kept for replay and frames queued
    /// while parked, by reference (a broadcast shared with other queues
    /// counts here too).
    pub retained_bytes: u64,
    /// Connections the server has closed (its goodbye and FIN sent) whose
    /// peer has not closed yet, drained of what it still sends for up to
    /// two seconds. They still hold a descriptor and count toward
    /// `max_clients` and `max_per_ip` (the oldest is reaped first to make
    /// room for a new connection).
    pub draining: u64,
    /// Bytes read and discarded from draining connections since the server
    /// started (at most `read_budget` per connection per round).
    pub drained_bytes: u64,
    /// Whether this server is a node of a cluster, and whether the cluster
    /// is usable now.
    pub cluster: ClusterState,
    /// Nodes of the cluster registered now (this one included); 0 without
    /// a cluster.
    pub cluster_nodes: u64,
    /// Nicks in the whole cluster now.
    pub cluster_users: u64,
    /// Frames (`msg`, `all`, `room`) published for users of other nodes.
    pub relayed_out: u64,
    /// Frames from other nodes handed to local clients' queues.
    pub relayed_in: u64,
    /// Relays not delivered: refused (the Redis link's output full), lost
    /// or expired while Redis was away, or dropped on arrival.
    pub relay_failed: u64,
    /// Reconnects of the two Redis connections since the server started.
    pub cluster_reconnects: u64,
}

/// A server's place in a cluster, as [`Stats::cluster`] says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterState {
    /// Not a node of a cluster (no `redis_url`).
    #[default]
    Off,
    /// A node whose cluster is unusable now (Redis unreachable, or the
    /// node resyncing): local chat goes on; `hello`, `join` and `nick` get
    /// `unavailable`.
    Down,
    /// A node of a usable cluster.
    Up,
}

impl ClusterState {
    /// 0 off, 1 down, 2 up (the C ABI's `cluster_state`).
    pub fn as_u64(self) -> u64 {
        match self {
            ClusterState::Off => 0,
            ClusterState::Down => 1,
            ClusterState::Up => 2,
        }
    }

    /// `off`, `down` or `up`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Off => "off",
            ClusterState::Down => "down",
            ClusterState::Up => "up",
        }
    }
}

impl Stats {
    /// Disconnects for one reason.
    pub fn disconnects_for(&self, reason: Reason) -> u64 {
        self.disconnects[reason.index()]
    }

    /// These counters with a backplane's.
    pub fn with_cluster(self, bp: &BackplaneStats) -> Stats {
        Stats {
            cluster: if bp.up {
                ClusterState::Up
            } else {
                ClusterState::Down
            },
            cluster_nodes: bp.nodes as u64,
            cluster_users: bp.users as u64,
            relayed_out: bp.relayed_out,
            relayed_in: bp.relayed_in,
            relay_failed: bp.relay_refused + bp.relay_failed + bp.relay_dropped,
            cluster_reconnects: bp.reconnects,
            ..self
        }
    }
}
