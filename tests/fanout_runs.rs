//! A round's fan-out reaches each client as one run of the round's log,
//! written as the frames lie there: through the core's facade, with
//! "sockets" that take a few bytes at a time (frames cut anywhere, runs
//! split mid-way, what is left turned into entries of their own at the end
//! of the round), every frame arrives once, whole, in order, with the
//! unicasts between the broadcasts where they were sent, over the length
//! prefix and over WebSocket; and the cap still drops a client that does
//! not read while the others get everything.

use std::net::SocketAddr;
use std::time::Instant;

use chat::testing::Core;
use chat::{ClientId, Config};
use serde_json::{json, Value};

fn frame(v: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).unwrap();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Splits a byte stream into its JSON frames (all of them whole).
fn frames(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(serde_json::from_slice(&bytes[4..4 + len]).unwrap());
        bytes = &bytes[4 + len..];
    }
    out
}

/// A client's WebSocket text frame (masked, with a zero key).
fn ws_frame(v: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).unwrap();
    assert!(body.len() < 126);
    let mut out = vec![0x81, 0x80 | body.len() as u8, 0, 0, 0, 0];
    out.extend_from_slice(&body);
    out
}

/// Splits the server's WebSocket stream into its text frames' JSON.
fn ws_frames(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0], 0x81, "a final text frame");
        let (len, head) = match bytes[1] {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => panic!("no frame that long here"),
            n => (n as usize, 2),
        };
        out.push(serde_json::from_slice(&bytes[head..head + len]).unwrap());
        bytes = &bytes[head + len..];
    }
    out
}

fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn hello(core: &mut Core, nick: &str, port: u16, now: Instant) -> ClientId {
    let id = core.connect(peer(port), now);
    core.receive(id, &frame(&json!({"type": "hello", "nick": nick})), now);
    id
}

fn note(i: usize) -> Value {
    json!({"type": "note", "n": i})
}

#[test]
fn a_rounds_broadcasts_arrive_whole_and_in_order_through_sockets_that_take_little() {
    rounds_through_small_sockets(false);
}

#[test]
fn the_same_over_websocket() {
    rounds_through_small_sockets(true);
}

fn rounds_through_small_sockets(websocket: bool) {
    let now = Instant::now();
    let mut core = Core::new(&Config::default());
    let ids: Vec<ClientId> = (0..4)
        .map(|i| {
            let nick = format!("u{i}");
            if !websocket {
                return hello(&mut core, &nick, 1000 + i as u16, now);
            }
            let id = core.connect_websocket(peer(1000 + i as u16), now);
            core.receive(id, &ws_frame(&json!({"type": "hello", "nick": nick})), now);
            id
        })
        .collect();
    for &id in &ids {
        core.discard_output(id);
    }
    core.reap(now);
    // Each client's socket takes a different number of bytes per write,
    // some smaller than one frame.
    let takes = [usize::MAX, 7, 33, 150];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); ids.len()];
    let mut expected: Vec<Vec<Value>> = vec![Vec::new(); ids.len()];
    let mut n = 0;
    for round in 0..40 {
        // A round: broadcasts, with a unicast to one client between them
        // (it ends that client's run; the next broadcast starts another).
        for k in 0..(round % 9 + 1) {
            let v = note(n);
            n += 1;
            core.broadcast(&serde_json::to_vec(&v).unwrap(), now).unwrap();
            for e in &mut expected {
                e.push(v.clone());
            }
            if k % 3 == 1 {
                let who = (round + k) % ids.len();
                let u = json!({"type": "just", "for": who, "n": n});
                core.send(ids[who], &serde_json::to_vec(&u).unwrap(), now)
                    .unwrap();
                expected[who].push(u);
            }
        }
        // One write each, of what its socket takes.
        for (i, &id) in ids.iter().enumerate() {
            core.take_output_limited(id, &mut got[i], takes[i]);
        }
        // The round ends: what is left becomes entries of its own.
        core.reap(now);
    }
    // Then the sockets drain, a few bytes at a time, over later rounds.
    for _ in 0..100_000 {
        let mut moved = 0;
        for (i, &id) in ids.iter().enumerate() {
            moved += core.take_output_limited(id, &mut got[i], takes[i]);
        }
        core.reap(now);
        if moved == 0 {
            break;
        }
    }
    for i in 0..ids.len() {
        let got = if websocket {
            ws_frames(&got[i])
        } else {
            frames(&got[i])
        };
        assert_eq!(got, expected[i], "client {i} (socket takes {})", takes[i]);
    }
    let stats = core.stats();
    assert_eq!(stats.queued_bytes, 0, "every queue empty, every byte counted out");
}

#[test]
fn a_client_that_never_reads_is_dropped_at_its_cap_and_the_others_get_everything() {
    let now = Instant::now();
    let cfg = Config {
        max_queue_bytes: 8 * 1024,
        ..Config::default()
    };
    let mut core = Core::new(&cfg);
    let fast = hello(&mut core, "fast", 2000, now);
    let slow = hello(&mut core, "slow", 2001, now);
    let mut got = Vec::new();
    core.take_output(fast, &mut got);
    got.clear();
    core.take_output_limited(slow, &mut Vec::new(), 0);
    core.reap(now);
    let mut expected = Vec::new();
    for round in 0..50 {
        for k in 0..10 {
            let v = note(round * 10 + k);
            core.broadcast(&serde_json::to_vec(&v).unwrap(), now).unwrap();
            expected.push(v);
        }
        core.take_output(fast, &mut got);
        // slow's socket takes nothing.
        core.take_output_limited(slow, &mut Vec::new(), 0);
        core.reap(now);
    }
    let mut from_fast = frames(&got);
    // fast saw slow leave, between two of the broadcasts.
    let gone = from_fast
        .iter()
        .position(|v| v["type"] == "presence")
        .expect("slow's departure");
    assert_eq!(
        from_fast.remove(gone),
        json!({"type": "presence", "nick": "slow", "state": "offline", "reason": "slow_consumer"})
    );
    assert_eq!(from_fast, expected);
    assert!(!core.is_open(slow));
    assert_eq!(core.stats().disconnects_for(chat::Reason::SlowConsumer), 1);
}
