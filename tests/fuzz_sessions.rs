//! Hand-written scripts for the core fuzz harness that reach resumable
//! sessions and the 1.2 commands (parking by every reason, honest and
//! dishonest resumes, wrong and spent tokens, `replaced`, expiry, the parked
//! cap, renames, `members`, `rooms`, notices), with every fuzzer invariant
//! checked after every step (`fuzz/harness/core_script.rs`,
//! `core_sessions.rs`).

// The harness derives `Arbitrary` under `--cfg fuzzing` only.
#![allow(unexpected_cfgs)]

use chat::Reason;
use serde_json::Value;

#[allow(dead_code)]
#[path = "../fuzz/harness/core_script.rs"]
mod core_script;

use core_script::{ClientMsg, HostPayload, Limits, Op, ResumeCount, Script};

fn send(client: u8, msg: ClientMsg) -> Op {
    Op::Send {
        client,
        msg,
        split: 2,
    }
}

fn resume(client: u8, token: u8, count: ResumeCount, corrupt: bool) -> Op {
    send(
        client,
        ClientMsg::Resume {
            token,
            count,
            corrupt,
        },
    )
}

fn run(ops: Vec<Op>) -> core_script::Outcome {
    core_script::run(&Script {
        limits: Limits::default(),
        ops,
    })
}

fn frames<'a>(out: &'a core_script::Outcome, client: usize, kind: &str) -> Vec<&'a Value> {
    out.received[client]
        .iter()
        .filter(|f| f["type"] == kind)
        .collect()
}

/// alice (client 0, resumable) and bob (client 1, plain).
fn alice_and_bob() -> Vec<Op> {
    vec![
        Op::Connect { ip: 0 },
        Op::Connect { ip: 0 },
        send(0, ClientMsg::HelloResumable { nick: 0 }),
        send(1, ClientMsg::Hello { nick: 2 }),
    ]
}

fn bob_to_alice(text: &str) -> Op {
    send(
        1,
        ClientMsg::Msg {
            to: 0,
            text: text.to_string(),
            id: None,
            spoof: false,
        },
    )
}

#[test]
fn a_parked_session_resumes_with_every_frame() {
    let mut ops = alice_and_bob();
    ops.extend([
        Op::Stall {
            client: 0,
            stalled: true,
        },
        bob_to_alice("one"),
        bob_to_alice("two"),
        Op::Gone { client: 0 },
        bob_to_alice("three"),
        Op::Reap,
        Op::Connect { ip: 0 },
        resume(2, 0, ResumeCount::Honest, false),
        bob_to_alice("four"),
    ]);
    let out = run(ops);
    let texts: Vec<&str> = frames(&out, 2, "msg")
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    assert_eq!(out.stats.resumed, 1);
    assert_eq!(out.stats.parked, 0);
    // bob (who came after her) heard nothing of her leaving or coming back.
    assert!(frames(&out, 1, "presence").is_empty());
}

#[test]
fn wrong_spent_and_dishonest_resumes() {
    let mut ops = alice_and_bob();
    ops.extend([
        bob_to_alice("one"),
        Op::Connect { ip: 0 },
        // Wrong token: nothing changes.
        resume(2, 0, ResumeCount::Honest, true),
        // Over a live connection: replaced.
        resume(2, 0, ResumeCount::Honest, false),
        Op::Reap,
        // The first token is spent now.
        Op::Connect { ip: 1 },
        resume(3, 0, ResumeCount::Honest, false),
        // A count past what was sent: a gap, and the session ends.
        resume(3, 1, ResumeCount::Ahead(5), false),
        send(3, ClientMsg::HelloResumable { nick: 0 }),
    ]);
    let out = run(ops);
    let failed: Vec<&str> = out.received[2..]
        .iter()
        .flatten()
        .filter(|f| f["code"] == "resume_failed")
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["unknown_session", "unknown_session", "gap"]);
    assert_eq!(out.received[0].last().unwrap()["code"], "replaced");
    assert_eq!(out.stats.disconnects_for(Reason::Disconnect), 1);
    assert_eq!(out.stats.registered, 2);
}

