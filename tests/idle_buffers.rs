//! Read buffers shrink: clients that each sent four 64 KiB frames, then
//! fell idle, cost what idle clients cost (under 16 KiB of live heap each,
//! the server's and these clients' together), not the buffers their big
//! frames grew.
//!
//! Its own test binary, with one test, so that the heap it counts (every
//! allocation of this process goes through `Counting`) is only this test's.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::time::{Duration, Instant};

use common::*;
use counting::Counting;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 100;
const BIG_FRAMES: usize = 4;
/// The bound per idle client.
const IDLE_MAX: usize = 16 * 1024;

/// Waits until every queue is empty and no event is left.
fn settle(server: &ServerThread) {
    let end = Instant::now() + DEADLINE;
    loop {
        server.discard_events();
        if server.with(|s| s.stats()).queued_bytes == 0 {
            server.discard_events();
            return;
        }
        assert!(Instant::now() < end, "queues never emptied");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

#[test]
fn idle_clients_that_sent_big_frames_cost_what_idle_clients_cost() {
    let server = ServerThread::default();
    let max = server.with(|s| s.config().max_frame_bytes);
    // A ping padded to the largest frame: its answer is a small pong.
    let mut big = json!({"type": "ping", "id": 0, "pad": ""}).to_string();
    let pad = "x".repeat(max - big.len());
    big = json!({"type": "ping", "id": 0, "pad": pad}).to_string();
    assert_eq!(big.len(), max);
    // Warm up: what grows once (maps, the channel, the allocator) grows.
    let warm: Vec<TestClient> = (0..CLIENTS)
        .map(|i| TestClient::hello(server.addr, &format!("warm{i}")))
        .collect();
    drop(warm);
    let end = Instant::now() + DEADLINE;
    while server.with(|s| s.stats()).clients > 0 {
        assert!(Instant::now() < end);
        server.discard_events();
        std::thread::park_timeout(Duration::from_millis(2));
    }
    settle(&server);
    let base = counting::live();

    let mut clients: Vec<TestClient> = (0..CLIENTS)
        .map(|i| TestClient::hello(server.addr, &format!("client{i}")))
        .collect();
    settle(&server);
    let fresh = counting::live() - base;

    for c in &mut clients {
        for _ in 0..BIG_FRAMES {
            c.send_payload(big.as_bytes());
        }
    }
    for c in &mut clients {
        for _ in 0..BIG_FRAMES {
            assert_eq!(c.recv_until(|v| v["type"] == "pong")["id"], 0);
        }
    }
    // One more round trip each: whatever the server read last has been
    // handled.
    for c in &mut clients {
        c.send(&json!({"type": "ping", "id": 1}));
        assert_eq!(c.recv_until(|v| v["type"] == "pong")["id"], 1);
    }
    settle(&server);
    let idle = counting::live() - base;
    let stats = server.with(|s| s.stats());
    assert_eq!(stats.clients, CLIENTS as u64);
    assert_eq!(stats.frames_in, (CLIENTS * (2 + BIG_FRAMES + 1)) as u64);
    println!(
        "{CLIENTS} clients: live heap {} B each when freshly registered, {} B each idle after \
         {BIG_FRAMES} frames of {max} B",
        fresh / CLIENTS,
        idle / CLIENTS
    );
    assert!(
        idle / CLIENTS < IDLE_MAX,
        "an idle client costs {} bytes after big frames",
        idle / CLIENTS
    );
}
