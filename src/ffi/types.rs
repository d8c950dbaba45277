//! The plain structs a C host reads (`ChatPollFd`, `ChatStats`) and their
//! conversions. `ChatStats` is written only as far as the host's
//! `struct_size` reaches, so a host built against an older, shorter struct
//! keeps working. (`ChatConfig` is in `config.rs`.)

use std::ffi::c_int;
use std::mem::{offset_of, size_of};
use std::ptr::NonNull;

use super::error::{ErrorCode, Failure};
use crate::{Reason, Stats, WatchFd};

/// `ChatPollFd.events` bit: watch the descriptor for reading (`POLLIN`).
pub const CHAT_POLL_READ: i16 = 1;
/// `ChatPollFd.events` bit: watch the descriptor for writing (`POLLOUT`).
pub const CHAT_POLL_WRITE: i16 = 2;

/// One descriptor a host with its own loop should watch (`chat_server_fds`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatPollFd {
    /// The descriptor.
    pub fd: c_int,
    /// `CHAT_POLL_READ`, `CHAT_POLL_WRITE`, or both.
    pub events: i16,
}

/// The server's counters (`chat_server_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Set by the host to `sizeof(ChatStats)`; the library writes only the
    /// fields this covers, and never this one. Must cover `clients`.
    pub struct_size: u32,
    /// Connections open now (registered or not, closing ones included).
    pub clients: u64,
    /// Clients registered with a nick now.
    pub registered: u64,
    /// Connections accepted since the server started.
    pub accepted: u64,
    /// Connections refused with `server_full`.
    pub refused: u64,
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
    /// Clients that left with reason `quit`.
    pub disconnects_quit: u64,
    /// Clients that left with reason `disconnect`.
    pub disconnects_disconnect: u64,
    /// Clients that left with reason `slow_consumer`.
    pub disconnects_slow_consumer: u64,
    /// Clients that left with reason `timeout`.
    pub disconnects_timeout: u64,
    /// Clients that left with reason `protocol_error`.
    pub disconnects_protocol_error: u64,
    /// Clients that left with reason `kicked`.
    pub disconnects_kicked: u64,
    /// Clients that left with reason `shutdown`.
    pub disconnects_shutdown: u64,
    /// Connections closed before they were clients (appended in 1.2): a
    /// TLS handshake that failed (plaintext, garbage, a reset) or timed
    /// out, a WebSocket upgrade that timed out.
    pub failed_handshakes: u64,
    /// Resumable sessions parked now, waiting for a resume (protocol 1.2).
    pub parked: u64,
    /// Successful resumes since the server started.
    pub resumed: u64,
    /// Resumes answered `resume_failed` since the server started.
    pub resume_failed: u64,
    /// Bytes resumable sessions hold now for a resume (written frames kept
    /// for replay, frames queued while parked), by reference.
    pub retained_bytes: u64,
    /// Connections the server closed whose peer has not closed yet,
    /// drained for up to two seconds; they count toward `max_clients` and
    /// `max_per_ip` (appended in 1.2).
    pub draining: u64,
    /// Bytes read and discarded from draining connections since the
    /// server started (at most `read_budget` per connection per round).
    pub drained_bytes: u64,
    /// The cluster (appended in 1.2): 0 not a node of one (no
    /// `redis_url`), 1 down (Redis unreachable: local chat goes on,
    /// `hello` and `join` get `unavailable`), 2 up.
    pub cluster_state: u64,
    /// Nodes of the cluster registered now, this one included.
    pub cluster_nodes: u64,
    /// Nicks in the whole cluster now.
    pub cluster_users: u64,
    /// Frames published for users of other nodes.
    pub cluster_relayed_out: u64,
    /// Frames from other nodes handed to local clients.
    pub cluster_relayed_in: u64,
    /// Relays refused (the Redis link full), lost or expired while Redis
    /// was away, or dropped on arrival.
    pub cluster_relay_failed: u64,
    /// Reconnects of the two Redis connections.
    pub cluster_reconnects: u64,
}

