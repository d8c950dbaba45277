//! The frame decoder and encoder in memory: exact cases for every rule,
//! then properties over random frame streams split at random places.

use proptest::prelude::*;

use super::frame::{self, Header, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};
use super::*;

/// A client frame: masked with `mask`, with these FIN and RSV bits.
fn client_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | (rsv << 4) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn text(payload: &str) -> Vec<u8> {
    client_frame(true, 0, OP_TEXT, payload.as_bytes(), [1, 2, 3, 4])
}

/// An event with owned bytes, to compare runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(WsError),
}

fn own(ev: Result<Event<'_>, WsError>) -> Got {
    match ev {
        Ok(Event::Text(t)) => Got::Text(t.to_vec()),
        Ok(Event::Binary(b)) => Got::Binary(b.to_vec()),
        Ok(Event::Ping(p)) => Got::Ping(p.to_vec()),
        Ok(Event::Pong(p)) => Got::Pong(p.to_vec()),
        Ok(Event::Close { code, reason }) => Got::Close(code, reason.to_string()),
        Err(e) => Got::Error(e),
    }
}

/// Every event from `bytes` fed in pieces cut at `cuts`, pulling all.
fn decode_split(dec: &mut Decoder, bytes: &[u8], cuts: &[usize]) -> Vec<Got> {
    let mut got = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    for to in cuts {
        let mut piece = bytes[from..to].to_vec();
        let mut input = dec.input(&mut piece);
        while let Some(ev) = input.next_event() {
            got.push(own(ev));
        }
        from = to;
    }
    got
}

fn decode(bytes: &[u8]) -> Vec<Got> {
    decode_split(&mut Decoder::new(1 << 20), bytes, &[])
}

fn first_error(dec: &mut Decoder, bytes: &[u8]) -> Option<WsError> {
    let mut bytes = bytes.to_vec();
    let mut input = dec.input(&mut bytes);
    while let Some(ev) = input.next_event() {
        if let Err(e) = ev {
            return Some(e);
        }
    }
    None
}

#[test]
fn a_whole_text_frame_is_handed_out_in_place() {
    let mut bytes = text("hello");
    let range = bytes.as_ptr_range();
    let mut dec = Decoder::new(100);
    let mut input = dec.input(&mut bytes);
    match input.next_event() {
        Some(Ok(Event::Text(t))) => {
            assert_eq!(t, b"hello");
            assert!(range.contains(&t.as_ptr()), "borrowed from the caller's buffer");
        }
        other => panic!("{other:?}"),
    }
    assert!(input.next_event().is_none());
    drop(input);
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.heap_capacity(), 0, "nothing was copied");
}

#[test]
fn every_length_encoding_round_trips() {
    for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: String = "abcdefghij".chars().cycle().take(len).collect();
        assert_eq!(
            decode(&text(&payload)),
            vec![Got::Text(payload.into_bytes())],
            "{len}"
        );
    }
}

#[test]
fn a_fragmented_message_is_reassembled_around_a_ping() {
    let mut bytes = client_frame(false, 0, OP_TEXT, b"he", [9, 8, 7, 6]);
    bytes.extend(client_frame(true, 0, OP_PING, b"p", [1, 1, 1, 1]));
    bytes.extend(client_frame(false, 0, OP_CONTINUATION, b"ll", [5, 5, 5, 5]));
    bytes.extend(client_frame(true, 0, OP_CONTINUATION, b"o", [0, 0, 0, 0]));
    bytes.extend(client_frame(true, 0, OP_PONG, b"", [3, 3, 3, 3]));
    assert_eq!(
        decode(&bytes),
        vec![
            Got::Ping(b"p".to_vec()),
            Got::Text(b"hello".to_vec()),
            Got::Pong(vec![])
        ]
    );
}

#[test]
fn a_binary_message_is_refused_from_its_header_with_1003() {
    let bytes = client_frame(true, 0, OP_BINARY, &[0; 1000], [1, 2, 3, 4]);
    let mut dec = Decoder::new(100_000);
    let err = first_error(&mut dec, &bytes[..8]).expect("refused");
    assert_eq!(err, WsError::Binary);
    assert_eq!(err.close_code(), 1003);
    assert_eq!(dec.heap_capacity(), 0);
    let mut accepting = Decoder::new(100_000).accept_binary(true);
    assert_eq!(
        decode_split(&mut accepting, &bytes, &[3, 500]),
        vec![Got::Binary(vec![0; 1000])]
    );
}

