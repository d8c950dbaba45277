//! The frame decoder fuzz check, shared by the `frame_decoder` fuzz target
//! and the corpus replay in `tests/fuzz_regressions.rs`.
//!
//! Input: two bytes of big-endian `max_payload`, then chunks, each a length
//! byte and that many bytes. The decoder is fed the chunks one at a time and
//! must agree with a plain reference decoder run over the whole stream at
//! once, whatever the split; `has_frame` must predict `next_frame`; the
//! buffer must never hold a whole frame's worth after draining; errors are
//! sticky and free the buffer.

use chat::frame::{FrameDecoder, FrameError, HEADER_LEN};

/// The frames of `stream`, the error that stopped it if any, and how many
/// bytes are left over (an incomplete frame).
fn reference(stream: &[u8], max: usize) -> (Vec<&[u8]>, Option<FrameError>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= HEADER_LEN {
        let len = u32::from_be_bytes(stream[at..at + HEADER_LEN].try_into().unwrap());
        if len == 0 {
            return (frames, Some(FrameError::Empty), 0);
        }
        if len as usize > max {
            return (frames, Some(FrameError::TooLarge(len)), 0);
        }
        let end = at + HEADER_LEN + len as usize;
        if end > stream.len() {
            break;
        }
        frames.push(&stream[at + HEADER_LEN..end]);
        at = end;
    }
    (frames, None, stream.len() - at)
}

/// Splits the input into `max_payload` and chunks.
fn decode_input(data: &[u8]) -> Option<(usize, Vec<&[u8]>)> {
    let (head, mut rest) = data.split_first_chunk::<2>()?;
    let max = usize::from(u16::from_be_bytes(*head)).max(1);
    let mut chunks = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        chunks.push(&tail[..n]);
        rest = &tail[n..];
    }
    Some((max, chunks))
}

/// Checks one input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Some((max, chunks)) = decode_input(data) else {
        return;
    };
    let stream = chunks.concat();
    let (want_frames, want_err, want_left) = reference(&stream, max);
    let mut dec = FrameDecoder::new(max);
    let mut got = Vec::new();
    let mut err = None;
    for chunk in &chunks {
        dec.push(chunk);
        loop {
            let predicted = dec.has_frame();
            match dec.next_frame() {
                Ok(Some(f)) => {
                    assert!(predicted, "has_frame was false before a frame");
                    assert!(
                        !f.is_empty() && f.len() <= max,
                        "frame of {} bytes, max {max}",
                        f.len()
                    );
                    got.push(f.to_vec());
                }
                Ok(None) => {
                    assert!(!predicted, "has_frame was true before Ok(None)");
                    break;
                }
                Err(e) => {
                    assert!(predicted, "has_frame was false before an error");
                    assert_eq!(dec.buffered(), 0, "a failed decoder keeps its buffer");
                    if let Some(first) = err {
                        assert_eq!(first, e, "the error changed: not sticky");
                    }
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(
            dec.buffered() < HEADER_LEN + max,
            "{} bytes buffered after draining, max payload {max}",
            dec.buffered()
        );
    }
    assert_eq!(got, want_frames, "frames differ from the reference");
    assert_eq!(err, want_err, "error differs from the reference");
    if err.is_none() {
        assert_eq!(dec.buffered(), want_left, "leftover differs from the reference");
    }
}
