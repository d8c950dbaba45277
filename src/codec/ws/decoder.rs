//! The server side of RFC 6455 framing: masked client bytes in, messages
//! and control frames out, with no sockets.
//!
//! Where the bytes lie: the caller reads into its own (mutable) buffer and
//! hands it to [`Decoder::input`]. Frames that lie whole in it are unmasked
//! in place and handed out as slices of it: the common case copies nothing.
//! Only what spans two reads, or a fragmented message, is copied into the
//! decoder's message buffer, which grows as such a message needs and is
//! freed after it. A frame header or control payload split across reads
//! waits in small inline arrays. A caller that stops pulling events (a rate
//! limit, a full output queue) leaves the unread rest of its buffer to be
//! copied, still masked, into a pending buffer that the next call reads
//! first.

use std::ops::Range;

use super::error::{Violation, WsError};
use super::frame::{
    self, ControlFrame, MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};

/// Buffers up to this capacity are kept for the next message; larger ones
/// are freed once empty, so an idle connection holds little.
pub const IDLE_KEEP: usize = 4096;

/// The longest client frame header: 2 bytes, a 64-bit length, a mask.
const MAX_CLIENT_HEADER: usize = 14;

/// What a client sent, borrowed from the buffer given to
/// [`Decoder::input`] or from the decoder; valid until the next call on
/// the [`Input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message (reassembled if it came in fragments). The
    /// bytes are valid UTF-8: the decoder checked them.
    Text(&'a [u8]),
    /// A complete binary message; only from a decoder made with
    /// [`accept_binary`](Decoder::accept_binary) (otherwise a binary
    /// message is [`WsError::Binary`]).
    Binary(&'a [u8]),
    /// A ping: answer with [`frame::pong`] of this payload.
    Ping(&'a [u8]),
    /// A pong (to a ping of ours, or unsolicited: both are allowed).
    Pong(&'a [u8]),
    /// The client's close frame, already checked (a valid code, a UTF-8
    /// reason). Nothing after it is read. If the server has not sent its own
    /// close yet, it answers with [`Decoder::close`] and then closes TCP.
    Close {
        /// The status code, if the frame carried one.
        code: Option<u16>,
        /// The reason (empty if none).
        reason: &'a str,
    },
}

/// Where the closing handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Neither side has sent a close frame.
    Open,
    /// The server sent its close frame and waits for the client's.
    Sent,
    /// The client's close frame arrived; the server has not answered yet.
    Received,
    /// Both close frames are through: the handshake is done, and the
    /// server closes TCP once its frame is written.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct FrameState {
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    len: u64,
    remaining: u64,
}

/// Where a found payload lies.
#[derive(Debug, Clone)]
enum Place {
    /// In the chunk being read (the caller's buffer or the pending one).
    Chunk(Range<usize>),
    /// In the message buffer.
    Message,
    /// In the inline control buffer.
    Control,
}

#[derive(Debug, Clone)]
enum Found {
    Message(Kind, Place),
    Ping(Place),
    Pong(Place),
    Close(Place),
}

/// Which buffer a step read from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Pending,
    Fresh,
}

/// The decoding state of one client connection. Idle, it holds no heap
/// memory beyond buffers of at most [`IDLE_KEEP`] bytes.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    binary: bool,
    /// Received bytes not decoded yet (still masked): what a caller left
    /// when it stopped pulling events.
    pending: Vec<u8>,
    /// A frame header split across inputs.
    head: [u8; MAX_CLIENT_HEADER],
    head_len: usize,
    frame: Option<FrameState>,
    /// Unmasked payload of the data message being reassembled.
    message: Vec<u8>,
    /// The kind of a fragmented message whose first frame is through.
    fragmented: Option<Kind>,
    /// Bytes of `message` known to be valid UTF-8 (the rest is at most an
    /// unfinished character).
    utf8_checked: usize,
    /// A control frame's payload split across inputs.
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: usize,
    /// The message buffer was handed out: clear it on the next call.
    release: bool,
    closing: Closing,
    failed: Option<WsError>,
}