#[test]
fn an_oversized_message_is_refused_from_its_header_with_1009() {
    let big = client_frame(true, 0, OP_TEXT, &[b'a'; 70_000], [1, 2, 3, 4]);
    let mut dec = Decoder::new(65_536);
    // Only the 14-byte header: refused before any payload arrives.
    let err = first_error(&mut dec, &big[..14]).expect("refused");
    assert_eq!(err, WsError::TooBig(70_000, 65_536));
    assert_eq!(err.close_code(), 1009);
    assert_eq!(dec.heap_capacity(), 0);

    // Fragments count together: 40,000 + 30,000 is over 65,536.
    let mut bytes = client_frame(false, 0, OP_TEXT, &[b'a'; 40_000], [1, 2, 3, 4]);
    bytes.extend(client_frame(
        true,
        0,
        OP_CONTINUATION,
        &[b'a'; 30_000],
        [1, 2, 3, 4],
    ));
    let mut dec = Decoder::new(65_536);
    assert_eq!(
        first_error(&mut dec, &bytes[..40_008 + 8]),
        Some(WsError::TooBig(70_000, 65_536))
    );

    // Exactly at the limit is fine, fragmented or not.
    let mut bytes = client_frame(false, 0, OP_TEXT, &[b'a'; 30_000], [1, 2, 3, 4]);
    bytes.extend(client_frame(
        true,
        0,
        OP_CONTINUATION,
        &[b'a'; 35_536],
        [1, 2, 3, 4],
    ));
    let got = decode_split(&mut Decoder::new(65_536), &bytes, &[]);
    assert_eq!(got, vec![Got::Text(vec![b'a'; 65_536])]);
}

#[test]
fn invalid_utf8_fails_fast_across_fragments_with_1007() {
    // The first fragment is valid; the second makes it invalid (a code
    // point past U+10FFFF): the error comes with the second, before FIN.
    let mut dec = Decoder::new(1000);
    let first = client_frame(false, 0, OP_TEXT, "κόσμε".as_bytes(), [1, 2, 3, 4]);
    assert_eq!(first_error(&mut dec, &first), None);
    let second = client_frame(false, 0, OP_CONTINUATION, &[0xF4, 0x90, 0x80, 0x80], [1, 2, 3, 4]);
    let err = first_error(&mut dec, &second).expect("invalid");
    assert_eq!(err, WsError::InvalidUtf8);
    assert_eq!(err.close_code(), 1007);

    // Within one frame whose payload arrives in pieces, too.
    let whole = client_frame(true, 0, OP_TEXT, b"abc\xF4\x90\x80\x80def", [1, 2, 3, 4]);
    let mut dec = Decoder::new(1000);
    assert_eq!(first_error(&mut dec, &whole[..6 + 3]), None);
    assert_eq!(first_error(&mut dec, &whole[9..11]), Some(WsError::InvalidUtf8));

    // A character split between fragments is fine; one cut off at the
    // end of the message is not.
    let mut ok = client_frame(false, 0, OP_TEXT, b"\xCE", [1, 2, 3, 4]);
    ok.extend(client_frame(true, 0, OP_CONTINUATION, b"\xBA", [1, 2, 3, 4]));
    assert_eq!(decode(&ok), vec![Got::Text("κ".as_bytes().to_vec())]);
    let cut = client_frame(true, 0, OP_TEXT, b"ab\xCE", [1, 2, 3, 4]);
    assert_eq!(decode(&cut), vec![Got::Error(WsError::InvalidUtf8)]);
    assert_eq!(
        decode_split(&mut Decoder::new(100), &cut, &[7]),
        vec![Got::Error(WsError::InvalidUtf8)]
    );
}

