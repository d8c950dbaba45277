//! What resumable sessions cost per delivery, as a fixed workload through
//! the sans-IO core (`chat::testing::Core`, the transport and queues the
//! server uses, no sockets), for instruction counts under callgrind:
//!
//! ```text
//! cargo build --release -p chat-bench --example resume_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/resume_cost --sessions resumable --scenario fanout --messages 2000
//! ```
//!
//! `N` clients register (plain or resumable sessions), then one of them
//! sends `--messages` messages: to everyone (`fanout`: each delivered to
//! N - 1 queues) or each to the next client in turn (`unicast`); after each
//! message every queue is written out, as the server does in a round. Run
//! it with two message counts and take the difference, so that the set-up
//! cancels out. It prints the deliveries made.

use std::net::SocketAddr;
use std::time::Instant;

use chat::testing::Core;
use chat::{ClientId, Config};

fn frame(payload: &str) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload.as_bytes());
    f
}

struct Args {
    resumable: bool,
    fanout: bool,
    clients: usize,
    messages: usize,
    size: usize,
}

fn args() -> Args {
    let mut a = Args {
        resumable: false,
        fanout: true,
        clients: 100,
        messages: 1000,
        size: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sessions" => a.resumable = value() == "resumable",
            "--scenario" => a.fanout = value() == "fanout",
            "--clients" => a.clients = value().parse().expect("--clients N"),
            "--messages" => a.messages = value().parse().expect("--messages N"),
            "--size" => a.size = value().parse().expect("--size BYTES"),
            other => panic!("unknown flag {other}: --sessions plain|resumable --scenario fanout|unicast --clients N --messages N --size BYTES"),
        }
    }
    a
}

fn main() {
    let a = args();
    let cfg = Config {
        max_clients: a.clients + 1,
        max_queue_bytes: 64 << 20,
        ..Config::default()
    };
    let mut core = Core::new(&cfg);
    let now = Instant::now();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let resumable = if a.resumable { r#","resumable":true"# } else { "" };
    let ids: Vec<ClientId> = (0..a.clients)
        .map(|i| {
            let id = core.connect(peer, now);
            let hello = format!(r#"{{"type":"hello","nick":"c{i}"{resumable}}}"#);
            core.receive(id, &frame(&hello), now);
            id
        })
        .collect();
    for &id in &ids {
        core.discard_output(id);
    }
    core.events().for_each(drop);
    let text = "x".repeat(a.size);
    let all = frame(&format!(r#"{{"type":"all","text":"{text}"}}"#));
    let unicast: Vec<Vec<u8>> = (1..a.clients)
        .map(|i| frame(&format!(r#"{{"type":"msg","to":"c{i}","text":"{text}"}}"#)))
        .collect();
    let mut deliveries = 0u64;
    for m in 0..a.messages {
        let input = if a.fanout {
            &all
        } else {
            &unicast[m % unicast.len()]
        };
        core.receive(ids[0], input, now);
        for &id in &ids[1..] {
            if core.discard_output(id) > 0 {
                deliveries += 1;
            }
        }
        core.take_dirty();
        core.events().for_each(drop);
    }
    let s = core.stats();
    println!(
        "deliveries {deliveries} retained_bytes {} queued_bytes {}",
        s.retained_bytes, s.queued_bytes
    );
}
