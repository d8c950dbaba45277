//! Why a client's WebSocket stream cannot go on, and the close code each
//! reason is answered with (RFC 6455 7.4.1).

use super::{CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED};

/// A failure of the client's stream. Each ends the connection: the server
/// sends a close frame with [`close_code`](WsError::close_code) (and the
/// `Display` text as its reason), then closes TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A binary message, where only text is accepted: 1003.
    #[error("binary messages are not accepted, only text")]
    Binary,
    /// A message over the limit, refused from the header that announced
    /// it: 1009. Holds the announced size (with the fragments before it)
    /// and the limit.
    #[error("a message of {0} bytes is over the limit of {1} bytes")]
    TooBig(u64, usize),
    /// Text (a message or a close reason) that is not valid UTF-8: 1007.
    #[error("text that is not valid UTF-8")]
    InvalidUtf8,
    /// A violation of the framing rules: 1002.
    #[error("{0}")]
    Protocol(Violation),
}

impl WsError {
    /// The close code this failure is answered with.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Binary => CLOSE_UNSUPPORTED,
            WsError::TooBig(..) => CLOSE_TOO_BIG,
            WsError::InvalidUtf8 => CLOSE_INVALID_PAYLOAD,
            WsError::Protocol(_) => CLOSE_PROTOCOL_ERROR,
        }
    }
}

impl From<Violation> for WsError {
    fn from(v: Violation) -> WsError {
        WsError::Protocol(v)
    }
}

/// The framing rules a client broke (each closes with 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A client frame without a mask (RFC 6455 5.1).
    #[error("client frames must be masked")]
    Unmasked,
    /// A reserved bit set, with no extension negotiated.
    #[error("reserved bits set with no extension negotiated")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame without FIN.
    #[error("a fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    #[error("a control frame of {0} bytes (at most 125)")]
    ControlTooLong(u64),
    /// A continuation frame with no message to continue.
    #[error("a continuation frame with no message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("a new message before the fragmented one ended")]
    ExpectedContinuation,
    /// A 64-bit length with its most significant bit set.
    #[error("a frame length with its top bit set")]
    LengthTopBit,
    /// A close frame with a 1-byte payload (a code is 2 bytes).
    #[error("a close frame of 1 byte")]
    CloseLength,
    /// A close code a peer may not send.
    #[error("close code {0} is not allowed")]
    BadCloseCode(u16),
}