#[test]
fn protocol_violations_close_with_1002() {
    let m = [1, 2, 3, 4];
    let mut unmasked = client_frame(true, 0, OP_TEXT, b"hi", m);
    unmasked[1] &= 0x7F;
    let mut top_bit = vec![0x81, 0xFF];
    top_bit.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    let cases: Vec<(Vec<u8>, Violation)> = vec![
        (unmasked, Violation::Unmasked),
        (client_frame(true, 1, OP_TEXT, b"hi", m), Violation::ReservedBits),
        (client_frame(true, 4, OP_TEXT, b"hi", m), Violation::ReservedBits),
        (client_frame(true, 0, 3, b"", m), Violation::ReservedOpcode(3)),
        (client_frame(true, 0, 0xB, b"", m), Violation::ReservedOpcode(0xB)),
        (
            client_frame(false, 0, OP_PING, b"", m),
            Violation::FragmentedControl,
        ),
        (
            client_frame(true, 0, OP_PING, &[0; 126], m),
            Violation::ControlTooLong(126),
        ),
        (
            client_frame(true, 0, OP_CONTINUATION, b"x", m),
            Violation::UnexpectedContinuation,
        ),
        (
            [
                client_frame(false, 0, OP_TEXT, b"a", m),
                client_frame(true, 0, OP_TEXT, b"b", m),
            ]
            .concat(),
            Violation::ExpectedContinuation,
        ),
        (top_bit, Violation::LengthTopBit),
        (client_frame(true, 0, OP_CLOSE, &[3], m), Violation::CloseLength),
        (
            client_frame(true, 0, OP_CLOSE, &1005u16.to_be_bytes(), m),
            Violation::BadCloseCode(1005),
        ),
        (
            client_frame(true, 0, OP_CLOSE, &999u16.to_be_bytes(), m),
            Violation::BadCloseCode(999),
        ),
        (
            client_frame(true, 0, OP_CLOSE, &5000u16.to_be_bytes(), m),
            Violation::BadCloseCode(5000),
        ),
    ];
    for (bytes, violation) in cases {
        let err =
            first_error(&mut Decoder::new(1000), &bytes).unwrap_or_else(|| panic!("{violation:?} accepted"));
        assert_eq!(err, WsError::Protocol(violation));
        assert_eq!(err.close_code(), 1002);
        // Split at every byte: the same verdict.
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        let got = decode_split(&mut Decoder::new(1000), &bytes, &cuts);
        assert_eq!(got.last(), Some(&Got::Error(err)), "{violation:?} split");
    }
    let bad_reason = client_frame(true, 0, OP_CLOSE, b"\x03\xE8\xFF", m);
    assert_eq!(
        first_error(&mut Decoder::new(100), &bad_reason),
        Some(WsError::InvalidUtf8)
    );
}

#[test]
fn an_error_stops_decoding_and_frees_buffers() {
    let mut bytes = client_frame(false, 0, OP_TEXT, &[b'a'; 5000], [1, 2, 3, 4]);
    bytes.extend(client_frame(true, 0, OP_TEXT, b"x", [1, 2, 3, 4]));
    bytes.extend(text("never seen"));
    let mut dec = Decoder::new(100_000);
    let got = decode_split(&mut dec, &bytes, &[100]);
    assert_eq!(
        got,
        vec![Got::Error(WsError::Protocol(Violation::ExpectedContinuation))]
    );
    assert_eq!(
        dec.failed(),
        Some(WsError::Protocol(Violation::ExpectedContinuation))
    );
    assert_eq!(dec.heap_capacity(), 0);
    assert!(decode_split(&mut dec, &text("more"), &[]).is_empty());
    let close = dec
        .close_for(&WsError::Protocol(Violation::ExpectedContinuation))
        .expect("first close");
    assert_eq!(&close.payload()[..2], &1002u16.to_be_bytes());
}

