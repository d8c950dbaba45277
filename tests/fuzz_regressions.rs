//! What the fuzzers (`fuzz/`) check, kept in `cargo test`: the committed seed
//! inputs replayed through the same checks, the findings as regression
//! tests, and hand-written scripts for the core harness that reach each limit
//! (slow consumer, rate limit, timeouts, approval, interception, shutdown)
//! with every fuzzer invariant checked after every step.
//!
//! The harness files are shared with the fuzz targets, so a test here checks
//! exactly what the fuzzer checked.

// The core harness derives `Arbitrary` under `--cfg fuzzing` only (cargo-fuzz
// sets it); this build does not, and does not know the cfg.
#![allow(unexpected_cfgs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat::testing::Core;
use chat::{Config, Reason};
use serde_json::Value;

#[allow(dead_code)]
#[path = "../fuzz/harness/core_script.rs"]
mod core_script;
#[path = "../fuzz/harness/frame_check.rs"]
mod frame_check;
#[path = "../fuzz/harness/parse_check.rs"]
mod parse_check;

use core_script::{ClientMsg, HostPayload, Limits, Op, Script};

/// Every file in `fuzz/seeds/<target>`, sorted.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn frame_decoder_seeds_agree_with_the_reference() {
    let seeds = seeds("frame_decoder");
    assert!(!seeds.is_empty());
    for (path, bytes) in seeds {
        eprintln!("{}", path.display());
        frame_check::run(&bytes);
    }
}

#[test]
fn parse_seeds_pass_the_parse_checks() {
    let seeds = seeds("parse");
    assert!(!seeds.is_empty());
    for (path, bytes) in seeds {
        eprintln!("{}", path.display());
        parse_check::run(&bytes);
    }
}

fn hello(client: u8, nick: u8) -> Op {
    Op::Send {
        client,
        msg: ClientMsg::Hello { nick },
        split: 0,
    }
}

fn send(client: u8, msg: ClientMsg) -> Op {
    Op::Send {
        client,
        msg,
        split: 3,
    }
}

/// Indexes into `core_script::NICKS`.
const ALICE: u8 = 0;
const BOB: u8 = 2;
const CAROL: u8 = 3;

/// The frames of one type a client received.
fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

/// Three clients that register, then every way of naming a sender.
fn three_registered() -> Vec<Op> {
    let mut ops = vec![
        Op::Connect { ip: 0 },
        Op::Connect { ip: 0 },
        Op::Connect { ip: 1 },
    ];
    ops.extend([hello(0, ALICE), hello(1, BOB), hello(2, CAROL)]);
    ops
}

