//! Frames the server writes: headers for payloads it already holds (so a
//! shared payload goes out after its header in one gathered write, never
//! copied), and the small control frames (close, ping, pong), built on the
//! stack. Server frames are never masked (RFC 6455 5.1).

use std::ops::Deref;

/// Continuation frame opcode.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// The FIN bit of a frame's first byte.
const FIN: u8 = 0x80;

/// The largest payload of a control frame (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest header the server writes: 2 bytes and a 64-bit length.
pub const MAX_SERVER_HEADER: usize = 10;

/// A frame header for a payload of a given length, at most
/// [`MAX_SERVER_HEADER`] bytes, held inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; MAX_SERVER_HEADER],
    len: u8,
}

impl Header {
    /// The header of one unfragmented frame with `opcode` and a payload of
    /// `payload_len` bytes.
    pub fn new(opcode: u8, payload_len: usize) -> Header {
        let mut bytes = [0u8; MAX_SERVER_HEADER];
        bytes[0] = FIN | (opcode & 0x0F);
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if payload_len <= u16::MAX as usize {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Header { bytes, len }
    }

    /// The header of a text message of `payload_len` bytes: what goes before
    /// every payload the server sends.
    pub fn text(payload_len: usize) -> Header {
        Header::new(OP_TEXT, payload_len)
    }

    /// How many bytes a header for a payload of `payload_len` takes (2, 4
    /// or 10), without building it: for counting queued bytes.
    pub fn len_for(payload_len: usize) -> usize {
        match payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        }
    }
}

impl Deref for Header {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Header({:02x?})", &**self)
    }
}

/// A whole control frame (header and payload, at most 127 bytes), inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlFrame {
    bytes: [u8; 2 + MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlFrame {
    /// A control frame with `opcode`; a payload over 125 bytes is cut to 125
    /// (the largest a control frame may carry).
    fn new(opcode: u8, parts: &[&[u8]]) -> ControlFrame {
        let mut bytes = [0u8; 2 + MAX_CONTROL_PAYLOAD];
        let mut n = 0;
        for part in parts {
            let take = part.len().min(MAX_CONTROL_PAYLOAD - n);
            bytes[2 + n..2 + n + take].copy_from_slice(&part[..take]);
            n += take;
        }
        bytes[0] = FIN | opcode;
        bytes[1] = n as u8;
        ControlFrame {
            bytes,
            len: (2 + n) as u8,
        }
    }

    /// The frame's payload (after its 2-byte header).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[2..self.len as usize]
    }
}

impl Deref for ControlFrame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for ControlFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlFrame({:02x?})", &**self)
    }
}

/// A pong answering a ping with this payload (RFC 6455 5.5.3: the same
/// application data).
pub fn pong(payload: &[u8]) -> ControlFrame {
    ControlFrame::new(OP_PONG, &[payload])
}

/// A ping with this payload (cut to 125 bytes).
pub fn ping(payload: &[u8]) -> ControlFrame {
    ControlFrame::new(OP_PING, &[payload])
}

/// A close frame with a status code and a reason. The reason is cut to the
/// 123 bytes a close frame has room for, at a character boundary, so the
/// frame stays valid UTF-8.
pub fn close(code: u16, reason: &str) -> ControlFrame {
    let reason = truncate_utf8(reason, MAX_CONTROL_PAYLOAD - 2);
    ControlFrame::new(OP_CLOSE, &[&code.to_be_bytes(), reason.as_bytes()])
}

/// A close frame with no status code (an empty payload).
pub fn close_empty() -> ControlFrame {
    ControlFrame::new(OP_CLOSE, &[])
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character
/// boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether a peer may send this close status code (RFC 6455 7.4: the
/// defined codes that may appear on the wire, the IANA-registered 1012-1014,
/// and the 3000-4999 ranges for libraries and applications). 1004, 1005,
/// 1006 and 1015 are never sent; the rest below 3000 is reserved.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Encodes a whole unfragmented, unmasked frame into a new buffer (for
/// tests and simple programs; the server gathers [`Header`] and the shared
/// payload instead).
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let header = Header::new(opcode, payload.len());
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out
}
