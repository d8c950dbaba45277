//! Routing through the sans-IO core (`chat::testing::Core`), no sockets: a
//! client's bytes in, frames into every recipient's queue, queues emptied
//! as if written. `cargo bench --bench dispatch`; each reports deliveries/s
//! (elements) and delivered bytes/s.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat::testing::Core;
use chat::{ClientId, Config};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Fan-out rounds between rebuilding the core (untimed). Each round drains
/// the list of clients with new output as the server does, so nothing
/// grows; the rebuild only bounds how long one core lives.
const CHUNK: u64 = 1_000_000;

fn frame(payload: &str) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload.as_bytes());
    f
}

/// A core with `n` registered clients (`c0` ... `c{n-1}`), all output
/// already taken.
fn core_with(n: usize) -> (Core, Vec<ClientId>) {
    let cfg = Config {
        max_clients: n + 1,
        max_queue_bytes: 64 << 20,
        ..Config::default()
    };
    let mut core = Core::new(&cfg);
    let now = Instant::now();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let ids: Vec<ClientId> = (0..n)
        .map(|i| {
            let id = core.connect(peer, now);
            core.receive(id, &frame(&format!(r#"{{"type":"hello","nick":"c{i}"}}"#)), now);
            id
        })
        .collect();
    for &id in &ids {
        core.discard_output(id);
    }
    core.events().for_each(drop);
    (core, ids)
}

/// One round as the server runs it: `input` from the first client, then
/// every other client's queue written out, then the host takes the events.
/// Returns the bytes delivered.
fn round(core: &mut Core, ids: &[ClientId], input: &[u8], now: Instant) -> usize {
    core.receive(ids[0], input, now);
    let mut bytes = 0;
    for &id in &ids[1..] {
        bytes += core.discard_output(id);
    }
    core.take_dirty();
    core.events().for_each(drop);
    bytes
}

/// Times `iters` calls of `step`, on a core rebuilt (untimed) every
/// `chunk` calls.
fn timed(n: usize, iters: u64, chunk: u64, step: impl Fn(&mut Core, &[ClientId], Instant)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let (mut core, ids) = core_with(n);
        let now = Instant::now();
        let this = left.min(chunk);
        let start = Instant::now();
        for _ in 0..this {
            step(&mut core, &ids, now);
        }
        total += start.elapsed();
        left -= this;
    }
    total
}

/// `all` from one client to every other: one message at a time, and a
/// window of 64 arriving in one read (what the load test's sender does).
fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan_out");
    let one = frame(&format!(r#"{{"type":"all","text":"{}"}}"#, "x".repeat(64)));
    let window: Vec<u8> = (0..64).flat_map(|_| one.clone()).collect();
    for n in [100usize, 1000] {
        for (name, input, msgs) in [("1_all", &one, 1u64), ("64_all", &window, 64)] {
            let (mut core, ids) = core_with(n);
            let bytes = round(&mut core, &ids, input, Instant::now()) as u64;
            g.throughput(Throughput::ElementsAndBytes {
                elements: msgs * (n as u64 - 1),
                bytes,
            });
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    timed(n, iters, CHUNK, |core, ids, now| {
                        black_box(round(core, ids, input, now));
                    })
                })
            });
        }
    }
    g.finish();
}

/// `msg` from one client to another among 100 registered.
fn unicast(c: &mut Criterion) {
    let mut g = c.benchmark_group("unicast");
    let msg = frame(&format!(
        r#"{{"type":"msg","to":"c1","text":"{}"}}"#,
        "x".repeat(64)
    ));
    let (mut core, ids) = core_with(100);
    core.receive(ids[0], &msg, Instant::now());
    let bytes = core.discard_output(ids[1]) as u64;
    g.throughput(Throughput::ElementsAndBytes { elements: 1, bytes });
    g.bench_function("msg_64B_among_100", |b| {
        b.iter_custom(|iters| {
            timed(100, iters, CHUNK, |core, ids, now| {
                core.receive(ids[0], black_box(&msg), now);
                black_box(core.discard_output(ids[1]));
                core.take_dirty();
                core.events().for_each(drop);
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = fan_out, unicast
}
criterion_main!(benches);
