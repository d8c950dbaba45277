//! The length-prefix codec of plain TCP connections: a 4-byte big-endian
//! payload length, then the payload. No sockets here: bytes in, payloads
//! out.

use crate::code::Code;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Largest buffer a decoder keeps once it holds nothing.
const IDLE_KEEP: usize = 4096;

/// Why a byte stream cannot be decoded any further. Both end the connection:
/// after a bad length the framing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A length prefix of 0.
    Empty,
    /// A length prefix above the limit.
    TooLarge(u32),
}

impl FrameError {
    /// The protocol's error code for this failure.
    pub fn code(self) -> Code {
        match self {
            FrameError::Empty => Code::EmptyFrame,
            FrameError::TooLarge(_) => Code::FrameTooLarge,
        }
    }
}

/// Reassembles frames from a stream that may be split at any byte.
///
/// The buffer only ever holds bytes that were received, so it never grows
/// past one maximal frame plus one read: the length is checked as soon as
/// its 4 bytes are in, before anything is reserved for the payload.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet handed out.
    start: usize,
    max_payload: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that accepts payloads of 1 to `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_payload,
            failed: None,
        }
    }

    /// Appends received bytes. Call [`next_frame`](Self::next_frame) until it
    /// returns `Ok(None)` before pushing more, so the buffer stays small.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > IDLE_KEEP && bytes.len() <= IDLE_KEEP {
                // The big frame that grew it is done: an idle connection
                // keeps no big buffer.
                self.buf = Vec::new();
            }
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete payload, `Ok(None)` when more bytes are needed, or
    /// the framing error (sticky: the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        match split_frame(&self.buf[self.start..], self.max_payload) {
            Ok(Some((_, used))) => {
                let from = self.start + HEADER_LEN;
                self.start += used;
                Ok(Some(&self.buf[from..self.start]))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.fail(err);
                Err(err)
            }
        }
    }

    /// Marks the stream as broken (by a bad length found here or by a
    /// caller that split frames itself) and frees the buffer.
    pub fn fail(&mut self, err: FrameError) {
        self.failed = Some(err);
        self.buf = Vec::new();
        self.start = 0;
    }

    /// Whether [`next_frame`](Self::next_frame) would return a frame or an
    /// error (as opposed to `Ok(None)`).
    pub fn has_frame(&self) -> bool {
        self.failed.is_some() || !matches!(split_frame(&self.buf[self.start..], self.max_payload), Ok(None))
    }

    /// How many of `more` (bytes that follow the buffered ones) complete
    /// the partial frame at the front: all of `more` if they do not; at
    /// most the header's missing bytes when the length is bad (the error
    /// comes out of [`next_frame`](Self::next_frame)). Only meaningful when
    /// no complete frame is buffered.
    pub fn completing(&self, more: &[u8]) -> usize {
        let pending = &self.buf[self.start..];
        let have = pending.len().min(HEADER_LEN);
        let need_header = HEADER_LEN - have;
        if more.len() < need_header {
            return more.len();
        }
        let mut header = [0u8; HEADER_LEN];
        header[..have].copy_from_slice(&pending[..have]);
        header[have..].copy_from_slice(&more[..need_header]);
        let len = u32::from_be_bytes(header) as usize;
        if len == 0 || len > self.max_payload {
            return need_header;
        }
        (HEADER_LEN + len - pending.len()).min(more.len())
    }

    /// The largest payload accepted.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Bytes received but not yet returned as a frame (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Splits the first frame off `bytes`: its payload and how many bytes it
/// took, `Ok(None)` if it is not complete yet, or the framing error.
pub fn split_frame(bytes: &[u8], max_payload: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*header);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len as usize > max_payload {
        return Err(FrameError::TooLarge(len));
    }
    let end = HEADER_LEN + len as usize;
    Ok(bytes.get(HEADER_LEN..end).map(|payload| (payload, end)))
}

/// The length prefix of a payload of `len` bytes (at most `u32::MAX`: the
/// callers' `max_frame_bytes` is validated to fit).
pub fn header(len: usize) -> [u8; HEADER_LEN] {
    debug_assert!(u32::try_from(len).is_ok());
    (len as u32).to_be_bytes()
}

/// `payload` framed: its length prefix, then the payload. For clients and
/// tests; the server gathers the header and the shared payload into one
/// write instead of copying.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header(payload.len()));
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(dec: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame()? {
            out.push(f.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn decodes_one_frame_and_waits_for_more() {
        let mut dec = FrameDecoder::new(100);
        dec.push(&[0, 0, 0, 3, b'a']);
        assert_eq!(dec.next_frame(), Ok(None));
        dec.push(b"bc\x00");
        assert_eq!(dec.next_frame(), Ok(Some(&b"abc"[..])));
        assert_eq!(dec.next_frame(), Ok(None));
        assert_eq!(dec.buffered(), 1);
    }

    #[test]
    fn rejects_zero_and_oversized_lengths_before_the_payload() {
        let mut dec = FrameDecoder::new(100);
        dec.push(&[0, 0, 0, 0]);
        assert_eq!(dec.next_frame(), Err(FrameError::Empty));
        let mut dec = FrameDecoder::new(100);
        dec.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(dec.next_frame(), Err(FrameError::TooLarge(u32::MAX)));
        // Sticky: nothing after a framing error is decoded.
        dec.push(&[0, 0, 0, 1, b'x']);
        assert_eq!(dec.next_frame(), Err(FrameError::TooLarge(u32::MAX)));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn accepts_exactly_the_limit() {
        let mut dec = FrameDecoder::new(5);
        dec.push(&encode(b"12345"));
        assert_eq!(dec.next_frame(), Ok(Some(&b"12345"[..])));
        dec.push(&encode(b"123456"));
        assert_eq!(dec.next_frame(), Err(FrameError::TooLarge(6)));
    }

    #[test]
    fn completing_counts_only_the_bytes_that_finish_the_partial_frame() {
        let mut dec = FrameDecoder::new(100);
        // Header split: 2 of 4 length bytes buffered.
        dec.push(&[0, 0]);
        assert_eq!(dec.completing(&[0]), 1, "not even the header is complete");
        assert_eq!(dec.completing(&[0, 3, b'a', b'b', b'c', 0, 0]), 5);
        // A bad length: only the header's bytes, then the error.
        assert_eq!(dec.completing(&[0xff, 0xff, 1, 2, 3]), 2);
        // Payload split: completed exactly, or not yet.
        let mut dec = FrameDecoder::new(100);
        dec.push(&[0, 0, 0, 3, b'a']);
        assert_eq!(dec.completing(b"bc"), 2);
        assert_eq!(dec.completing(b"b"), 1);
        assert_eq!(dec.completing(b"bcXYZ"), 2);
    }

    #[test]
    fn encode_prefixes_the_length() {
        let f = encode(br#"{"type":"who"}"#);
        assert_eq!(&f[..4], &[0, 0, 0, 14]);
        assert_eq!(&f[4..], br#"{"type":"who"}"#);
    }

    proptest! {
        /// Any stream of valid frames, split at any points, decodes to the
        /// same frames in the same order.
        #[test]
        fn split_streams_decode_to_the_same_frames(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let stream: Vec<u8> = payloads.iter().flat_map(|p| encode(p)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut dec = FrameDecoder::new(300);
            let mut got = Vec::new();
            for w in points.windows(2) {
                dec.push(&stream[w[0]..w[1]]);
                got.extend(decode_all(&mut dec).unwrap());
            }
            prop_assert_eq!(got, payloads);
            prop_assert_eq!(dec.buffered(), 0);
        }

        /// Garbage yields frames or a clean error, never a panic, and the
        /// buffer never holds more than a frame and a chunk.
        #[test]
        fn garbage_never_panics(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..40),
        ) {
            let mut dec = FrameDecoder::new(128);
            for chunk in &chunks {
                dec.push(chunk);
                match decode_all(&mut dec) {
                    Ok(frames) => for f in frames {
                        prop_assert!(!f.is_empty() && f.len() <= 128);
                    },
                    Err(_) => prop_assert_eq!(dec.buffered(), 0),
                }
                prop_assert!(dec.buffered() <= 128 + 4 + 64);
            }
        }
    }
}
