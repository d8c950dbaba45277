//! The RESP2 decoder fuzz check, shared by the `resp_decoder` fuzz target
//! and `tests/resp_codec.rs` (seed replay and a proptest).
//!
//! Input: five bytes of limits, then chunks (a length byte, that many
//! bytes). Our decoder is fed the chunks one at a time; the `redis-protocol`
//! crate (the oracle) decodes the whole stream at once. They must agree
//! reply for reply. Where they do not, the only differences allowed are the
//! ones our decoder makes on purpose:
//! - it stops at the first bad byte, where the oracle may still be waiting
//!   for the end of the reply (we error, the oracle says "incomplete");
//! - it checks the CRLF after a bulk string (the oracle takes any 2 bytes);
//! - it enforces [`Limits`] (the oracle has none).
//!
//! Besides: errors are sticky and free the buffer, and after draining, the
//! decoder holds at most one partial line.

use chat::codec::resp::{DecodeError, Decoder, Limit, Limits, Reply};
use redis_protocol::resp2::decode::{decode, decode_range};
use redis_protocol::resp2::types::{OwnedFrame, RangeFrame};

/// Our reply in the oracle's type.
pub fn to_oracle(reply: &Reply) -> OwnedFrame {
    match reply {
        Reply::Simple(s) => OwnedFrame::SimpleString(s.clone()),
        Reply::Error(e) => OwnedFrame::Error(e.clone()),
        Reply::Integer(i) => OwnedFrame::Integer(*i),
        Reply::Bulk(b) => OwnedFrame::BulkString(b.clone()),
        Reply::Null => OwnedFrame::Null,
        Reply::Array(a) => OwnedFrame::Array(a.iter().map(to_oracle).collect()),
    }
}

/// Splits the input into limits and chunks.
fn decode_input(data: &[u8]) -> Option<(Limits, Vec<&[u8]>)> {
    let (head, mut rest) = data.split_first_chunk::<5>()?;
    let limits = Limits {
        max_bulk: usize::from(head[0]) * 4,
        max_line: 32 + usize::from(head[1]),
        max_depth: 1 + usize::from(head[2] % 12),
        max_elements: usize::from(head[3]) * 2,
        max_reply_bytes: 16 + usize::from(head[4]) * 32,
    };
    let mut chunks = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        chunks.push(&tail[..n]);
        rest = &tail[n..];
    }
    Some((limits, chunks))
}

/// What the oracle's frame (at `buf[..used]`) says about each limit.
struct Measure {
    depth: usize,
    elements: usize,
    max_bulk: usize,
    bad_terminator: bool,
}

fn measure(buf: &[u8], frame: &RangeFrame, level: usize, m: &mut Measure) {
    match frame {
        RangeFrame::BulkString((start, end)) => {
            m.max_bulk = m.max_bulk.max(end - start);
            if buf.get(*end..*end + 2) != Some(b"\r\n") {
                m.bad_terminator = true;
            }
        }
        RangeFrame::Array(items) => {
            m.depth = m.depth.max(level + 1);
            m.elements += items.len();
            for item in items {
                measure(buf, item, level + 1, m);
            }
        }
        _ => {}
    }
}

/// Whether the oracle's accepting a frame our decoder refused with `err`
/// is one of the differences we make on purpose.
fn refusal_is_deliberate(
    err: DecodeError,
    buf: &[u8],
    frame: &RangeFrame,
    used: usize,
    limits: &Limits,
) -> bool {
    let mut m = Measure {
        depth: 0,
        elements: 0,
        max_bulk: 0,
        bad_terminator: false,
    };
    measure(buf, frame, 0, &mut m);
    match err {
        DecodeError::BadTerminator => m.bad_terminator,
        DecodeError::TooLarge(Limit::Bulk) => m.max_bulk > limits.max_bulk,
        DecodeError::TooLarge(Limit::Depth) => m.depth > limits.max_depth,
        DecodeError::TooLarge(Limit::Elements) => m.elements > limits.max_elements,
        // Every line lies inside the reply, so a line over the limit means
        // a reply longer than it.
        DecodeError::TooLarge(Limit::Line) => used > limits.max_line,
        DecodeError::TooLarge(Limit::ReplyBytes) => used > limits.max_reply_bytes,
        _ => false,
    }
}

/// Our decoder over the chunks: its replies and the error that stopped it.
pub fn ours(chunks: &[&[u8]], limits: Limits) -> (Vec<Reply>, Option<DecodeError>) {
    let mut dec = Decoder::new(limits);
    let limits = dec.limits();
    let mut got = Vec::new();
    for chunk in chunks {
        dec.push(chunk);
        loop {
            match dec.next_reply() {
                Ok(Some(r)) => got.push(r),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(dec.buffered(), 0, "a failed decoder keeps its buffer");
                    dec.push(b"+OK\r\n");
                    assert_eq!(dec.next_reply(), Err(e), "the error is not sticky");
                    return (got, Some(e));
                }
            }
        }
        // A partial line: the type byte, up to max_line + 1 bytes, a CR.
        assert!(
            dec.buffered() <= limits.max_line + 3,
            "{} bytes buffered after draining, max_line {}",
            dec.buffered(),
            limits.max_line
        );
    }
    (got, None)
}

/// Checks one input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Some((limits, chunks)) = decode_input(data) else {
        return;
    };
    let limits = Decoder::new(limits).limits();
    let stream = chunks.concat();
    let (got, err) = ours(&chunks, limits);
    let mut at = 0;
    for (i, reply) in got.iter().enumerate() {
        match decode(&stream[at..]) {
            Ok(Some((want, used))) => {
                assert_eq!(to_oracle(reply), want, "reply {i} differs from the oracle");
                at += used;
            }
            other => panic!("reply {i}: we decoded {reply:?}, the oracle said {other:?}"),
        }
    }
    let i = got.len();
    // The oracle recurses once per level: spare it what we refused as too deep.
    if err == Some(DecodeError::TooLarge(Limit::Depth)) {
        return;
    }
    // The ranges, then the owned frame (which also checks error texts are
    // UTF-8).
    let oracle = decode_range(&stream[at..]).map(|o| {
        o.map(|(frame, used)| {
            let owned = decode(&stream[at..]).map(|o| o.expect("decoded as ranges").0);
            (frame, used, owned)
        })
    });
    match (err, oracle) {
        // Both refuse the stream (maybe for different reasons).
        (Some(_), Err(_)) | (Some(_), Ok(Some((_, _, Err(_))))) => {}
        // We refuse early, before the end of the reply the oracle awaits.
        (Some(_), Ok(None)) => {}
        (Some(e), Ok(Some((frame, used, Ok(owned))))) => assert!(
            refusal_is_deliberate(e, &stream[at..], &frame, used, &limits),
            "reply {i}: we refused it ({e:?}), the oracle accepted {owned:?}"
        ),
        // Both wait for more.
        (None, Ok(None)) => {}
        (None, other) => panic!("reply {i}: we wait for more bytes, the oracle said {other:?}"),
    }
}