impl Decoder {
    /// A decoder for text messages of at most `max_message` bytes (the
    /// whole message, fragments reassembled).
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            binary: false,
            pending: Vec::new(),
            head: [0; MAX_CLIENT_HEADER],
            head_len: 0,
            frame: None,
            message: Vec::new(),
            fragmented: None,
            utf8_checked: 0,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            release: false,
            closing: Closing::Open,
            failed: None,
        }
    }

    /// Also accept binary messages ([`Event::Binary`]) instead of failing
    /// with 1003 (for an echo server; the chat protocol is text only).
    pub fn accept_binary(mut self, yes: bool) -> Decoder {
        self.binary = yes;
        self
    }

    /// The largest message accepted.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Takes bytes just read: `fresh` is unmasked in place as it is decoded,
    /// and events borrow from it. Pull events with [`Input::next_event`];
    /// whatever is left unread when the `Input` is dropped is kept (copied)
    /// for the next call, so a caller may stop at any event and resume with
    /// [`resume`](Decoder::resume) or the next `input`.
    pub fn input<'a>(&'a mut self, fresh: &'a mut [u8]) -> Input<'a> {
        let pending = std::mem::take(&mut self.pending);
        Input {
            dec: self,
            pending,
            ppos: 0,
            fresh,
            fpos: 0,
        }
    }

    /// Goes on with what is already buffered (no new bytes).
    pub fn resume(&mut self) -> Input<'_> {
        self.input(&mut [])
    }

    /// Whether buffered bytes may hold an event that [`resume`] would
    /// return: bytes left when the caller stopped pulling.
    ///
    /// [`resume`]: Decoder::resume
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() && self.is_live()
    }

    /// Bytes held for this connection: undecoded input, a partial message,
    /// a partial header or control frame.
    pub fn buffered(&self) -> usize {
        self.pending.len() + self.message.len() + self.head_len + self.control_len
    }

    /// Heap bytes held (the capacity of its buffers): what an idle
    /// connection costs beyond the struct itself.
    pub fn heap_capacity(&self) -> usize {
        self.pending.capacity() + self.message.capacity()
    }

    /// Where the closing handshake stands.
    pub fn closing(&self) -> Closing {
        self.closing
    }

    /// The failure that stopped decoding, if any.
    pub fn failed(&self) -> Option<WsError> {
        self.failed
    }

    /// Whether input is still decoded (no failure, no close received).
    fn is_live(&self) -> bool {
        self.failed.is_none() && !matches!(self.closing, Closing::Received | Closing::Done)
    }

    /// The server's close frame, and the handshake moves on (to `Sent`, or
    /// `Done` after the client's close). `None` if it already sent one:
    /// there is nothing more to send.
    pub fn close(&mut self, code: u16, reason: &str) -> Option<ControlFrame> {
        self.closing = match self.closing {
            Closing::Open => Closing::Sent,
            Closing::Received => Closing::Done,
            Closing::Sent | Closing::Done => return None,
        };
        Some(frame::close(code, reason))
    }

    /// The close frame that answers a failure ([`WsError::close_code`] and
    /// its text), as [`close`](Decoder::close).
    pub fn close_for(&mut self, err: &WsError) -> Option<ControlFrame> {
        self.close(err.close_code(), &err.to_string())
    }

    fn fail(&mut self, err: WsError) {
        self.failed = Some(err);
        self.frame = None;
        self.message = Vec::new();
        self.pending = Vec::new();
    }

    /// Decodes from `chunk[*pos..]` up to the next event, advancing `pos`;
    /// `Ok(None)` once the chunk is used up.
    fn step(&mut self, chunk: &mut [u8], pos: &mut usize) -> Result<Option<Found>, WsError> {
        loop {
            if self.frame.is_none() {
                let Some(frame) = self.read_header(chunk, pos)? else {
                    return Ok(None);
                };
                self.frame = Some(frame);
            }
            let Some(f) = self.frame.as_mut() else {
                unreachable!("a frame was just set")
            };
            let start = *pos;
            let take = f.remaining.min((chunk.len() - start) as u64) as usize;
            let whole = f.remaining == f.len && take as u64 == f.len;
            let done_before = f.len - f.remaining;
            unmask(&mut chunk[start..start + take], f.mask, done_before as usize);
            f.remaining -= take as u64;
            *pos += take;
            let f = *f;
            let payload = start..start + take;
            if f.opcode & 0x8 != 0 {
                let place = if whole {
                    Place::Chunk(payload)
                } else {
                    self.control[self.control_len..self.control_len + take].copy_from_slice(&chunk[payload]);
                    self.control_len += take;
                    if f.remaining > 0 {
                        return Ok(None);
                    }
                    Place::Control
                };
                self.frame = None;
                return self.control_found(f.opcode, place, chunk).map(Some);
            }
            let kind = match f.opcode {
                OP_TEXT => Kind::Text,
                OP_BINARY => Kind::Binary,
                _ => self.fragmented.unwrap_or(Kind::Text),
            };
            if whole && f.fin && self.fragmented.is_none() {
                // The whole message lies in the chunk: hand it out in place.
                self.frame = None;
                if kind == Kind::Text && std::str::from_utf8(&chunk[payload.clone()]).is_err() {
                    return Err(WsError::InvalidUtf8);
                }
                return Ok(Some(Found::Message(kind, Place::Chunk(payload))));
            }
            self.message.extend_from_slice(&chunk[payload]);
            if kind == Kind::Text {
                self.check_utf8()?;
            }
            if f.remaining > 0 {
                return Ok(None);
            }
            self.frame = None;
            if !f.fin {
                self.fragmented = Some(kind);
                continue;
            }
            if kind == Kind::Text && self.utf8_checked != self.message.len() {
                return Err(WsError::InvalidUtf8); // ends inside a character
            }
            self.fragmented = None;
            self.release = true;
            return Ok(Some(Found::Message(kind, Place::Message)));
        }
    }

    /// Reads a frame header from the chunk (or completes one split across
    /// inputs) and checks it; `Ok(None)` if the chunk ends first.
    fn read_header(&mut self, chunk: &[u8], pos: &mut usize) -> Result<Option<FrameState>, WsError> {
        let avail = &chunk[*pos..];
        if self.head_len == 0 {
            if let Some(n) = header_len(avail).filter(|&n| avail.len() >= n) {
                *pos += n;
                return self.check_header(&avail[..n]).map(Some);
            }
        }
        loop {
            let need = header_len(&self.head[..self.head_len]).unwrap_or(2);
            if self.head_len >= need {
                break;
            }
            let take = (need - self.head_len).min(chunk.len() - *pos);
            if take == 0 {
                return Ok(None);
            }
            self.head[self.head_len..self.head_len + take].copy_from_slice(&chunk[*pos..*pos + take]);
            self.head_len += take;
            *pos += take;
        }
        let head = self.head;
        let n = std::mem::take(&mut self.head_len);
        self.check_header(&head[..n]).map(Some)
    }

    /// Checks a complete header against the framing rules and the limits.
    fn check_header(&mut self, h: &[u8]) -> Result<FrameState, WsError> {
        let (b0, b1) = (h[0], h[1]);
        if b0 & 0x70 != 0 {
            return Err(Violation::ReservedBits.into());
        }
        if b1 & 0x80 == 0 {
            return Err(Violation::Unmasked.into());
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let (len, at) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => (u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")), 10),
            n => (u64::from(n), 2),
        };
        if len >> 63 != 0 {
            return Err(Violation::LengthTopBit.into());
        }
        let mask = h[at..at + 4].try_into().expect("4 bytes");
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(Violation::FragmentedControl.into());
                }
                if len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(Violation::ControlTooLong(len).into());
                }
                self.control_len = 0;
            }
            OP_TEXT | OP_BINARY => {
                if self.fragmented.is_some() {
                    return Err(Violation::ExpectedContinuation.into());
                }
                if opcode == OP_BINARY && !self.binary {
                    return Err(WsError::Binary);
                }
                if len > self.max_message as u64 {
                    return Err(WsError::TooBig(len, self.max_message));
                }
            }
            OP_CONTINUATION => {
                if self.fragmented.is_none() {
                    return Err(Violation::UnexpectedContinuation.into());
                }
                let total = self.message.len() as u64 + len;
                if total > self.max_message as u64 {
                    return Err(WsError::TooBig(total, self.max_message));
                }
            }
            other => return Err(Violation::ReservedOpcode(other).into()),
        }
        Ok(FrameState {
            opcode,
            fin,
            mask,
            len,
            remaining: len,
        })
    }

    /// A complete control frame; a close is checked and ends decoding.
    fn control_found(&mut self, opcode: u8, place: Place, chunk: &[u8]) -> Result<Found, WsError> {
        Ok(match opcode {
            OP_PING => Found::Ping(place),
            OP_PONG => Found::Pong(place),
            _ => {
                let payload = match &place {
                    Place::Chunk(r) => &chunk[r.clone()],
                    _ => &self.control[..self.control_len],
                };
                parse_close(payload)?;
                self.closing = match self.closing {
                    Closing::Open | Closing::Received => Closing::Received,
                    Closing::Sent | Closing::Done => Closing::Done,
                };
                Found::Close(place)
            }
        })
    }

    /// Checks the message buffer's new bytes as UTF-8, failing as soon as a
    /// byte makes it invalid (not only at the message's end).
    fn check_utf8(&mut self) -> Result<(), WsError> {
        match std::str::from_utf8(&self.message[self.utf8_checked..]) {
            Ok(_) => self.utf8_checked = self.message.len(),
            // An unfinished character at the end may still be completed.
            Err(e) if e.error_len().is_none() => self.utf8_checked += e.valid_up_to(),
            Err(_) => return Err(WsError::InvalidUtf8),
        }
        Ok(())
    }

    fn release_message(&mut self) {
        self.release = false;
        self.utf8_checked = 0;
        self.message.clear();
        if self.message.capacity() > IDLE_KEEP {
            self.message = Vec::new();
        }
    }
}

