//! The library's error type.

use std::io;
use std::net::SocketAddr;

use crate::ClientId;

/// Everything a call into the library can fail with.
///
/// Nothing that arrives from the network becomes an `Error`: bad input from a
/// client is answered on the wire (see `docs/protocol.md`) and, at worst,
/// disconnects that client. These errors are about the host's own calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be created or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// A descriptor the server needs is numbered at or above `FD_SETSIZE`,
    /// so `select()` cannot watch it.
    #[error("descriptor {fd} is at or above FD_SETSIZE ({limit}); select() cannot watch it")]
    FdTooHigh {
        /// The descriptor number.
        fd: i32,
        /// `FD_SETSIZE` on this platform.
        limit: usize,
    },
    /// A setting in [`Config`](crate::Config) is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The client id names no connected client (never connected, or gone).
    #[error("no connected client with id {0}")]
    UnknownClient(ClientId),
    /// A payload given by the host is not a single JSON object.
    #[error("payload is not a JSON object: {0}")]
    NotJsonObject(String),
    /// A payload given by the host is larger than `max_frame_bytes`.
    #[error("payload of {len} bytes is over max_frame_bytes ({max})")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// No room by that name exists.
    #[error("no room named {0}")]
    UnknownRoom(String),
    /// The client is not a member of that room.
    #[error("client {client} is not in room {room}")]
    NotInRoom {
        /// The client.
        client: ClientId,
        /// The room.
        room: String,
    },
    /// No held message has that ticket (released, dropped, or never held).
    #[error("no held message with ticket {0}")]
    UnknownTicket(u64),
    /// The client is not waiting for approval.
    #[error("client {0} is not waiting for approval")]
    NotAwaitingApproval(ClientId),
    /// The TLS certificate or key cannot be used: unreadable, of a kind the
    /// server cannot sign with, or not a pair.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The server is shutting down and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// An operating-system call failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
