//! Churn (issue 4): 20,000 connect / `hello` / leave cycles leave no
//! descriptor, queue or heap byte behind.
//!
//! Its own test binary, with one test, so that the heap it counts (every
//! allocation of this process goes through [`Counting`]) and the descriptors
//! in `/proc/self/fd` are only this test's: the server on its thread and the
//! clients it churns.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on unchanged to `System`, which upholds
// GlobalAlloc's contract; the counter is only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` obligations are passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc` or
        // `realloc` above) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` obligations are the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `cycles` clients connect, register and leave (half with `quit`, half
/// dropped without a word), one after the other; the server's events are
/// thrown away as they come. Returns once the server has only `anchor`
/// left, its queues are empty and its descriptors are closed.
fn churn(server: &ServerThread, cycles: usize, fds_at_rest: usize) {
    for i in 0..cycles {
        let mut c = TestClient::connect(server.addr);
        c.send(&json!({"type": "hello", "nick": format!("churn{}", i % 7)}));
        assert_eq!(c.recv()["type"], "welcome");
        if i % 2 == 0 {
            c.send(&json!({"type": "quit"}));
            assert_eq!(c.try_recv(), None);
        }
        if i % 256 == 0 {
            server.discard_events();
        }
    }
    let end = Instant::now() + DEADLINE;
    loop {
        server.discard_events();
        let stats = server.with(|s| s.stats());
        // The server's descriptors of closing connections go within
        // close_linger; wait for them too.
        if stats.clients == 1 && stats.queued_bytes == 0 && open_fds() <= fds_at_rest {
            break;
        }
        assert!(
            Instant::now() < end,
            "churn did not settle: {} clients, {} bytes queued, {} descriptors (at rest: {fds_at_rest})",
            stats.clients,
            stats.queued_bytes,
            open_fds()
        );
        std::thread::park_timeout(Duration::from_millis(5));
    }
    server.discard_events();
}

#[test]
fn churn_leaves_no_descriptors_queues_or_memory_behind() {
    const CYCLES: usize = 20_000;
    /// Cycles run first, so that what grows once (the hash maps' and
    /// queues' capacity, the channel's blocks, the allocator's arenas) has
    /// grown before the figures are taken.
    const WARM_UP: usize = 1_000;
    let server = ServerThread::default();
    let _anchor = TestClient::hello(server.addr, "anchor");
    let fds_at_rest = open_fds();
    churn(&server, WARM_UP, fds_at_rest);

    let heap_before = LIVE_BYTES.load(Ordering::SeqCst);
    let rss_before = rss_kib();
    churn(&server, CYCLES, fds_at_rest);
    let heap_after = LIVE_BYTES.load(Ordering::SeqCst);
    let rss_after = rss_kib();

    let stats = server.with(|s| s.stats());
    assert_eq!(stats.registered, 1);
    assert_eq!(stats.accepted, (WARM_UP + CYCLES) as u64 + 1);
    assert_eq!(open_fds(), fds_at_rest, "descriptors leaked");
    let heap_grown = heap_after - heap_before;
    // The figures docs/reliability.md quotes (`-- --nocapture`).
    println!(
        "churn: {CYCLES} cycles after {WARM_UP} of warm-up; descriptors {fds_at_rest} before and {} after; \
         live heap {heap_before} B before, {heap_after} B after ({heap_grown:+} B); RSS {rss_before} KiB \
         before, {rss_after} KiB after; server: accepted {}, clients {}, registered {}, queued_bytes {}, \
         disconnects {:?}",
        open_fds(),
        stats.accepted,
        stats.clients,
        stats.registered,
        stats.queued_bytes,
        stats.disconnects
    );
    // Back where it started: a leak of even one small allocation per cycle
    // would be 20,000 times that.
    assert!(
        heap_grown.abs() < 16 * 1024,
        "the heap grew by {heap_grown} bytes over {CYCLES} cycles"
    );
}
