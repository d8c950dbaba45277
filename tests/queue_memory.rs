//! The queue cap bounds real memory: non-readers (at the smallest receive
//! buffer the kernel allows) sent tiny frames by the host until each is
//! dropped as a slow consumer: the live heap never passes 1.5 x cap x
//! clients over what it was before, plus a fixed allowance. Each frame is
//! its own allocation here (unicasts, nothing shared), the case where
//! counting payload bytes alone undercounted threefold.
//!
//! Its own test binary, with one test, so that the heap it counts (every
//! allocation of this process goes through `Counting`) is only this test's.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::time::Instant;

use chat::{Config, EventKind, Reason};
use common::*;
use counting::Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NON_READERS: usize = 20;
const CAP: usize = 64 * 1024;
/// What the bound allows beyond 1.5 x cap x clients: the host's calls in
/// flight, the events of the drops, the allocator's growth of maps.
const FIXED: usize = 256 * 1024;

#[test]
fn tiny_frames_to_non_readers_stay_within_the_cap_in_real_memory() {
    let cfg = Config {
        max_queue_bytes: CAP,
        max_frame_bytes: 4096,
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut ids = Vec::new();
    let clients: Vec<TestClient> = (0..NON_READERS)
        .map(|i| {
            let c = small_window_client(server.addr, &format!("nr{i}"), 1);
            let ev = server.event_until(|e| matches!(e.kind, EventKind::Registered));
            ids.push(ev.client);
            c
        })
        .collect();
    server.discard_events();
    // Presence of later clients reached the earlier ones; their windows
    // took it.
    let base = counting::live();
    counting::reset_peak();
    let end = Instant::now() + DEADLINE;
    let mut sent = 0usize;
    loop {
        let ids = ids.clone();
        let (stats, n) = server.with(move |s| {
            let mut n = 0;
            for &id in &ids {
                for k in 0..64 {
                    if s.send(id, format!("{{\"type\":\"t\",\"n\":{k}}}").as_bytes())
                        .is_ok()
                    {
                        n += 1;
                    }
                }
            }
            (s.stats(), n)
        });
        sent += n;
        server.discard_events();
        if stats.disconnects_for(Reason::SlowConsumer) == NON_READERS as u64 {
            break;
        }
        assert!(Instant::now() < end, "not all dropped: {stats:?}");
    }
    let peak = counting::peak() - base;
    let stats = server.with(|s| s.stats());
    println!(
        "{NON_READERS} non-readers, cap {CAP}: {sent} tiny frames queued; peak live heap {peak} B over \
         the {base} B before (cap x clients = {} B); peak_queued_bytes {}",
        CAP * NON_READERS,
        stats.peak_queued_bytes
    );
    assert!(
        peak < CAP * NON_READERS * 3 / 2 + FIXED,
        "peak live heap {peak} B for cap x clients {} B",
        CAP * NON_READERS
    );
    drop(clients);
}
