//! RESP2, the Redis protocol, with no sockets: commands out as arrays of
//! bulk strings, replies in (`+ - : $ *`, nested arrays, nulls).
//!
//! Commands are written straight into the caller's buffer (no allocation
//! per argument). Replies are decoded incrementally: [`Decoder::push`] takes
//! whatever a read returned, split anywhere, and [`Decoder::next_reply`]
//! resumes exactly where the previous bytes stopped, mid-line, mid-bulk or
//! deep in a nested array, without parsing anything twice.
//!
//! A peer is not trusted with our memory: every length is checked against
//! [`Limits`] before anything is reserved for it, a bulk string's buffer
//! grows only as its bytes arrive, and a line without its CRLF is refused
//! once it is longer than any line Redis writes.

use std::fmt;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a simple string.
    Simple(Vec<u8>),
    /// `-ERR message`: an error reply (Redis errors are ASCII; anything not
    /// UTF-8 is refused as a protocol error).
    Error(String),
    /// `:42`: a signed 64-bit integer.
    Integer(i64),
    /// `$3\r\nabc`: a bulk string (binary safe).
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`: no value.
    Null,
    /// `*2\r\n...`: an array of replies, possibly nested.
    Array(Vec<Reply>),
}

impl Reply {
    /// The bytes of a simple or bulk string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Simple(b) | Reply::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The error text, if this is an error reply.
    pub fn as_error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The integer, if this is an integer reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is an error whose first word is `code` (`NOSCRIPT`,
    /// `NOAUTH`, `WRONGPASS`...).
    pub fn is_error_code(&self, code: &str) -> bool {
        self.as_error().is_some_and(|e| e.split(' ').next() == Some(code))
    }
}

/// How much one reply may make us hold. Checked on every length the peer
/// announces, before anything is reserved for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest bulk string, in bytes.
    pub max_bulk: usize,
    /// The longest simple string, error or length line, in bytes, CRLF
    /// excluded (at least 32, so every integer fits).
    pub max_line: usize,
    /// The deepest nesting of arrays (a flat array is depth 1).
    pub max_depth: usize,
    /// The most array elements in one reply, counting every nested array.
    pub max_elements: usize,
    /// The most bytes one reply may take on the wire.
    pub max_reply_bytes: usize,
}

impl Default for Limits {
    /// Room for a directory snapshot of a large cluster (a million names)
    /// and for relayed chat frames, far below what would hurt a server.
    fn default() -> Self {
        Limits {
            max_bulk: 1 << 20,
            max_line: 64 * 1024,
            max_depth: 8,
            max_elements: 1 << 21,
            max_reply_bytes: 256 << 20,
        }
    }
}

/// Which limit a reply broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_bulk`].
    Bulk,
    /// [`Limits::max_line`].
    Line,
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_elements`].
    Elements,
    /// [`Limits::max_reply_bytes`].
    ReplyBytes,
}

/// Why a reply stream cannot be decoded any further. Every error is final:
/// after it the stream cannot be trusted, so the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A reply started with a byte that is none of `+ - : $ *`.
    #[error("RESP: unknown type byte 0x{0:02x}")]
    BadType(u8),
    /// An integer or a length that is not a decimal number (or a negative
    /// length other than -1).
    #[error("RESP: bad integer or length")]
    BadNumber,
    /// A bulk string not followed by CRLF.
    #[error("RESP: bulk string not terminated by CRLF")]
    BadTerminator,
    /// An error reply that is not UTF-8.
    #[error("RESP: error reply is not UTF-8")]
    BadUtf8,
    /// A reply over one of the [`Limits`].
    #[error("RESP: reply over the {0:?} limit")]
    TooLarge(Limit),
}

/// An array being filled: its elements so far and how many are still due.
#[derive(Debug)]
struct OpenArray {
    items: Vec<Reply>,
    due: usize,
}

/// What the decoder is in the middle of.
#[derive(Debug)]
enum State {
    /// Waiting for a type byte and its line.
    Line,
    /// Copying a bulk string's body, then checking its CRLF.
    Bulk {
        data: Vec<u8>,
        body_due: usize,
        crlf_due: usize,
    },
}

/// What reading one line gave.
enum Step {
    /// A whole value.
    Value(Reply),
    /// The start of a bulk string or an array: read on.
    Started,
    /// The line is not complete yet.
    NeedMore,
}

/// Decodes a stream of replies that may arrive split at any byte.
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    start: usize,
    /// How far past `start` a CRLF has already been looked for.
    scanned: usize,
    state: State,
    stack: Vec<OpenArray>,
    /// Elements announced so far by the arrays of the current reply.
    elements: usize,
    /// Bytes consumed so far by the current reply.
    reply_bytes: usize,
    limits: Limits,
    failed: Option<DecodeError>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered())
            .field("depth", &self.stack.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Decoder {
    /// A decoder bounded by `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            state: State::Line,
            stack: Vec::new(),
            elements: 0,
            reply_bytes: 0,
            limits: Limits {
                max_line: limits.max_line.max(32),
                ..limits
            },
            failed: None,
        }
    }

    /// Appends received bytes. Call [`next_reply`](Self::next_reply) until
    /// it returns `Ok(None)` before pushing more, so the buffer stays small.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed, or
    /// the error that ended the stream (sticky).
    pub fn next_reply(&mut self) -> Result<Option<Reply>, DecodeError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        match self.step() {
            Ok(reply) => Ok(reply),
            Err(err) => {
                self.failed = Some(err);
                self.buf = Vec::new();
                self.start = 0;
                self.stack = Vec::new();
                self.state = State::Line;
                Err(err)
            }
        }
    }

    /// Bytes received and not yet consumed (part of a line, or what follows
    /// the last reply). A bulk string's body is moved out as it arrives.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a reply has been started and not finished.
    pub fn mid_reply(&self) -> bool {
        self.reply_bytes > 0 || self.buffered() > 0
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Consumes `n` buffered bytes as part of the current reply.
    fn consume(&mut self, n: usize) -> Result<(), DecodeError> {
        self.start += n;
        self.scanned = 0;
        self.reply_bytes += n;
        if self.reply_bytes > self.limits.max_reply_bytes {
            return Err(DecodeError::TooLarge(Limit::ReplyBytes));
        }
        Ok(())
    }

    /// Decodes values until a whole top-level reply is complete or the
    /// bytes run out.
    fn step(&mut self) -> Result<Option<Reply>, DecodeError> {
        loop {
            let value = match &mut self.state {
                State::Bulk {
                    data,
                    body_due,
                    crlf_due,
                } => {
                    let avail = &self.buf[self.start..];
                    let take = (*body_due).min(avail.len());
                    data.extend_from_slice(&avail[..take]);
                    *body_due -= take;
                    let mut used = take;
                    while *body_due == 0 && *crlf_due > 0 && used < avail.len() {
                        let want = if *crlf_due == 2 { b'\r' } else { b'\n' };
                        if avail[used] != want {
                            return Err(DecodeError::BadTerminator);
                        }
                        *crlf_due -= 1;
                        used += 1;
                    }
                    let done = *body_due == 0 && *crlf_due == 0;
                    let value = if done {
                        Some(Reply::Bulk(std::mem::take(data)))
                    } else {
                        None
                    };
                    self.consume(used)?;
                    match value {
                        Some(v) => {
                            self.state = State::Line;
                            v
                        }
                        None => return Ok(None),
                    }
                }
                State::Line => match self.line()? {
                    Step::Value(v) => v,
                    Step::Started => continue,
                    Step::NeedMore => return Ok(None),
                },
            };
            if let Some(reply) = self.complete(value) {
                return Ok(Some(reply));
            }
        }
    }

    /// Reads a type byte and its line: a whole value, or the start of a
    /// bulk string or a non-empty array.
    fn line(&mut self) -> Result<Step, DecodeError> {
        let avail = &self.buf[self.start..];
        let Some(&kind) = avail.first() else {
            return Ok(Step::NeedMore);
        };
        if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
            return Err(DecodeError::BadType(kind));
        }
        // A CRLF may straddle the previous push: look again from one byte
        // before where the last search ended.
        let from = self.scanned.saturating_sub(1).max(1);
        let Some(at) = memchr::memmem::find(&avail[from..], b"\r\n").map(|i| from + i) else {
            self.scanned = avail.len();
            if avail.len() - 1 > self.limits.max_line + 1 {
                return Err(DecodeError::TooLarge(Limit::Line));
            }
            return Ok(Step::NeedMore);
        };
        let text = &avail[1..at];
        if text.len() > self.limits.max_line {
            return Err(DecodeError::TooLarge(Limit::Line));
        }
        let value = match kind {
            b'+' => Some(Reply::Simple(text.to_vec())),
            b'-' => Some(Reply::Error(
                String::from_utf8(text.to_vec()).map_err(|_| DecodeError::BadUtf8)?,
            )),
            b':' => Some(Reply::Integer(parse_i64(text)?)),
            b'$' => match parse_len(text)? {
                None => Some(Reply::Null),
                Some(len) => {
                    if len > self.limits.max_bulk {
                        return Err(DecodeError::TooLarge(Limit::Bulk));
                    }
                    if self.reply_bytes + at + 2 + len + 2 > self.limits.max_reply_bytes {
                        return Err(DecodeError::TooLarge(Limit::ReplyBytes));
                    }
                    // Reserve what has arrived, not what was announced.
                    let have = avail.len() - (at + 2);
                    self.state = State::Bulk {
                        data: Vec::with_capacity(len.min(have)),
                        body_due: len,
                        crlf_due: 2,
                    };
                    None
                }
            },
            _ => match parse_len(text)? {
                None => Some(Reply::Null),
                Some(0) => Some(Reply::Array(Vec::new())),
                Some(len) => {
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(DecodeError::TooLarge(Limit::Depth));
                    }
                    self.elements = self.elements.saturating_add(len);
                    if self.elements > self.limits.max_elements {
                        return Err(DecodeError::TooLarge(Limit::Elements));
                    }
                    self.stack.push(OpenArray {
                        items: Vec::with_capacity(len.min(1024)),
                        due: len,
                    });
                    None
                }
            },
        };
        self.consume(at + 2)?;
        Ok(value.map_or(Step::Started, Step::Value))
    }

    /// Places a finished value in the array it belongs to; returns the
    /// top-level reply once it is whole.
    fn complete(&mut self, mut value: Reply) -> Option<Reply> {
        loop {
            let Some(open) = self.stack.last_mut() else {
                self.elements = 0;
                self.reply_bytes = 0;
                return Some(value);
            };
            open.items.push(value);
            open.due -= 1;
            if open.due > 0 {
                return None;
            }
            value = Reply::Array(self.stack.pop().expect("an open array").items);
        }
    }
}