#[test]
fn the_closing_handshake_is_tracked_both_ways() {
    // The client closes first: the server answers, and the handshake is done.
    let mut bytes = client_frame(true, 0, OP_CLOSE, b"\x03\xE8bye", [1, 2, 3, 4]);
    bytes.extend(text("after close"));
    let mut dec = Decoder::new(100);
    assert_eq!(dec.closing(), Closing::Open);
    assert_eq!(
        decode_split(&mut dec, &bytes, &[]),
        vec![Got::Close(Some(1000), "bye".into())]
    );
    assert_eq!(dec.closing(), Closing::Received);
    assert!(!dec.has_pending(), "nothing after the close is kept");
    let reply = dec.close(1000, "").expect("an answer");
    assert_eq!(&*reply, &[0x88, 2, 0x03, 0xE8]);
    assert_eq!(dec.closing(), Closing::Done);
    assert!(dec.close(1000, "").is_none());

    // The server closes first: what crosses its close is dropped, the
    // client's close completes the handshake.
    let mut dec = Decoder::new(100);
    assert!(dec.close(1001, "shutdown").is_some());
    assert_eq!(dec.closing(), Closing::Sent);
    let mut bytes = text("in flight");
    bytes.extend(client_frame(true, 0, OP_PING, b"p", [1, 2, 3, 4]));
    bytes.extend(client_frame(true, 0, OP_CLOSE, b"", [1, 2, 3, 4]));
    assert_eq!(
        decode_split(&mut dec, &bytes, &[3]),
        vec![Got::Close(None, String::new())]
    );
    assert_eq!(dec.closing(), Closing::Done);
}

#[test]
fn a_caller_may_stop_pulling_and_resume_later() {
    let bytes = [text("one"), text("two"), text("three")].concat();
    let mut dec = Decoder::new(100);
    let mut fresh = bytes.clone();
    {
        let mut input = dec.input(&mut fresh);
        assert_eq!(input.next_event().map(own), Some(Got::Text(b"one".to_vec())));
        // Stop here (rate limited): the rest stays in the decoder.
    }
    assert!(dec.has_pending());
    assert_eq!(dec.buffered(), bytes.len() - text("one").len());
    {
        let mut input = dec.resume();
        assert_eq!(input.next_event().map(own), Some(Got::Text(b"two".to_vec())));
    }
    // New bytes come after what was pending.
    let mut more = text("four");
    let mut input = dec.input(&mut more);
    assert_eq!(input.next_event().map(own), Some(Got::Text(b"three".to_vec())));
    assert_eq!(input.next_event().map(own), Some(Got::Text(b"four".to_vec())));
    assert!(input.next_event().is_none());
    drop(input);
    assert!(!dec.has_pending());
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn memory_grows_with_a_message_and_shrinks_after() {
    let mut dec = Decoder::new(1 << 20);
    assert_eq!(dec.heap_capacity(), 0);
    let big = client_frame(true, 0, OP_TEXT, &[b'x'; 300_000], [1, 2, 3, 4]);
    let mut seen = 0;
    for piece in big.chunks(16_384) {
        let mut piece = piece.to_vec();
        let mut input = dec.input(&mut piece);
        while let Some(ev) = input.next_event() {
            assert_eq!(own(ev), Got::Text(vec![b'x'; 300_000]));
            seen += 1;
        }
        drop(input);
        assert!(
            dec.heap_capacity() <= 2 * 300_000,
            "grows only as the message needs"
        );
    }
    assert_eq!(seen, 1);
    // The next call releases the message buffer.
    assert!(decode_split(&mut dec, &[], &[]).is_empty());
    assert!(dec.heap_capacity() <= IDLE_KEEP, "{}", dec.heap_capacity());
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn server_frames_have_the_shortest_header() {
    assert_eq!(&*Header::text(0), &[0x81, 0]);
    assert_eq!(&*Header::text(125), &[0x81, 125]);
    assert_eq!(&*Header::text(126), &[0x81, 126, 0, 126]);
    assert_eq!(&*Header::text(65535), &[0x81, 126, 0xFF, 0xFF]);
    assert_eq!(&*Header::text(65536), &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    for len in [0, 125, 126, 65535, 65536] {
        assert_eq!(Header::len_for(len), Header::text(len).len());
    }
    assert_eq!(&*frame::pong(b"abc"), &[0x8A, 3, b'a', b'b', b'c']);
    assert_eq!(&*frame::ping(b""), &[0x89, 0]);
    assert_eq!(&*frame::close_empty(), &[0x88, 0]);
    // A long reason is cut at a character boundary within 123 bytes.
    let reason = "é".repeat(100);
    let close = frame::close(1008, &reason);
    assert_eq!(close.len(), 2 + 2 + 122);
    assert!(std::str::from_utf8(&close.payload()[2..]).is_ok());
    assert_eq!(frame::encode(OP_TEXT, b"hi"), vec![0x81, 2, b'h', b'i']);
}

#[test]
fn close_codes_peers_may_send() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
    ] {
        assert!(frame::is_valid_close_code(code), "{code}");
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert!(!frame::is_valid_close_code(code), "{code}");
    }
}

/// A valid client stream: its bytes and the events it decodes to.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Got>)> {
    let piece = prop_oneof![
        Just(String::new()),
        "[a-z ]{1,40}",
        "\\PC{1,30}", // any printable Unicode, multi-byte characters included
        "[a-z]{200,300}",
    ];
    let message = (
        prop::collection::vec(piece, 1..4),
        any::<[u8; 4]>(),
        any::<bool>(),
        any::<u8>(),
    );
    prop::collection::vec(message, 1..8).prop_map(|messages| {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for (fragments, mask, with_ping, ping_byte) in messages {
            let n = fragments.len();
            for (i, f) in fragments.iter().enumerate() {
                let op = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                bytes.extend(client_frame(i + 1 == n, 0, op, f.as_bytes(), mask));
                if with_ping && i == 0 {
                    bytes.extend(client_frame(true, 0, OP_PING, &[ping_byte], mask));
                }
            }
            // The ping follows the first frame: inside the message if it
            // has more than one fragment, after it otherwise.
            let text = Got::Text(fragments.concat().into_bytes());
            let ping = Got::Ping(vec![ping_byte]);
            match (with_ping, n) {
                (false, _) => want.push(text),
                (true, 1) => want.extend([text, ping]),
                (true, _) => want.extend([ping, text]),
            }
        }
        bytes.extend(client_frame(true, 0, OP_CLOSE, b"\x03\xE8", [7, 7, 7, 7]));
        want.push(Got::Close(Some(1000), String::new()));
        (bytes, want)
    })
}

