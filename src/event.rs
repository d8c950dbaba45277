//! What the server tells its host after each round.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::message::Payload;

/// A connection's id: never 0, never reused within one server.
pub type ClientId = u64;

/// Why a client left. The words are the protocol's `reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The client sent `quit`.
    Quit,
    /// The socket was closed or reset by the peer.
    Disconnect,
    /// Its output queue passed `max_queue_bytes`.
    SlowConsumer,
    /// Silent past the idle timeout, or no `hello` within the handshake
    /// timeout.
    Timeout,
    /// It broke the framing (bad length).
    ProtocolError,
    /// The host kicked it.
    Kicked,
    /// The server shut down.
    Shutdown,
}

impl Reason {
    /// Every reason, in a fixed order (used to index counters).
    pub const ALL: [Reason; 7] = [
        Reason::Quit,
        Reason::Disconnect,
        Reason::SlowConsumer,
        Reason::Timeout,
        Reason::ProtocolError,
        Reason::Kicked,
        Reason::Shutdown,
    ];

    /// The protocol's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Quit => "quit",
            Reason::Disconnect => "disconnect",
            Reason::SlowConsumer => "slow_consumer",
            Reason::Timeout => "timeout",
            Reason::ProtocolError => "protocol_error",
            Reason::Kicked => "kicked",
            Reason::Shutdown => "shutdown",
        }
    }

    /// Whether the server chose to close (and so tells the client why with
    /// an error frame), as opposed to the client leaving by itself.
    pub fn is_servers_own(self) -> bool {
        !matches!(self, Reason::Quit | Reason::Disconnect)
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// Plain TCP, length-prefixed frames.
    Tcp,
    /// TLS, length-prefixed frames inside.
    Tls,
    /// WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Via {
    /// The scheme written before its peer's address where it matters
    /// (`"tls://"`, `"ws://"`, `"wss://"`; nothing for plain TCP).
    pub fn scheme(self) -> &'static str {
        match self {
            Via::Tcp => "",
            Via::Tls => "tls://",
            Via::Ws => "ws://",
            Via::Wss => "wss://",
        }
    }
}

/// One thing that happened to one client.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which client.
    pub client: ClientId,
    /// Its address.
    pub peer: SocketAddr,
    /// How it is connected.
    pub via: Via,
    /// Its nick, once registered (and still, in its `Disconnected` event);
    /// in `ApprovalRequested`, the nick it asked for.
    pub nick: Option<Arc<str>>,
    /// The value the host attached with `set_user_data` (0 until then).
    pub user_data: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone)]
pub enum EventKind {
    /// A connection was accepted.
    Connected,
    /// The client completed `hello`; `nick` is set.
    Registered,
    /// The client's `msg` or `all` was routed.
    Message(RoutedMessage),
    /// The client joined a room (protocol 1.1).
    Joined {
        /// The room's name.
        room: Arc<str>,
    },
    /// The client left a room: by `part`, removed by the host, or because
    /// it left the server (then before its `Disconnected`).
    Parted {
        /// The room's name.
        room: Arc<str>,
    },
    /// With `approve_registrations`: the client sent a valid `hello` for a
    /// free nick (in `nick`) and waits for `approve` or `reject`.
    ApprovalRequested {
        /// The `token` string of its `hello`, if any.
        token: Option<Arc<str>>,
    },
    /// With `intercept_messages`: a `msg`, `all` or `room` frame waits for
    /// `release` or `drop_held`.
    Intercepted(HeldMessage),
    /// The client is gone; the id is no longer valid. For a resumable
    /// session that was parked, this comes when the session ends (its
    /// window passed, a `gap`, its queue overflowed, a kick, a shutdown),
    /// with the reason its connection ended for (or `slow_consumer`).
    Disconnected {
        /// Why.
        reason: Reason,
    },
    /// The client renamed itself with `nick` (protocol 1.2); the event's
    /// `nick` is the new one.
    Renamed {
        /// The nick before.
        old: Arc<str>,
    },
    /// The connection of a resumable session ended by `disconnect`,
    /// `timeout` or `slow_consumer` (protocol 1.2): the session is parked
    /// for `resume_window`, under the same id. It keeps its nick and rooms,
    /// frames for it (and the host's calls on the id) keep queuing, and
    /// nobody is told. What follows is either `Resumed` on a new id or
    /// `Disconnected` on this one.
    Parked {
        /// Why the connection ended.
        reason: Reason,
    },
    /// A session resumed on this connection (protocol 1.2): the client
    /// known until now as `previous` is this id from now on (nick, rooms,
    /// user data and queued frames moved here). `previous` is never valid
    /// again and gets no `Disconnected`. It may have been parked (after
    /// `Parked`) or still connected (then its connection was closed with
    /// `replaced`).
    Resumed {
        /// The session's id before.
        previous: ClientId,
    },
}

/// A message as its recipients received it (with `from` set by the server).
/// It shares the payload that was queued, so it costs no copy.
#[derive(Clone)]
pub struct RoutedMessage {
    payload: Payload,
    /// How many output queues it was put in.
    pub recipients: usize,
}

impl RoutedMessage {
    pub(crate) fn new(payload: Payload, recipients: usize) -> Self {
        RoutedMessage { payload, recipients }
    }

    /// The JSON object, as bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The JSON object, as text (the server wrote it, so it is UTF-8).
    pub fn json(&self) -> &str {
        std::str::from_utf8(self.payload()).unwrap_or_default()
    }
}

impl fmt::Debug for RoutedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedMessage")
            .field("json", &self.json())
            .field("recipients", &self.recipients)
            .finish()
    }
}

/// A client frame held for the host's verdict.
#[derive(Clone)]
pub struct HeldMessage {
    /// What to pass to `release` or `drop_held`.
    pub ticket: u64,
    payload: Arc<[u8]>,
}

impl HeldMessage {
    pub(crate) fn new(ticket: u64, payload: Arc<[u8]>) -> Self {
        HeldMessage { ticket, payload }
    }

    /// The client's JSON object, exactly as it sent it.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The same, as text (the decoder only passes UTF-8 JSON this far).
    pub fn json(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap_or_default()
    }
}

impl fmt::Debug for HeldMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldMessage")
            .field("ticket", &self.ticket)
            .field("json", &self.json())
            .finish()
    }
}