#[test]
fn timeouts_slow_consumers_expiry_and_the_parked_cap() {
    let limits = Limits {
        idle_ms: Some(400),
        ..Limits::default()
    };
    let mut ops = vec![Op::Connect { ip: 0 }; 5];
    for (c, nick) in [(0, 0), (1, 2), (2, 3), (3, 4)] {
        ops.push(send(c, ClientMsg::HelloResumable { nick }));
    }
    ops.push(send(4, ClientMsg::Hello { nick: 5 }));
    ops.extend([Op::Stall {
        client: 1,
        stalled: true,
    }]);
    // client 1 overflows its queue and parks as a slow consumer.
    for _ in 0..25 {
        ops.push(Op::HostBroadcast {
            payload: HostPayload::Notice { pad: 200 },
        });
    }
    ops.extend([
        Op::Gone { client: 0 },
        Op::Gone { client: 2 },
        // A fourth parks past the cap of three (max_clients): the oldest
        // ends.
        Op::Gone { client: 3 },
        Op::Reap,
        // The rest expire.
        Op::Advance { ms: 1500 },
        Op::Reap,
    ]);
    let out = core_script::run(&Script { limits, ops });
    assert_eq!(out.stats.parked, 0);
    assert_eq!(out.stats.registered, 0);
    assert_eq!(
        out.stats.disconnects_for(Reason::SlowConsumer),
        1,
        "{:?}",
        out.stats
    );
}

#[test]
fn renames_members_rooms_and_notices() {
    let mut ops = alice_and_bob();
    ops.extend([
        send(0, ClientMsg::Join { room: 0 }),
        send(1, ClientMsg::Join { room: 1 }),
        send(0, ClientMsg::Nick { nick: 3 }),
        send(1, ClientMsg::Nick { nick: 3 }),
        send(1, ClientMsg::Nick { nick: 5 }),
        send(1, ClientMsg::Members { room: 0 }),
        send(1, ClientMsg::Members { room: 4 }),
        send(1, ClientMsg::Rooms),
        Op::HostNotice {
            client: 0,
            text: "hi".into(),
        },
        Op::HostNoticeAll { text: "all".into() },
        send(
            1,
            ClientMsg::Frame(br#"{"type":"notice","text":"fake"}"#.to_vec()),
        ),
        send(
            0,
            ClientMsg::Msg {
                to: 2,
                text: "x".into(),
                id: None,
                spoof: false,
            },
        ),
    ]);
    let out = run(ops);
    let bob = &out.received[1];
    assert!(
        bob.iter().any(|f| f["state"] == "renamed" && f["nick"] == "c-3"),
        "{bob:?}"
    );
    assert!(bob.iter().any(|f| f["code"] == "nick_taken"), "{bob:?}");
    assert!(bob.iter().any(|f| f["type"] == "members"), "{bob:?}");
    assert!(bob.iter().any(|f| f["type"] == "rooms"), "{bob:?}");
    assert!(bob.iter().any(|f| f["code"] == "unknown_type"), "{bob:?}");
    assert_eq!(frames(&out, 0, "notice").len(), 2);
    assert_eq!(frames(&out, 1, "notice").len(), 1);
}

/// Fuzzing finding (a harness false positive, kept as a regression): with
/// approval on, a resume needs none and is answered at once.
#[test]
fn with_approval_a_resume_needs_no_approval() {
    let limits = Limits {
        approve: true,
        ..Limits::default()
    };
    let ops = vec![
        Op::Connect { ip: 0 },
        send(0, ClientMsg::HelloResumable { nick: 2 }),
        Op::Approve { client: 0 },
        Op::Gone { client: 0 },
        Op::Reap,
        Op::Connect { ip: 0 },
        resume(1, 0, ResumeCount::Honest, false),
        Op::HostNoticeAll { text: String::new() },
    ];
    let out = core_script::run(&Script { limits, ops });
    assert_eq!(out.stats.resumed, 1);
    assert_eq!(frames(&out, 1, "notice").len(), 1);
}
