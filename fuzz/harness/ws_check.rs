//! The WebSocket decoder fuzz check, shared by the `ws_decoder` fuzz target
//! and the seed replay in `tests/ws_fuzz.rs`.
//!
//! Input: two bytes of big-endian `max_message`, a flag byte (bit 0: accept
//! binary messages; bit 1: the server has sent its close first), then
//! chunks, each a length byte and that many bytes. The stream is decoded
//! three ways: whole (frames handed out in place), chunk by chunk, and chunk
//! by chunk pulling one event per call and resuming from what the decoder
//! kept. All three must give the same events, and every event must respect
//! the rules: text is UTF-8 and within the limit, binary only when
//! accepted, control payloads within 125 bytes, close codes valid, nothing
//! after an error or a close, buffers bounded and freed after an error.

use chat::codec::ws::{frame, Decoder, Event, WsError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(WsError),
}

struct Setup {
    max: usize,
    binary: bool,
    closed_first: bool,
}

impl Setup {
    fn decoder(&self) -> Decoder {
        let mut dec = Decoder::new(self.max).accept_binary(self.binary);
        if self.closed_first {
            assert!(dec.close(1001, "going away").is_some());
        }
        dec
    }

    /// Checks one event against the rules and turns it into a `Got`.
    fn check(&self, ev: Result<Event<'_>, WsError>) -> Got {
        match ev {
            Ok(Event::Text(t)) => {
                assert!(t.len() <= self.max, "text over the limit");
                assert!(std::str::from_utf8(t).is_ok(), "text not UTF-8");
                assert!(!self.closed_first, "text after the server's close");
                Got::Text(t.to_vec())
            }
            Ok(Event::Binary(b)) => {
                assert!(self.binary, "binary while refused");
                assert!(b.len() <= self.max, "binary over the limit");
                Got::Binary(b.to_vec())
            }
            Ok(Event::Ping(p)) => {
                assert!(p.len() <= 125);
                Got::Ping(p.to_vec())
            }
            Ok(Event::Pong(p)) => {
                assert!(p.len() <= 125);
                Got::Pong(p.to_vec())
            }
            Ok(Event::Close { code, reason }) => {
                assert!(code.is_none_or(frame::is_valid_close_code), "bad close code");
                assert!(reason.len() <= 123);
                Got::Close(code, reason.to_string())
            }
            Err(e) => Got::Error(e),
        }
    }
}

fn is_final(got: &Got) -> bool {
    matches!(got, Got::Error(_) | Got::Close(..))
}

/// Pulls every event from one input.
fn pull_all(setup: &Setup, dec: &mut Decoder, bytes: &[u8], out: &mut Vec<Got>) {
    let mut bytes = bytes.to_vec();
    let mut input = dec.input(&mut bytes);
    while let Some(ev) = input.next_event() {
        let got = setup.check(ev);
        assert!(!out.last().is_some_and(is_final), "an event after the end");
        out.push(got);
    }
}

fn after_input(setup: &Setup, dec: &Decoder, out: &[Got]) {
    if dec.failed().is_some() {
        assert_eq!(dec.heap_capacity(), 0, "buffers freed after an error");
    }
    if !dec.has_pending() {
        assert!(dec.buffered() <= setup.max + 14 + 125, "buffered past the limit");
    }
    if out.last().is_some_and(is_final) {
        assert!(!dec.has_pending(), "input kept after the end");
    }
}

/// Checks one input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let setup = Setup {
        max: usize::from(u16::from_be_bytes([head[0], head[1]])),
        binary: head[2] & 1 != 0,
        closed_first: head[2] & 2 != 0,
    };
    let mut chunks = Vec::new();
    let mut rest = rest;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        chunks.push(&tail[..n]);
        rest = &tail[n..];
    }
    let stream = chunks.concat();

    let mut whole = Vec::new();
    let mut dec = setup.decoder();
    pull_all(&setup, &mut dec, &stream, &mut whole);
    after_input(&setup, &dec, &whole);

    let mut split = Vec::new();
    let mut dec = setup.decoder();
    for chunk in &chunks {
        pull_all(&setup, &mut dec, chunk, &mut split);
        after_input(&setup, &dec, &split);
    }
    assert_eq!(split, whole, "chunked decoding differs from whole");

    // One event per call, resuming from what the decoder kept.
    let mut stepped = Vec::new();
    let mut dec = setup.decoder();
    let step = |dec: &mut Decoder, bytes: &mut [u8], out: &mut Vec<Got>| -> bool {
        let mut input = dec.input(bytes);
        match input.next_event() {
            Some(ev) => {
                out.push(setup.check(ev));
                true
            }
            None => false,
        }
    };
    for chunk in &chunks {
        let mut bytes = chunk.to_vec();
        let mut more = step(&mut dec, &mut bytes, &mut stepped);
        while more && dec.has_pending() {
            more = step(&mut dec, &mut [], &mut stepped);
        }
    }
    while step(&mut dec, &mut [], &mut stepped) {}
    assert_eq!(stepped, whole, "one event at a time differs from whole");
}
