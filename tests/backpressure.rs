//! PROTOCOL.md "Slow consumers (backpressure)": a client that stops reading
//! is dropped as `slow_consumer` once its queue would pass
//! `max_queue_bytes`, while everyone else keeps receiving every message in
//! order, and the server's queues never grow past the caps.

mod common;
mod support_a;

use std::thread::JoinHandle;

use chat::{Config, EventKind, Reason};
use common::*;
use serde_json::{json, Value};
use support_a::*;

const MAX_QUEUE: usize = 256 * 1024;
const READERS: usize = 10;
/// Messages the publisher may be ahead of the slowest fast reader: about
/// 35 KB, far below `MAX_QUEUE`, so a fast reader is never at risk.
const WINDOW: usize = 32;
/// Messages sent after the slow consumer was dropped, to show delivery
/// goes on.
const AFTER_DROP: usize = 200;
/// Gives up if the slow consumer survives this many messages (about 60 MB).
const GIVE_UP: usize = 60_000;

/// The text of message `seq`: its number first, then padding to about 1 KB.
fn text(seq: usize) -> String {
    format!("{seq:08} {}", "x".repeat(1000))
}

/// The number at the start of a message's text.
fn seq_of(v: &Value) -> usize {
    v["text"].as_str().expect("a text")[..8]
        .parse()
        .expect("a number")
}

/// What one fast reader saw.
struct Report {
    received: usize,
    saw_slow_leave: bool,
}

/// Reads `all` frames until the `END` text, checking that they arrive
/// numbered 0, 1, 2... with none missing, and publishing progress.
fn fast_reader(mut c: TestClient, index: usize, progress: Progress) -> JoinHandle<Report> {
    std::thread::spawn(move || {
        let mut next = 0;
        let mut saw_slow_leave = false;
        loop {
            let v = c.recv();
            match v["type"].as_str() {
                Some("all") if v["text"] == "END" => break,
                Some("all") => {
                    assert_eq!(seq_of(&v), next, "reader {index} got messages out of order");
                    next += 1;
                    progress.advance(index, next);
                }
                Some("presence") if v["state"] == "offline" => {
                    assert_eq!(v, offline("slow", "slow_consumer"));
                    saw_slow_leave = true;
                }
                Some("presence") => {}
                _ => panic!("reader {index} got {v}"),
            }
        }
        Report {
            received: next,
            saw_slow_leave,
        }
    })
}

/// Reads what the slow consumer was sent before it was dropped: a
/// gap-free prefix of the messages, then `slow_consumer`, then EOF.
fn check_slow_consumer(mut slow: TestClient, sent: usize) {
    let frames = slow.expect_closed();
    let (last, before) = frames.split_last().expect("frames before EOF");
    assert_error(last, "slow_consumer");
    let seqs: Vec<usize> = before.iter().filter(|v| v["type"] == "all").map(seq_of).collect();
    assert_eq!(
        seqs,
        (0..seqs.len()).collect::<Vec<_>>(),
        "a gap in what the slow reader got"
    );
    assert!(
        seqs.len() < sent,
        "the slow reader cannot have received everything"
    );
    for v in before.iter().filter(|v| v["type"] != "all") {
        assert_eq!(v["type"], "presence", "{v}");
    }
}

/// The storm: a stopped reader among ten fast ones. `send(Some(n))` must
/// make message `n` reach every registered client as an `all` whose text is
/// [`text`]`(n)`; `send(None)`, one whose text is `END`.
fn storm(server: &ServerThread, mut send: impl FnMut(Option<usize>)) {
    let progress = Progress::new(READERS);
    let mut readers = Vec::new();
    for i in 0..READERS {
        let c = TestClient::hello(server.addr, &format!("fast{i}"));
        readers.push(fast_reader(c, i, progress.clone()));
    }
    let slow = small_window_client(server.addr, "slow", 4096);
    let slow_drops = || server.with(|s| s.stats().disconnects_for(Reason::SlowConsumer));

    let mut sent = 0;
    let mut dropped_at = None;
    while dropped_at.is_none_or(|at| sent < at + AFTER_DROP) {
        assert!(sent < GIVE_UP, "the slow consumer was never dropped");
        progress.wait_all((sent + 1).saturating_sub(WINDOW));
        send(Some(sent));
        sent += 1;
        if dropped_at.is_none() && sent % WINDOW == 0 && slow_drops() > 0 {
            dropped_at = Some(sent);
        }
    }
    // The slow reader's own frames are collected while the rest finishes.
    let slow_reader = std::thread::spawn(move || check_slow_consumer(slow, sent));
    send(None);
    for r in readers {
        let report = r.join().expect("a fast reader failed");
        assert_eq!(report.received, sent, "a fast reader missed messages");
        assert!(
            report.saw_slow_leave,
            "a fast reader did not see the slow one leave"
        );
    }
    slow_reader.join().expect("the slow reader's frames were wrong");

    let ev = server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert_eq!(ev.nick.as_deref(), Some("slow"));
    assert!(matches!(
        ev.kind,
        EventKind::Disconnected {
            reason: Reason::SlowConsumer
        }
    ));
    let stats = server.with(|s| s.stats());
    assert_eq!(
        stats.disconnects_for(Reason::SlowConsumer),
        1,
        "only the slow reader is dropped"
    );
    let clients = READERS as u64 + 2;
    assert!(
        stats.peak_queued_bytes <= MAX_QUEUE as u64 * clients,
        "peak {} over the cap of {} clients",
        stats.peak_queued_bytes,
        clients
    );
}

fn small_queues() -> ServerThread {
    ServerThread::start(config_with(|c| c.max_queue_bytes = MAX_QUEUE))
}

