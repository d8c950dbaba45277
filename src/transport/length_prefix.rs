//! The transport of plain TCP connections: each payload after its 4-byte
//! big-endian length (`codec::length_prefix`). Frames that arrive whole in
//! one read are handed to the core where they lie; only a partial frame at
//! the end (or what the core does not take yet) is copied into the decoder.

use std::time::Instant;

use super::MAX_HEADER;
use crate::codec::length_prefix::{self as codec, FrameDecoder, FrameError, HEADER_LEN};
use crate::event::ClientId;
use crate::protocol::{Core, Next, PayloadSource, Violation};

/// One connection's input reassembly.
#[derive(Debug)]
pub(crate) struct LengthPrefix {
    decoder: FrameDecoder,
}

impl LengthPrefix {
    pub fn new(max_frame_bytes: usize) -> Self {
        LengthPrefix {
            decoder: FrameDecoder::new(max_frame_bytes),
        }
    }

    pub fn received(&mut self, core: &mut Core, id: ClientId, bytes: &[u8], now: Instant) {
        let mut input = Input::new(&mut self.decoder, bytes);
        core.take_input(id, &mut input, now);
        if core.is_open(id) {
            input.keep_rest();
        }
    }

    pub fn has_pending_input(&self) -> bool {
        self.decoder.has_frame()
    }
}

/// The 4-byte length before a payload.
pub(super) fn header(len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    out[..HEADER_LEN].copy_from_slice(&codec::header(len));
    HEADER_LEN
}

/// The payloads of one read: first what the decoder holds, then frames
/// split off the fresh bytes where they lie.
struct Input<'a> {
    decoder: &'a mut FrameDecoder,
    fresh: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(decoder: &'a mut FrameDecoder, fresh: &'a [u8]) -> Self {
        if decoder.has_frame() {
            // Complete frames wait (held back, or a framing error): the new
            // bytes queue behind them.
            decoder.push(fresh);
            return Input { decoder, fresh: &[] };
        }
        if decoder.buffered() > 0 {
            // A partial frame is waiting: only the bytes that complete it
            // are copied; the frames after it are handled where they lie.
            let (head, rest) = fresh.split_at(decoder.completing(fresh));
            decoder.push(head);
            return Input { decoder, fresh: rest };
        }
        Input { decoder, fresh }
    }

    /// Keeps what the core did not take (a partial frame, or frames held
    /// back) for the next read.
    fn keep_rest(self) {
        self.decoder.push(self.fresh);
    }
}

impl PayloadSource for Input<'_> {
    fn next_payload(&mut self) -> Next<'_> {
        let max = self.decoder.max_payload();
        let next = if self.decoder.has_frame() {
            self.decoder.next_frame()
        } else {
            match codec::split_frame(self.fresh, max) {
                Ok(Some((payload, used))) => {
                    self.fresh = &self.fresh[used..];
                    Ok(Some(payload))
                }
                Ok(None) => Ok(None),
                Err(err) => {
                    self.decoder.fail(err);
                    self.fresh = &[];
                    Err(err)
                }
            }
        };
        match next {
            Ok(Some(payload)) => Next::Payload(payload),
            Ok(None) => Next::Done,
            Err(err) => Next::Violation(violation(err, max)),
        }
    }
}

/// What a client that broke the framing is told.
fn violation(err: FrameError, max: usize) -> Violation {
    let message = match err {
        FrameError::Empty => "a frame length of 0 is not allowed".to_string(),
        FrameError::TooLarge(n) => format!("frame of {n} bytes is over the limit of {max}"),
    };
    Violation {
        farewell: Some((err.code(), message)),
    }
}
