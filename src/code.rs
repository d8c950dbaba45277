//! The protocol's error codes, each word spelled in one place.

use std::fmt;

/// The error codes the server sends (`{"type":"error","code":...}`), each
/// spelled in one place. A host may send codes of its own (`drop_held`);
/// those pass through as the host wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Not valid JSON, not an object, no string `type`, a field missing or
    /// of the wrong kind.
    BadRequest,
    /// A `type` the server does not know.
    UnknownType,
    /// A frame before a successful `hello`.
    NotRegistered,
    /// A nick outside the rules.
    BadNick,
    /// A nick someone else has.
    NickTaken,
    /// `msg` to a nick nobody has.
    NoSuchUser,
    /// A frame length over `max_frame_bytes`.
    FrameTooLarge,
    /// A frame length of 0.
    EmptyFrame,
    /// Over the rate limit: input is read more slowly.
    RateLimited,
    /// Dropped: the output queue went over `max_queue_bytes`.
    SlowConsumer,
    /// Dropped: silent past the idle or handshake timeout.
    Timeout,
    /// Dropped: the framing (or the transport's protocol) was broken.
    ProtocolError,
    /// Dropped by the host.
    Kicked,
    /// The server is going away.
    Shutdown,
    /// The server cannot take this connection.
    ServerFull,
    /// A room name outside the rules.
    BadRoom,
    /// A room message or `part` for a room the client is not in.
    NotInRoom,
    /// `join` past the rooms one client may be in.
    TooManyRooms,
    /// `join` of a room at its member limit.
    RoomFull,
    /// `join` of a new room past the server's room limit.
    ServerRoomLimit,
    /// The host refused a registration.
    Rejected,
    /// A `hello` with `resume` could not resume (with a `reason`).
    ResumeFailed,
    /// The connection was taken over by a resume of its session.
    Replaced,
    /// The cluster (Redis) is unreachable: a `hello`, `join` or `nick`
    /// that needs it cannot be answered now; the connection stays open.
    Unavailable,
}

impl Code {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::UnknownType => "unknown_type",
            Code::NotRegistered => "not_registered",
            Code::BadNick => "bad_nick",
            Code::NickTaken => "nick_taken",
            Code::NoSuchUser => "no_such_user",
            Code::FrameTooLarge => "frame_too_large",
            Code::EmptyFrame => "empty_frame",
            Code::RateLimited => "rate_limited",
            Code::SlowConsumer => "slow_consumer",
            Code::Timeout => "timeout",
            Code::ProtocolError => "protocol_error",
            Code::Kicked => "kicked",
            Code::Shutdown => "shutdown",
            Code::ServerFull => "server_full",
            Code::BadRoom => "bad_room",
            Code::NotInRoom => "not_in_room",
            Code::TooManyRooms => "too_many_rooms",
            Code::RoomFull => "room_full",
            Code::ServerRoomLimit => "server_room_limit",
            Code::Rejected => "rejected",
            Code::ResumeFailed => "resume_failed",
            Code::Replaced => "replaced",
            Code::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