#[test]
fn a_stopped_reader_is_dropped_while_ten_fast_readers_get_every_client_broadcast() {
    let server = small_queues();
    let mut publisher = TestClient::hello(server.addr, "publisher");
    storm(&server, |seq| {
        let text = seq.map_or("END".to_string(), text);
        publisher.send(&json!({"type": "all", "text": text}));
    });
    // The publisher heard only presence: the others coming, the slow one
    // dropped, the fast ones leaving once done; never an echo of its own
    // broadcasts (which were all queued before the fast readers left).
    let mut offline_count = 0;
    while offline_count < READERS + 1 {
        let v = publisher.recv();
        assert_eq!(v["type"], "presence", "{v}");
        if v["state"] == "offline" {
            offline_count += 1;
        }
    }
}

#[test]
fn a_stopped_reader_is_dropped_while_ten_fast_readers_get_every_host_broadcast() {
    let server = small_queues();
    let handle = &server;
    storm(handle, |seq| {
        let text = seq.map_or("END".to_string(), text);
        let payload = json!({"type": "all", "text": text}).to_string();
        handle.with(move |s| s.broadcast(payload.as_bytes())).unwrap();
    });
}

#[test]
fn a_unicast_flood_to_a_stopped_reader_drops_only_it_and_acks_count_zero_after() {
    let server = small_queues();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    let slow = small_window_client(server.addr, "slow", 4096);
    assert_eq!(alice.recv(), online("slow"));
    assert_eq!(bob.recv(), online("slow"));
    // Each message is acked once queued; the ack's count says whether the
    // slow reader's queue still took it.
    let mut dropped = false;
    for seq in 0..GIVE_UP {
        alice.send(&json!({"type": "msg", "to": "slow", "text": text(seq), "id": seq}));
        let v = alice.recv();
        if v == json!({"type": "ack", "id": seq, "queued": 1}) {
            continue;
        }
        // The message that overflowed the queue was not queued (ack 0), and
        // the slow reader left; the two frames may come in either order.
        let w = alice.recv();
        let bye = offline("slow", "slow_consumer");
        let ack0 = json!({"type": "ack", "id": seq, "queued": 0});
        assert!((v == bye && w == ack0) || (v == ack0 && w == bye), "{v} then {w}");
        dropped = true;
        break;
    }
    assert!(dropped, "the slow consumer was never dropped");
    assert_eq!(bob.recv(), offline("slow", "slow_consumer"));
    let frames = TestClient { stream: slow.stream }.expect_closed();
    assert_error(frames.last().unwrap(), "slow_consumer");
    assert_chat_works(&mut alice, "alice", &mut bob, "bob");
    alice.send(&json!({"type": "msg", "to": "slow", "text": "gone?"}));
    assert_eq!(
        without_message(alice.recv()),
        json!({"type": "error", "code": "no_such_user", "to": "slow"})
    );
}

/// A socket that took less than it was offered is written again when
/// `select()` says it is writable, not before: every round that logs a
/// broadcast offers every registered client a write, and a stalled
/// reader's full socket would otherwise cost a failed `sendmsg` a round.
/// Broadcasts of 16 KiB, twice what the kernel's largest send buffer
/// (`tcp_wmem`) holds, fill the socket of a reader that stopped; then
/// strace counts the server's `sendmsg` calls while 200 short broadcasts
/// go out one round each (the fast reader takes each before the next is
/// sent): none fails with EAGAIN, and the stalled reader still gets
/// every broadcast, in order, once it reads.
#[test]
fn a_full_socket_is_not_written_again_until_it_is_writable() {
    const BIG: usize = 16 * 1024;
    const SHORT: usize = 200;
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let filling = 2 * wmem_max / BIG + 50;
    let text = |seq: usize| {
        let len = if seq < filling { BIG } else { 16 };
        format!("{seq:08} {}", "x".repeat(len))
    };
    let server = ServerThread::start(Config {
        max_queue_bytes: 4 * wmem_max + (64 << 20),
        ..loopback_config()
    });
    let mut slow = small_window_client(server.addr, "slow", 4096);
    let mut fast = TestClient::hello(server.addr, "fast");
    let mut sender = TestClient::hello(server.addr, "sender");
    slow.recv_until(|v| v["type"] == "presence" && v["nick"] == "sender");
    fast.recv_until(|v| v["type"] == "presence" && v["nick"] == "sender");
    let mut broadcast = |seq: usize| {
        sender.send(&json!({"type": "all", "text": text(seq)}));
        fast.recv_until(|v| v["type"] == "all" && v["text"] == text(seq));
    };
    (0..filling).for_each(&mut broadcast);
    // The server runs in this process; its writes are its only sendmsg
    // calls (the test's clients write with send).
    let trace = common::strace::Trace::attach_for(std::process::id(), "full-socket", "sendmsg");
    (filling..filling + SHORT).for_each(&mut broadcast);
    let calls = trace.finish();
    let writes = calls.lines.iter().filter(|l| l.contains("sendmsg")).count();
    let failed: Vec<&String> = calls
        .lines
        .iter()
        .filter(|l| l.contains("sendmsg") && l.contains("EAGAIN"))
        .collect();
    assert!(writes >= SHORT, "strace saw {writes} sendmsg calls");
    assert!(
        failed.is_empty(),
        "{} of {writes} sendmsg calls failed with EAGAIN, the first: {:.200}",
        failed.len(),
        failed.first().map_or("", |l| l.as_str())
    );
    for seq in 0..filling + SHORT {
        let v = slow.recv_until(|v| v["type"] == "all");
        assert_eq!(v["text"], text(seq), "the stalled reader's broadcast {seq}");
    }
}
