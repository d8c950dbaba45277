//! Micro-benchmarks of the per-message work that does not depend on the
//! number of clients: reassembling frames from a byte stream, parsing a
//! client's JSON, and encoding the frame the server sends. `cargo bench
//! --bench codec`; each reports frames/s and bytes/s.

use std::hint::black_box;
use std::time::Duration;

use chat::frame::{self, FrameDecoder};
use chat::message;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Text of `size` bytes, as the load generator sends (no escaping needed).
fn text(size: usize) -> String {
    "x".repeat(size)
}

fn all_payload(size: usize) -> Vec<u8> {
    format!(r#"{{"type":"all","text":"{}"}}"#, text(size)).into_bytes()
}

/// One read's worth of input: `count` frames back to back, handed to the
/// decoder in 64 KiB chunks as the server's reads would.
fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (size, count) in [(64usize, 1000usize), (16 * 1024, 64)] {
        let payload = all_payload(size);
        let stream: Vec<u8> = (0..count)
            .flat_map(|_| frame::encode(&payload).to_vec())
            .collect();
        g.throughput(Throughput::ElementsAndBytes {
            elements: count as u64,
            bytes: stream.len() as u64,
        });
        let mut dec = FrameDecoder::new(65536);
        g.bench_function(format!("{count}x{size}B_text"), |b| {
            b.iter(|| {
                let mut frames = 0;
                for chunk in stream.chunks(64 * 1024) {
                    dec.push(chunk);
                    while let Some(f) = dec.next_frame().unwrap() {
                        black_box(f);
                        frames += 1;
                    }
                }
                assert_eq!(frames, count);
            })
        });
    }
    g.finish();
}

/// A client's frame payload to the typed message the hub routes.
fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let cases = [
        ("all_64B", all_payload(64)),
        ("all_16KiB", all_payload(16 * 1024)),
        (
            "msg_64B",
            format!(r#"{{"type":"msg","to":"u1","text":"{}"}}"#, text(64)).into_bytes(),
        ),
        ("ping", br#"{"type":"ping","id":1234567890}"#.to_vec()),
    ];
    for (name, payload) in cases {
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: payload.len() as u64,
        });
        g.bench_function(name, |b| {
            b.iter(|| black_box(message::parse(black_box(&payload)).unwrap()))
        });
    }
    g.finish();
}

/// The frame a broadcast becomes (serialised once, shared by every queue).
fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for size in [64usize, 16 * 1024] {
        // The server forwards the sender's JSON string literal as it came.
        let sent = all_payload(size);
        let Ok(message::Incoming::All { text: t, .. }) = message::parse(&sent) else {
            unreachable!("an all payload")
        };
        let sample = message::text_payload("s0", message::TextTo::All, t);
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: sample.len() as u64,
        });
        g.bench_function(format!("all_json_{size}B_text"), |b| {
            b.iter(|| black_box(message::text_payload("s0", message::TextTo::All, black_box(t))))
        });
        let payload = all_payload(size);
        g.bench_function(format!("raw_{size}B_text"), |b| {
            b.iter(|| black_box(frame::encode(black_box(&payload))))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short runs: these are steady, and `cargo bench` should finish in
    // about a minute on two shared cores.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, parse, encode
}
criterion_main!(benches);
