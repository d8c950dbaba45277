//! The WebSocket framing (RFC 6455), after the HTTP upgrade: each text
//! message from the client is one payload for the core; each payload the
//! core queues goes out as one unmasked text frame, its 2 to 10 byte header
//! gathered with the shared payload in the same write. Pings are answered
//! here, and the closing handshake is the transport's: the core's reason
//! becomes the close code.

use std::io::{self, IoSlice};
use std::time::Instant;

use super::{write_framed, Sink, MAX_HEADER};
use crate::code::Code;
use crate::codec::ws::{frame, Closing, Decoder, Event, Input, WsError};
use crate::codec::ws::{CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY};
use crate::event::{ClientId, Reason};
use crate::protocol::LogFraming;
use crate::protocol::{Core, Next, PayloadSource, Violation};

/// Control frames (and the 101 response before the first frame) waiting
/// for a frame boundary of the data stream. Bounded: a client that sends
/// pings faster than it reads pongs is a protocol error.
const MAX_CONTROL_BYTES: usize = 16 * 1024;

/// One WebSocket connection's framing.
#[derive(Debug)]
pub(crate) struct WebSocket {
    decoder: Decoder,
    /// Bytes of our own to write at the next frame boundary: the 101
    /// response, pongs.
    control: Vec<u8>,
    /// The client's close frame arrived (or its stream ended in a way that
    /// ends the session): the core is told the peer left.
    peer_closed: bool,
    /// The code of the client's close frame, echoed in the server's answer
    /// (RFC 6455 5.5.1); `None` when it gave none (answered with 1000).
    peer_code: Option<u16>,
    /// Pongs were dropped because `control` was full.
    flooded: bool,
}

impl WebSocket {
    /// A connection just upgraded: `response` (the 101) goes out first.
    pub fn new(max_message: usize, response: Vec<u8>) -> Self {
        WebSocket {
            decoder: Decoder::new(max_message),
            control: response,
            peer_closed: false,
            peer_code: None,
            flooded: false,
        }
    }

    pub fn received(&mut self, core: &mut Core, id: ClientId, bytes: &mut [u8], now: Instant) {
        let mut source = Source {
            input: self.decoder.input(bytes),
            control: &mut self.control,
            peer_closed: &mut self.peer_closed,
            peer_code: &mut self.peer_code,
            flooded: &mut self.flooded,
        };
        core.take_input(id, &mut source, now);
        drop(source);
        if self.flooded && core.is_open(id) {
            core.transport_failed(id, now);
        }
        if self.peer_closed {
            core.peer_gone(id, now);
        }
    }

    pub fn has_pending_input(&self) -> bool {
        self.decoder.has_pending()
    }

    pub fn wants_write(&self) -> bool {
        !self.control.is_empty()
    }

    /// Our control bytes at a frame boundary, then the core's payloads.
    pub fn flush(&mut self, core: &mut Core, id: ClientId, sink: &mut Sink<'_>) -> io::Result<bool> {
        let at_boundary = core.output(id).is_none_or(|q| q.head_written() == 0);
        if at_boundary && !self.control.is_empty() {
            let n = sink(&[IoSlice::new(&self.control)])?;
            self.control.drain(..n);
            if !self.control.is_empty() {
                return Ok(false);
            }
        }
        write_framed(core, id, header, LogFraming::WebSocket, sink)
    }

    /// The closing frame after the core's last payload: the client's close
    /// answered with its own code, a decoding failure's code, or the
    /// core's reason.
    pub fn goodbye(&mut self, reason: Reason) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.control);
        let close = match (self.decoder.failed(), self.decoder.closing()) {
            (Some(err), _) => self.decoder.close_for(&err),
            (None, Closing::Received) => self.decoder.close(self.peer_code.unwrap_or(CLOSE_NORMAL), ""),
            (None, _) => self.decoder.close(close_code(reason), reason.as_str()),
        };
        if let Some(frame) = close {
            out.extend_from_slice(&frame);
        }
        out
    }
}

/// The close code for a reason of the server's own (PROTOCOL.md).
fn close_code(reason: Reason) -> u16 {
    match reason {
        Reason::Quit | Reason::Disconnect => CLOSE_NORMAL,
        Reason::Shutdown => CLOSE_GOING_AWAY,
        Reason::SlowConsumer | Reason::Kicked | Reason::Timeout | Reason::ProtocolError => CLOSE_POLICY,
    }
}

/// The header of one text frame carrying a payload of `len` bytes.
fn header(len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    let h = frame::Header::text(len);
    out[..h.len()].copy_from_slice(&h);
    h.len()
}

/// The events of one read, as payloads for the core.
struct Source<'a> {
    input: Input<'a>,
    control: &'a mut Vec<u8>,
    peer_closed: &'a mut bool,
    peer_code: &'a mut Option<u16>,
    flooded: &'a mut bool,
}

impl PayloadSource for Source<'_> {
    fn next_payload(&mut self) -> Next<'_> {
        let event = match self.input.next_event() {
            None => return Next::Done,
            Some(Ok(event)) => event,
            Some(Err(err)) => return Next::Violation(violation(err)),
        };
        match event {
            Event::Text(payload) => Next::Payload(payload),
            Event::Ping(data) => {
                let pong = frame::pong(data);
                if self.control.len() + pong.len() > MAX_CONTROL_BYTES {
                    *self.flooded = true;
                    return Next::Done;
                }
                self.control.extend_from_slice(&pong);
                Next::Handled
            }
            // A binary message is refused by the decoder (1003).
            Event::Pong(_) | Event::Binary(_) => Next::Handled,
            Event::Close { code, .. } => {
                *self.peer_closed = true;
                *self.peer_code = code;
                Next::Done
            }
        }
    }
}

/// What a client that broke the WebSocket rules is told: the error text
/// message a length-prefix client would get, then (in the goodbye) the
/// close code the decoder chose.
fn violation(err: WsError) -> Violation {
    let code = match err {
        WsError::TooBig(..) => Code::FrameTooLarge,
        _ => Code::ProtocolError,
    };
    Violation {
        farewell: Some((code, err.to_string())),
    }
}
