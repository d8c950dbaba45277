//! Micro-benchmarks of the WebSocket codec, next to `benches/codec.rs`'s
//! length-prefix figures: decoding client frames as the server's reads
//! would hand them over (64 KiB at a time, copied into the read buffer as
//! recv would, then unmasked in place), and building server frame headers.
//! `cargo bench --bench ws`; each reports messages/s and bytes/s.

use std::hint::black_box;
use std::time::Duration;

use chat::codec::ws::{frame, Decoder, Event};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn all_payload(size: usize) -> Vec<u8> {
    format!(r#"{{"type":"all","text":"{}"}}"#, "x".repeat(size)).into_bytes()
}

/// A masked client text frame, optionally in `fragments` pieces.
fn client_message(payload: &[u8], fragments: usize) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::new();
    let step = payload.len().div_ceil(fragments);
    for (i, part) in payload.chunks(step).enumerate() {
        let fin = (i + 1) * step >= payload.len();
        out.push(
            if fin { 0x80 } else { 0 }
                | if i == 0 {
                    frame::OP_TEXT
                } else {
                    frame::OP_CONTINUATION
                },
        );
        match part.len() {
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
        out.extend(part.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws_decode");
    for (size, count, fragments) in [
        (64usize, 1000usize, 1usize),
        (16 * 1024, 64, 1),
        (16 * 1024, 64, 4),
    ] {
        let payload = all_payload(size);
        let stream: Vec<u8> = (0..count)
            .flat_map(|_| client_message(&payload, fragments))
            .collect();
        g.throughput(Throughput::ElementsAndBytes {
            elements: count as u64,
            bytes: stream.len() as u64,
        });
        let mut dec = Decoder::new(65536);
        let mut read_buf = vec![0u8; 64 * 1024];
        let name = format!("{count}x{size}B_text_{fragments}_frames");
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut messages = 0;
                for chunk in stream.chunks(64 * 1024) {
                    let buf = &mut read_buf[..chunk.len()];
                    buf.copy_from_slice(chunk); // what recv would have written
                    let mut input = dec.input(buf);
                    while let Some(ev) = input.next_event() {
                        if let Ok(Event::Text(t)) = ev {
                            black_box(t);
                            messages += 1;
                        }
                    }
                }
                assert_eq!(messages, count);
            })
        });
    }
    g.finish();
}

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("ws_encode");
    for size in [64usize, 16 * 1024] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("header_{size}B"), |b| {
            b.iter(|| black_box(frame::Header::text(black_box(size))))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, header
}
criterion_main!(benches);
