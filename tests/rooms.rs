//! Rooms (protocol 1.1) through the core's in-memory pipe: every row of the
//! table, the limits, and the host's room calls.

mod common;

use chat::testing::{Pipe, PipeClient};
use chat::{Config, EventKind};
use common::*;
use serde_json::json;

fn joined(c: &mut PipeClient, room: &str) -> serde_json::Value {
    c.send(&json!({"type": "join", "room": room}));
    c.recv_until(|v| v["type"] == "joined")
}

#[test]
fn join_part_and_talk_in_a_room() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    let mut carol = server.hello("carol");
    alice.recv(); // bob online
    alice.recv(); // carol online
    bob.recv(); // carol online

    assert_eq!(
        joined(&mut alice, "#Rust"),
        json!({"type":"joined","room":"#Rust","members":["alice"]})
    );
    // Names compare case-insensitively; the first spelling stays.
    assert_eq!(
        joined(&mut bob, "#rust"),
        json!({"type":"joined","room":"#Rust","members":["alice","bob"]})
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#Rust","state":"joined"})
    );

    bob.send(&json!({"type": "room", "room": "#RUST", "text": "hi room", "id": 5}));
    assert_eq!(
        alice.recv(),
        json!({"type":"room","room":"#Rust","from":"bob","text":"hi room"})
    );
    assert_eq!(bob.recv(), json!({"type":"ack","id":5,"queued":1}));

    // carol is not a member: she gets not_in_room and hears nothing.
    carol.send(&json!({"type": "room", "room": "#rust", "text": "let me in"}));
    assert_eq!(
        carol.recv(),
        json!({"type":"error","code":"not_in_room","room":"#rust"})
    );
    carol.send(&json!({"type": "part", "room": "#rust"}));
    assert_eq!(
        carol.recv(),
        json!({"type":"error","code":"not_in_room","room":"#rust"})
    );

    bob.send(&json!({"type": "part", "room": "#rust"}));
    assert_eq!(bob.recv(), json!({"type":"parted","room":"#Rust"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#Rust","state":"parted"})
    );

    // Joining twice only repeats the member list, with no presence.
    assert_eq!(
        joined(&mut alice, "#rust"),
        json!({"type":"joined","room":"#Rust","members":["alice"]})
    );

    // The host sees joins and parts, in order.
    let kinds: Vec<String> = std::iter::from_fn(|| Some(server.next_event()))
        .filter_map(|e| match e.kind {
            EventKind::Joined { room } => Some(format!("{} joined {room}", e.nick.unwrap())),
            EventKind::Parted { room } => Some(format!("{} parted {room}", e.nick.unwrap())),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(
        kinds,
        ["alice joined #Rust", "bob joined #Rust", "bob parted #Rust"]
    );
}

#[test]
fn leaving_the_server_parts_every_room_and_empty_rooms_vanish() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv(); // bob online
    joined(&mut alice, "#a");
    joined(&mut bob, "#a");
    joined(&mut bob, "#b");
    alice.recv(); // bob joined #a
    bob.send(&json!({"type": "quit"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#a","state":"parted"})
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"quit"})
    );
    let rooms = server.with(|s| s.rooms());
    assert_eq!(
        rooms.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["#a"],
        "#b vanished with bob"
    );
}

#[test]
fn bad_room_names() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    for bad in ["rust", "#", "#has space", &format!("#{}", "x".repeat(33)), "#é"] {
        alice.send(&json!({"type": "join", "room": bad}));
        let v = alice.recv();
        assert_eq!(v["code"], "bad_room", "{bad}");
    }
    alice.send(&json!({"type": "join"}));
    assert_eq!(alice.recv()["code"], "bad_request");
    alice.send(&json!({"type": "room", "room": "#x"}));
    assert_eq!(alice.recv()["code"], "bad_request");
}

#[test]
fn room_limits_each_have_their_code() {
    let cfg = Config {
        max_rooms_per_client: 2,
        max_members_per_room: 2,
        max_rooms: 3,
        ..loopback_config()
    };
    let server = Pipe::start(cfg);
    let mut a = server.hello("a");
    let mut b = server.hello("b");
    let mut c = server.hello("c");
    joined(&mut a, "#1");
    joined(&mut a, "#2");
    a.send(&json!({"type": "join", "room": "#3"}));
    assert_eq!(a.recv_until(|v| v["type"] == "error")["code"], "too_many_rooms");
    joined(&mut b, "#1");
    c.send(&json!({"type": "join", "room": "#1"}));
    assert_eq!(c.recv_until(|v| v["type"] == "error")["code"], "room_full");
    joined(&mut c, "#3");
    b.send(&json!({"type": "join", "room": "#4"}));
    assert_eq!(
        b.recv_until(|v| v["type"] == "error")["code"],
        "server_room_limit"
    );
}

#[test]
fn host_sends_to_lists_and_removes_from_rooms() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv();
    joined(&mut alice, "#ops");
    joined(&mut bob, "#ops");
    alice.recv(); // bob joined
    let n = server.with(|s| {
        s.room_send(
            "#OPS",
            br##"{"type":"room","room":"#ops","from":"host","text":"hi"}"##,
        )
    });
    assert_eq!(n.unwrap(), 2);
    assert_eq!(alice.recv()["from"], "host");
    assert_eq!(bob.recv()["from"], "host");
    let members = server.with(|s| s.room_members("#ops")).unwrap();
    assert_eq!(members.len(), 2);
    let bob_id = members[1];
    server.with(move |s| s.room_remove(bob_id, "#ops")).unwrap();
    assert_eq!(bob.recv(), json!({"type":"parted","room":"#ops"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#ops","state":"parted"})
    );
    assert!(matches!(
        server.with(move |s| s.room_remove(bob_id, "#ops")),
        Err(chat::Error::NotInRoom { .. })
    ));
    assert!(matches!(
        server.with(move |s| s.room_remove(bob_id, "#nope")),
        Err(chat::Error::UnknownRoom(_))
    ));
    assert!(matches!(
        server.with(|s| s.room_remove(4242, "#ops")),
        Err(chat::Error::UnknownClient(4242))
    ));
    assert!(matches!(
        server.with(|s| s.room_send("#none", br#"{"type":"x"}"#)),
        Err(chat::Error::UnknownRoom(_))
    ));
    assert!(server.with(|s| s.room_members("#none")).is_none());
}

#[test]
fn room_messages_share_one_frame_and_respect_the_queue_cap() {
    // 50 members, one message: every member but the sender gets it once.
    let server = Pipe::default();
    let mut members: Vec<PipeClient> = (0..50).map(|i| server.hello(&format!("m{i}"))).collect();
    for m in members.iter_mut() {
        joined(m, "#big");
    }
    members[0].send(&json!({"type": "room", "room": "#big", "text": "all of you", "id": "x"}));
    assert_eq!(members[0].recv_until(|v| v["type"] == "ack")["queued"], 49);
    for m in members.iter_mut().skip(1) {
        assert_eq!(m.recv_until(|v| v["type"] == "room")["text"], "all of you");
    }
}
