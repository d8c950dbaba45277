//! The hand-written RESP2 codec (`chat::codec::resp`) against the
//! `redis-protocol` crate as an oracle: any reply stream, split anywhere,
//! decodes as the oracle says; every command we encode decodes in the
//! oracle to exactly the arguments given; the fuzz harness's checks on
//! mutated streams and on its committed seeds.

use std::path::PathBuf;

use chat::codec::resp::{self, Decoder, Limits, Reply};
use proptest::prelude::*;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};

#[path = "../fuzz/harness/resp_check.rs"]
mod resp_check;

/// Any RESP2 value the oracle can encode: strings without CRLF in simple
/// and error replies (RESP2 cannot carry one there), anything in bulks.
fn frame() -> impl Strategy<Value = OwnedFrame> {
    let simple_bytes = prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    );
    let leaf = prop_oneof![
        simple_bytes.prop_map(OwnedFrame::SimpleString),
        "[^\r\n]{0,16}".prop_map(OwnedFrame::Error),
        any::<i64>().prop_map(OwnedFrame::Integer),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(OwnedFrame::BulkString),
        Just(OwnedFrame::Null),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop::collection::vec(inner, 0..8).prop_map(OwnedFrame::Array)
    })
}

fn encode_frame(f: &OwnedFrame) -> Vec<u8> {
    let mut buf = vec![0; f.encode_len(false)];
    let n = encode(&mut buf, f, false).expect("the oracle encodes");
    buf.truncate(n);
    buf
}

/// Cut points: 0, the end, and the given ones, sorted.
fn cut(stream: &[u8], cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any stream of replies, split at any points, decodes to the replies
    /// the oracle decodes from the whole stream, and to the frames encoded.
    #[test]
    fn split_reply_streams_decode_as_the_oracle_says(
        frames in prop::collection::vec(frame(), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(encode_frame).collect();
        let mut oracle = Vec::new();
        let mut at = 0;
        while let Some((f, used)) = decode(&stream[at..]).expect("the oracle decodes its own encoding") {
            oracle.push(f);
            at += used;
        }
        prop_assert_eq!(&oracle, &frames);
        let points = cut(&stream, &cuts);
        let mut dec = Decoder::new(Limits::default());
        let mut got = Vec::new();
        for w in points.windows(2) {
            dec.push(&stream[w[0]..w[1]]);
            while let Some(r) = dec.next_reply().expect("a valid stream") {
                got.push(resp_check::to_oracle(&r));
            }
        }
        prop_assert_eq!(got, oracle);
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert!(!dec.mid_reply());
    }

    /// Every command we write is, to the oracle, an array of exactly the
    /// bulk strings given, taking exactly `command_len` bytes.
    #[test]
    fn encoded_commands_decode_in_the_oracle_as_given(
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..12),
        ints in prop::collection::vec(any::<i64>(), 0..4),
    ) {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut out = b"+junk before\r\n".to_vec();
        let before = out.len();
        resp::write_command(&mut out, &refs);
        prop_assert_eq!(out.len() - before, resp::command_len(&refs));
        let (f, used) = decode(&out[before..]).unwrap().expect("a whole command");
        prop_assert_eq!(used, out.len() - before);
        let want = OwnedFrame::Array(args.iter().cloned().map(OwnedFrame::BulkString).collect());
        prop_assert_eq!(f, want);

        // Mixed arguments: bytes then integers, as EVALSHA is written.
        let mut out = Vec::new();
        resp::write_array_len(&mut out, 1 + ints.len());
        resp::write_bulk(&mut out, &args[0]);
        for i in &ints {
            resp::write_bulk_int(&mut out, *i);
        }
        let (f, used) = decode(&out).unwrap().expect("a whole command");
        prop_assert_eq!(used, out.len());
        let mut want = vec![OwnedFrame::BulkString(args[0].clone())];
        want.extend(ints.iter().map(|i| OwnedFrame::BulkString(i.to_string().into_bytes())));
        prop_assert_eq!(f, OwnedFrame::Array(want));
    }

    /// Valid streams with a few bytes changed, under small limits, through
    /// the fuzz harness: agreement with the oracle except where we refuse
    /// on purpose (early errors, CRLF after bulks, limits).
    #[test]
    fn mutated_streams_pass_the_fuzz_checks(
        limits in prop::array::uniform5(any::<u8>()),
        frames in prop::collection::vec(frame(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        chunk in 1u8..=255,
    ) {
        let mut stream: Vec<u8> = frames.iter().flat_map(encode_frame).collect();
        for (at, b) in &flips {
            let i = at.index(stream.len());
            stream[i] = *b;
        }
        let mut input = limits.to_vec();
        for piece in stream.chunks(usize::from(chunk)) {
            input.push(piece.len() as u8);
            input.extend_from_slice(piece);
        }
        resp_check::run(&input);
    }
}

#[test]
fn fuzz_seeds_pass_the_resp_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/resp_decoder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        eprintln!("{}", path.display());
        resp_check::run(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn a_reply_of_every_kind_matches_the_oracle() {
    let stream = b"*5\r\n+OK\r\n-ERR x\r\n:7\r\n$-1\r\n*2\r\n$0\r\n\r\n*0\r\n";
    let (want, _) = decode(stream).unwrap().unwrap();
    let mut dec = Decoder::new(Limits::default());
    dec.push(stream);
    let got = dec.next_reply().unwrap().unwrap();
    assert_eq!(resp_check::to_oracle(&got), want);
    assert!(matches!(got, Reply::Array(ref a) if a.len() == 5));
}
