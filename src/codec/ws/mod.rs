//! WebSocket (RFC 6455), server side, with no sockets: the HTTP/1.1
//! upgrade ([`handshake`]), client frames decoded into messages
//! ([`Decoder`]), and the server's frames ([`frame`]).
//!
//! A connection starts with a [`Handshake`]: bytes in until the request
//! head is complete, then either an upgrade (write its response, then feed
//! the bytes that followed the head to a [`Decoder`]) or a plain HTTP reply
//! (the web client page, or an error) after which the connection closes.
//!
//! Server frames are never masked, so a payload shared by many recipients
//! goes out as `[frame::Header::text(len), payload]` in one gathered write,
//! never copied per recipient. Control frames (close, pong) are small
//! inline values ([`frame::ControlFrame`]).

mod decoder;
mod error;
pub mod frame;
pub mod handshake;
mod page;

pub use decoder::{Closing, Decoder, Event, Input, IDLE_KEEP};
pub use error::{Violation, WsError};
pub use handshake::{Handshake, HandshakeConfig, Outcome, Reply};
pub use page::CLIENT_PAGE;

/// Close code: normal closure (the server's `quit`).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: going away (the server's `shutdown`).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: a protocol violation.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code: a kind of data not accepted (a binary message).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code: data inconsistent with the message type (invalid UTF-8).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code: a policy violation (the server's `slow_consumer`, `kicked`,
/// `timeout`, `protocol_error`).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a message too big to process.
pub const CLOSE_TOO_BIG: u16 = 1009;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_handshake;