/// The code and reason of a close payload, checked.
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), WsError> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(Violation::CloseLength.into()),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !frame::is_valid_close_code(code) {
                return Err(Violation::BadCloseCode(code).into());
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok((Some(code), reason))
        }
    }
}

/// The length of the header starting `bytes`, once its first two bytes are
/// there.
fn header_len(bytes: &[u8]) -> Option<usize> {
    let b1 = *bytes.get(1)?;
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    Some(2 + ext + mask)
}

/// XORs `data` with the mask, `offset` bytes into the frame's payload,
/// eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset & 3);
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let (words, rest) = data.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= m[i & 3];
    }
}

/// One pass over new bytes: a lending iterator of [`Event`]s. Dropping it
/// keeps what was not read yet in the decoder.
#[derive(Debug)]
pub struct Input<'a> {
    dec: &'a mut Decoder,
    /// The decoder's pending bytes, read before `fresh`.
    pending: Vec<u8>,
    ppos: usize,
    fresh: &'a mut [u8],
    fpos: usize,
}

impl Input<'_> {
    /// The next event, `None` when the bytes are used up (or decoding has
    /// stopped: after the client's close, or after an error). An error is
    /// returned once; the caller answers it with [`Decoder::close_for`]
    /// (through [`decoder`](Input::decoder)) and closes the connection.
    ///
    /// After the server sent its own close, only the client's close is
    /// reported: messages and pings that cross it are dropped.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, WsError>> {
        if self.dec.release {
            self.dec.release_message();
        }
        let (found, source) = loop {
            if !self.dec.is_live() {
                return None;
            }
            let (step, source) = if self.ppos < self.pending.len() {
                (self.dec.step(&mut self.pending, &mut self.ppos), Source::Pending)
            } else {
                (self.dec.step(self.fresh, &mut self.fpos), Source::Fresh)
            };
            match step {
                Err(err) => {
                    self.dec.fail(err);
                    return Some(Err(err));
                }
                Ok(Some(found)) => {
                    let crossed = self.dec.closing == Closing::Sent && !matches!(found, Found::Close(_));
                    if crossed {
                        if self.dec.release {
                            self.dec.release_message();
                        }
                        continue;
                    }
                    break (found, source);
                }
                Ok(None) if matches!(source, Source::Pending) => continue,
                Ok(None) => return None,
            }
        };
        let chunk: &[u8] = match source {
            Source::Pending => &self.pending,
            Source::Fresh => self.fresh,
        };
        let dec = &*self.dec;
        let slice = |place: Place| -> &[u8] {
            match place {
                Place::Chunk(r) => &chunk[r],
                Place::Message => &dec.message,
                Place::Control => &dec.control[..dec.control_len],
            }
        };
        Some(Ok(match found {
            Found::Message(Kind::Text, p) => Event::Text(slice(p)),
            Found::Message(Kind::Binary, p) => Event::Binary(slice(p)),
            Found::Ping(p) => Event::Ping(slice(p)),
            Found::Pong(p) => Event::Pong(slice(p)),
            Found::Close(p) => {
                let (code, reason) = parse_close(slice(p)).expect("checked when found");
                Event::Close { code, reason }
            }
        }))
    }

    /// The decoder, for [`Decoder::close`] or [`Decoder::closing`] while
    /// events are pulled.
    pub fn decoder(&mut self) -> &mut Decoder {
        self.dec
    }
}

impl Drop for Input<'_> {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        if !self.dec.is_live() {
            self.dec.pending = Vec::new();
            return;
        }
        pending.drain(..self.ppos.min(pending.len()));
        pending.extend_from_slice(&self.fresh[self.fpos..]);
        if pending.is_empty() && pending.capacity() > IDLE_KEEP {
            pending = Vec::new();
        }
        self.dec.pending = pending;
    }
}