#[test]
fn a_spoofed_from_never_reaches_recipients() {
    let mut ops = three_registered();
    for room in [0, 1] {
        ops.push(send(0, ClientMsg::Join { room }));
        ops.push(send(1, ClientMsg::Join { room }));
    }
    let text = || "hi".to_string();
    ops.extend([
        send(
            0,
            ClientMsg::Msg {
                to: BOB,
                text: text(),
                id: Some(1),
                spoof: true,
            },
        ),
        send(
            0,
            ClientMsg::All {
                text: text(),
                id: None,
                spoof: true,
            },
        ),
        send(
            0,
            ClientMsg::Room {
                room: 0,
                text: text(),
                id: Some(2),
                spoof: true,
            },
        ),
        // A raw frame with `from` first and twice: still the real sender.
        send(
            2,
            ClientMsg::Frame(br#"{"from":"alice","type":"all","from":"bob","text":"x"}"#.to_vec()),
        ),
    ]);
    let out = core_script::run(&Script {
        limits: Limits::default(),
        ops,
    });
    let bob = &out.received[1];
    let routed: Vec<_> = bob
        .iter()
        .filter(|f| matches!(f["type"].as_str(), Some("msg" | "all" | "room")))
        .collect();
    let senders: Vec<_> = routed.iter().map(|f| f["from"].as_str().unwrap()).collect();
    // carol's frame had two `from` fields (unknown, so ignored): still hers.
    assert_eq!(senders, ["alice", "alice", "alice", "c-3"], "{bob:?}");
}

#[test]
fn a_stalled_reader_is_dropped_as_slow_consumer_and_queues_stay_capped() {
    let mut ops = vec![Op::Connect { ip: 0 }, Op::Connect { ip: 0 }];
    ops.extend([
        hello(0, ALICE),
        hello(1, BOB),
        Op::Stall {
            client: 1,
            stalled: true,
        },
    ]);
    for _ in 0..25 {
        ops.push(Op::HostBroadcast {
            payload: HostPayload::Notice { pad: 200 },
        });
    }
    ops.extend([
        Op::Stall {
            client: 1,
            stalled: false,
        },
        Op::Reap,
    ]);
    let out = core_script::run(&Script {
        limits: Limits::default(),
        ops,
    });
    assert_eq!(out.stats.disconnects_for(Reason::SlowConsumer), 1);
    assert!(out.stats.peak_queued_bytes <= 2 * 4096, "{:?}", out.stats);
    assert_eq!(of_type(&out.received[0], "notice").len(), 25);
    let bob = &out.received[1];
    let last = bob.last().unwrap();
    assert_eq!(last["code"], "slow_consumer", "{bob:?}");
}

#[test]
fn a_flooding_client_is_told_then_dropped_while_others_keep_chatting() {
    let mut ops = vec![Op::Connect { ip: 0 }, Op::Connect { ip: 0 }];
    ops.extend([hello(0, ALICE), hello(1, BOB)]);
    // Two frames a second allowed; bob sends ten per 100 ms for 4 s.
    for _ in 0..40 {
        for _ in 0..10 {
            ops.push(send(1, ClientMsg::Who));
        }
        ops.push(Op::Advance { ms: 100 });
    }
    let out = core_script::run(&Script {
        limits: Limits {
            rate_frames: Some(2),
            ..Limits::default()
        },
        ops,
    });
    let bob = &out.received[1];
    assert_eq!(
        bob.iter().filter(|f| f["code"] == "rate_limited").count(),
        1,
        "{bob:?}"
    );
    assert_eq!(bob.last().unwrap()["code"], "protocol_error");
    assert_eq!(out.stats.disconnects_for(Reason::ProtocolError), 1);
    let alice = &out.received[0];
    assert_eq!(alice.last().unwrap()["state"], "offline", "{alice:?}");
}

#[test]
fn silent_and_unregistered_clients_time_out() {
    let ops = vec![
        Op::Connect { ip: 0 },
        Op::Connect { ip: 0 },
        hello(0, ALICE),
        Op::Advance { ms: 600 },
        Op::Advance { ms: 600 },
        Op::Reap,
    ];
    let out = core_script::run(&Script {
        limits: Limits {
            idle_ms: Some(1000),
            handshake_ms: Some(500),
            ..Limits::default()
        },
        ops,
    });
    assert_eq!(out.stats.disconnects_for(Reason::Timeout), 2);
    assert_eq!(of_type(&out.received[0], "ping").len(), 1);
    assert_eq!(out.received[1].last().unwrap()["code"], "timeout");
    assert_eq!(out.stats.clients, 0);
}

#[test]
fn approval_and_interception_keep_every_invariant() {
    let mut ops = three_registered();
    ops.extend([
        Op::Approve { client: 0 },
        Op::Approve { client: 1 },
        Op::Reject { client: 2 },
        send(
            0,
            ClientMsg::Msg {
                to: BOB,
                text: "held".into(),
                id: Some(7),
                spoof: true,
            },
        ),
        send(
            1,
            ClientMsg::All {
                text: "dropped".into(),
                id: None,
                spoof: false,
            },
        ),
        Op::Release { ticket: 0 },
        Op::Release { ticket: 0 },
        Op::DropHeld { ticket: 1 },
        hello(2, CAROL),
        Op::Advance { ms: 1500 },
        Op::Shutdown,
    ]);
    let out = core_script::run(&Script {
        limits: Limits {
            approve: true,
            intercept: true,
            ..Limits::default()
        },
        ops,
    });
    let bob = &out.received[1];
    let msgs = of_type(bob, "msg");
    assert_eq!(msgs.len(), 1, "{bob:?}");
    assert_eq!(msgs[0]["from"], "alice");
    assert!(bob.iter().any(|f| f["code"] == "dropped"), "{bob:?}");
    let carol = &out.received[2];
    assert_eq!(
        carol.iter().filter(|f| f["code"] == "rejected").count(),
        2,
        "{carol:?}"
    );
}

#[test]
fn hostile_frames_from_every_client_keep_every_invariant() {
    let mut ops = three_registered();
    ops.extend([
        Op::Raw {
            client: 0,
            bytes: vec![0xff, 0xff, 0xff, 0xff],
        },
        Op::Raw {
            client: 1,
            bytes: vec![0, 0, 0, 0],
        },
        send(
            2,
            ClientMsg::Frame(b"{\"type\":\"all\",\"text\":\"\xff\"}".to_vec()),
        ),
        send(
            2,
            ClientMsg::Frame(format!("{}{}", "[".repeat(120), "]".repeat(120)).into_bytes()),
        ),
        send(2, ClientMsg::Frame(br#"{"type":"ping","id":1e400}"#.to_vec())),
        Op::HostSend {
            client: 2,
            payload: HostPayload::Raw(b"{\"type\":\"x\"".to_vec()),
        },
        Op::HostBroadcast {
            payload: HostPayload::Notice { pad: 300 },
        },
        Op::Kick {
            client: 2,
            message: Some("bye".into()),
        },
        Op::HostSend {
            client: 2,
            payload: HostPayload::Notice { pad: 1 },
        },
        Op::Reap,
    ]);
    let out = core_script::run(&Script {
        limits: Limits::default(),
        ops,
    });
    assert_eq!(out.stats.disconnects_for(Reason::ProtocolError), 2);
    assert_eq!(out.stats.disconnects_for(Reason::Kicked), 1);
    let carol = &out.received[2];
    let codes: Vec<_> = carol.iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(codes, ["bad_request", "bad_request", "kicked"], "{carol:?}");
    // Finding F1: the pong echoing `1e400` is there, as is.
    let pong = of_type(carol, "pong");
    assert_eq!(
        pong[0]["unreadable"], r#"{"type":"pong","id":1e400}"#,
        "{carol:?}"
    );
}

/// Finding F1 of the parse fuzzer: an id holding a number beyond f64's range
/// is valid JSON; the server echoes it byte for byte, as the protocol says
/// ("X any JSON value, echoed as is"), and does not fail. serde_json clients
/// cannot read that number back (docs/reliability.md).
#[test]
fn f1_an_id_beyond_f64_range_is_echoed_as_is() {
    let input = br#"{"type":"all","text":"hi","id":[88888888888888888888887e1608588,1]}"#;
    parse_check::run(input);
    let cfg = Config::default();
    let mut core = Core::new(&cfg);
    let now = Instant::now();
    let id = core.connect("127.0.0.1:1".parse().unwrap(), now);
    let mut wire = Vec::new();
    for payload in [
        &br#"{"type":"hello","nick":"al"}"#[..],
        br#"{"type":"ping","id":1e400}"#,
        input,
    ] {
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        wire.extend_from_slice(payload);
    }
    core.receive(id, &wire, now);
    let mut out = Vec::new();
    core.take_output(id, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#"{"type":"pong","id":1e400}"#), "{text}");
    assert!(
        text.contains(r#"{"type":"ack","id":[88888888888888888888887e1608588,1],"queued":0}"#),
        "{text}"
    );
    core.tick(now + Duration::from_secs(1));
}

/// Finding F2 of the core fuzzer (input: `Connect`, then
/// `HostSend { payload: Raw(b"{}") }`): the host API takes any JSON object,
/// `type` or not, and the client receives `{}`, although PROTOCOL.md says
/// every payload is an object with a string `type`. The host's payloads are
/// now refused without one (`NotJsonObject`), like the other checks of
/// `check_payload`.
#[test]
fn f2_a_host_payload_without_a_string_type_is_refused() {
    let mut core = Core::new(&Config::default());
    let now = Instant::now();
    let id = core.connect("127.0.0.1:1".parse().unwrap(), now);
    for payload in [&b"{}"[..], br#"{"type":5}"#, br#"{"kind":"notice"}"#] {
        assert!(
            core.send(id, payload, now).is_err(),
            "{:?}",
            String::from_utf8_lossy(payload)
        );
        assert!(core.broadcast(payload, now).is_err());
    }
    let mut out = Vec::new();
    assert_eq!(core.take_output(id, &mut out), 0);
}