/// A decimal `i64` as Redis writes it (Rust's own parser: an optional sign,
/// then digits).
fn parse_i64(text: &[u8]) -> Result<i64, DecodeError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(DecodeError::BadNumber)
}

/// A length: `None` for -1 (null), else a non-negative count.
fn parse_len(text: &[u8]) -> Result<Option<usize>, DecodeError> {
    let n = std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<isize>().ok())
        .ok_or(DecodeError::BadNumber)?;
    match n {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::BadNumber),
        n => Ok(Some(n as usize)),
    }
}

/// Formats `n` in decimal into `digits`, returning the digits used.
fn decimal(digits: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

/// Appends a decimal number without allocating.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(&mut [0; 20], n));
}

/// Appends `*n\r\n`, the head of a command of `n` arguments. Follow it
/// with exactly `n` [`write_bulk`] or [`write_bulk_int`] calls.
pub fn write_array_len(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends one argument as a bulk string.
pub fn write_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    push_decimal(out, arg.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends an integer argument as a bulk string of its decimal digits.
pub fn write_bulk_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0; 20];
    let digits = decimal(&mut digits, n.unsigned_abs());
    out.push(b'$');
    push_decimal(out, (digits.len() + usize::from(n < 0)) as u64);
    out.extend_from_slice(b"\r\n");
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

/// Appends a whole command: an array of bulk strings.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    write_array_len(out, args.len());
    for arg in args {
        write_bulk(out, arg);
    }
}

/// The bytes [`write_command`] would append for `args`.
pub fn command_len(args: &[&[u8]]) -> usize {
    fn digits(mut n: usize) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    3 + digits(args.len()) + args.iter().map(|a| 5 + digits(a.len()) + a.len()).sum::<usize>()
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
