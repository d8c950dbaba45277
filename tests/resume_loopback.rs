//! Resumable sessions and the 1.2 commands over real sockets on 127.0.0.1:
//! a connection reset with frames unread in its socket, resumed without a
//! loss or a repeat; `replaced`; the commands and notices; and the example
//! server's `--resume-window-ms` and `--resume-retain-bytes`. The same
//! rules in depth, in memory: `resume.rs`, `commands.rs`.

mod common;
mod resume_support;
mod support_a;

use std::process::{Command, Stdio};

use chat::EventKind;
use common::*;
use resume_support::*;
use serde_json::{json, Value};
use support_a::*;

/// alice (resumable) and bob (plain), with alice's presence frame of bob
/// read.
fn alice_and_bob(addr: std::net::SocketAddr) -> (Resumer<TestClient>, TestClient) {
    let mut alice = Resumer::hello(TestClient::connect(addr), "alice");
    let bob = TestClient::hello(addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    (alice, bob)
}

#[test]
fn a_reset_with_frames_unread_loses_nothing_and_repeats_nothing() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(server.addr);
    let mut expected = vec![online("bob")];
    for i in 0..200 {
        let text = format!("m{i} {}", "x".repeat(i % 50));
        bob.send(&json!({"type": "msg", "to": "alice", "text": text}));
        expected.push(msg("bob", "alice", &text));
    }
    // Both ways while they arrive.
    for i in 0..5 {
        alice.recv();
        alice
            .wire
            .send(&json!({"type": "msg", "to": "bob", "text": format!("back {i}")}));
    }
    for i in 0..5 {
        assert_eq!(bob.recv(), msg("alice", "bob", &format!("back {i}")));
    }
    // Make sure all 200 reached her socket, then lose what she did not
    // read: a reset discards it.
    bob.send(&json!({"type": "msg", "to": "alice", "text": "last"}));
    expected.push(msg("bob", "alice", "last"));
    assert_nothing_pending(&mut bob);
    let old = std::mem::replace(&mut alice.wire, TestClient::connect(server.addr));
    reset(old.stream);
    let parked = server.event_until(|e| matches!(e.kind, EventKind::Parked { .. }));
    assert_eq!(parked.nick.as_deref(), Some("alice"));
    bob.send(&json!({"type": "msg", "to": "alice", "text": "while parked"}));
    expected.push(msg("bob", "alice", "while parked"));
    assert_nothing_pending(&mut bob);
    alice.resume(TestClient::connect(server.addr));
    alice.wire.send(&json!({"type": "ping", "id": "end"}));
    while alice.recv() != json!({"type": "pong", "id": "end"}) {}
    let got: Vec<Value> = alice
        .frames
        .iter()
        .filter(|v| v["type"] != "pong")
        .cloned()
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    assert_nothing_pending(&mut bob);
    assert_chat_works(&mut bob, "bob", &mut alice.wire, "alice");
}

#[test]
fn a_resume_over_a_live_connection_replaces_it() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(server.addr);
    let mut old = alice.resume(TestClient::connect(server.addr));
    let frames = old.expect_closed();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_error(&frames[0], "replaced");
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Resumed { .. }));
    assert_eq!(ev.nick.as_deref(), Some("alice"));
    assert_nothing_pending(&mut bob);
    assert_chat_works(&mut alice.wire, "alice", &mut bob, "bob");
}

#[test]
fn commands_and_notices_over_sockets() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    for c in [&mut alice, &mut bob] {
        c.send(&json!({"type": "join", "room": "#r"}));
        assert_eq!(c.recv()["type"], "joined");
    }
    assert_eq!(alice.recv()["state"], "joined");
    bob.send(&json!({"type": "nick", "nick": "robert"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "nick", "nick": "robert", "old": "bob"})
    );
    assert_eq!(
        alice.recv(),
        json!({"type": "presence", "nick": "robert", "old": "bob", "state": "renamed"})
    );
    alice.send(&json!({"type": "members", "room": "#r"}));
    assert_eq!(
        alice.recv(),
        json!({"type": "members", "room": "#r", "members": ["alice", "robert"]})
    );
    alice.send(&json!({"type": "rooms"}));
    assert_eq!(
        alice.recv(),
        json!({"type": "rooms", "rooms": [{"room": "#r", "members": 2}]})
    );
    assert_eq!(server.with(|s| s.notice_all("hello from the host")).unwrap(), 2);
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.recv(), json!({"type": "notice", "text": "hello from the host"}));
    }
    alice.send(&json!({"type": "notice", "text": "fake"}));
    expect_error(&mut alice, "unknown_type");
    assert_nothing_pending(&mut bob);
}

fn start_server(args: &[&str]) -> (Spawned, std::net::SocketAddr) {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped());
    spawn_listening(cmd)
}

#[test]
fn the_example_server_takes_the_resume_flags() {
    let (mut srv, addr) = start_server(&["--resume-window-ms", "300", "--resume-retain-bytes", "4096"]);
    let (mut alice, mut bob) = alice_and_bob(addr);
    alice.wire.send(&json!({"type": "join", "room": "#r"}));
    assert_eq!(alice.recv()["type"], "joined");
    drop(alice);
    // Nobody is told while the window runs; then she leaves as she went.
    assert_eq!(bob.recv(), offline("alice", "disconnect"));
    let pid = nix::unistd::Pid::from_raw(srv.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(srv.wait().success());
    let log = srv.stderr();
    assert!(log.contains("parked (disconnect)"), "{log}");
    assert!(log.contains("left (disconnect)"), "{log}");
    assert!(log.contains("sessions parked 0 resumed 0"), "{log}");

    for (flag, want) in [
        ("--resume-window-ms", "--resume-window-ms must be at least 1"),
        (
            "--resume-retain-bytes",
            "--resume-retain-bytes must be at least 1",
        ),
    ] {
        let out = Command::new(example_bin("chat_server"))
            .args([flag, "0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
}