proptest! {
    #[test]
    fn any_split_decodes_the_same((bytes, want) in stream(), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        prop_assert_eq!(decode_split(&mut Decoder::new(1 << 16), &bytes, &cuts), want);
    }

    #[test]
    fn pulling_one_event_at_a_time_decodes_the_same((bytes, want) in stream(), chunk in 1usize..400) {
        let mut dec = Decoder::new(1 << 16);
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk) {
            let mut piece = piece.to_vec();
            if let Some(ev) = dec.input(&mut piece).next_event() {
                got.push(own(ev));
            }
            while dec.has_pending() {
                match dec.resume().next_event() {
                    Some(ev) => got.push(own(ev)),
                    None => break,
                }
            }
        }
        while let Some(ev) = dec.resume().next_event() {
            got.push(own(ev));
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn garbage_never_panics_and_limits_hold(
        bytes in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        max in 0usize..2000,
    ) {
        let mut dec = Decoder::new(max).accept_binary(max % 2 == 0);
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        for ev in decode_split(&mut dec, &bytes, &cuts) {
            match ev {
                Got::Text(t) => {
                    prop_assert!(t.len() <= max);
                    prop_assert!(std::str::from_utf8(&t).is_ok());
                }
                Got::Binary(b) => prop_assert!(b.len() <= max),
                Got::Ping(p) | Got::Pong(p) => prop_assert!(p.len() <= 125),
                Got::Close(code, reason) => {
                    prop_assert!(code.is_none_or(frame::is_valid_close_code));
                    prop_assert!(reason.len() <= 123);
                }
                Got::Error(_) => {}
            }
        }
        // A message under way never holds more than the limit.
        prop_assert!(dec.buffered() <= max + 14 + 125);
    }

    #[test]
    fn masked_garbage_in_valid_headers_never_panics(
        frames in prop::collection::vec((any::<bool>(), 0u8..16, prop::collection::vec(any::<u8>(), 0..300), any::<[u8; 4]>()), 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let bytes: Vec<u8> = frames.iter().flat_map(|(fin, op, p, m)| client_frame(*fin, 0, *op, p, *m)).collect();
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        let whole = decode_split(&mut Decoder::new(1000), &bytes, &[]);
        prop_assert_eq!(decode_split(&mut Decoder::new(1000), &bytes, &cuts), whole);
    }
}