const STATS_MIN_SIZE: usize = offset_of!(ChatStats, clients) + size_of::<u64>();

/// Writes the fields of `stats` that the host's `struct_size` covers.
///
/// # Safety
/// `out` points to a writable struct of at least `out->struct_size` bytes
/// (and at least the `struct_size` field).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn write_stats(out: NonNull<ChatStats>, stats: &Stats) -> Result<(), Failure> {
    let out = out.as_ptr();
    // SAFETY: every version of the struct starts with struct_size.
    let size = unsafe { (&raw const (*out).struct_size).read() } as usize;
    if size < STATS_MIN_SIZE {
        return Err(Failure::new(
            ErrorCode::Invalid,
            format!("stats struct_size {size} does not cover clients ({STATS_MIN_SIZE} bytes)"),
        ));
    }
    let by = |r: Reason| stats.disconnects_for(r);
    let fields = [
        (offset_of!(ChatStats, clients), stats.clients),
        (offset_of!(ChatStats, registered), stats.registered),
        (offset_of!(ChatStats, accepted), stats.accepted),
        (offset_of!(ChatStats, refused), stats.refused),
        (offset_of!(ChatStats, frames_in), stats.frames_in),
        (offset_of!(ChatStats, frames_out), stats.frames_out),
        (offset_of!(ChatStats, bytes_in), stats.bytes_in),
        (offset_of!(ChatStats, bytes_out), stats.bytes_out),
        (offset_of!(ChatStats, queued_bytes), stats.queued_bytes),
        (offset_of!(ChatStats, peak_queued_bytes), stats.peak_queued_bytes),
        (offset_of!(ChatStats, disconnects_quit), by(Reason::Quit)),
        (
            offset_of!(ChatStats, disconnects_disconnect),
            by(Reason::Disconnect),
        ),
        (
            offset_of!(ChatStats, disconnects_slow_consumer),
            by(Reason::SlowConsumer),
        ),
        (offset_of!(ChatStats, disconnects_timeout), by(Reason::Timeout)),
        (
            offset_of!(ChatStats, disconnects_protocol_error),
            by(Reason::ProtocolError),
        ),
        (offset_of!(ChatStats, disconnects_kicked), by(Reason::Kicked)),
        (offset_of!(ChatStats, disconnects_shutdown), by(Reason::Shutdown)),
        (offset_of!(ChatStats, failed_handshakes), stats.failed_handshakes),
        (offset_of!(ChatStats, parked), stats.parked),
        (offset_of!(ChatStats, resumed), stats.resumed),
        (offset_of!(ChatStats, resume_failed), stats.resume_failed),
        (offset_of!(ChatStats, retained_bytes), stats.retained_bytes),
        (offset_of!(ChatStats, draining), stats.draining),
        (offset_of!(ChatStats, drained_bytes), stats.drained_bytes),
        (offset_of!(ChatStats, cluster_state), stats.cluster.as_u64()),
        (offset_of!(ChatStats, cluster_nodes), stats.cluster_nodes),
        (offset_of!(ChatStats, cluster_users), stats.cluster_users),
        (offset_of!(ChatStats, cluster_relayed_out), stats.relayed_out),
        (offset_of!(ChatStats, cluster_relayed_in), stats.relayed_in),
        (offset_of!(ChatStats, cluster_relay_failed), stats.relay_failed),
        (
            offset_of!(ChatStats, cluster_reconnects),
            stats.cluster_reconnects,
        ),
    ];
    for (offset, value) in fields {
        if offset + size_of::<u64>() <= size {
            // SAFETY: the host's struct_size covers this u64 field at
            // `offset` of a ChatStats it owns, so it is writable and aligned.
            unsafe { out.byte_add(offset).cast::<u64>().write(value) };
        }
    }
    Ok(())
}

/// The C form of one descriptor to watch.
pub fn poll_fd(w: &WatchFd) -> ChatPollFd {
    let mut events = 0;
    if w.read {
        events |= CHAT_POLL_READ;
    }
    if w.write {
        events |= CHAT_POLL_WRITE;
    }
    ChatPollFd { fd: w.fd, events }
}
