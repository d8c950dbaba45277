//! PROTOCOL.md "Framing", through the core's in-memory pipe (each write is
//! one read of the server): reassembly at any split, many frames per
//! write, the two framing errors, and forward-compatible parsing.

mod common;
mod support_a;

use chat::testing::Pipe;
use serde_json::json;
use support_a::*;

/// A `ping` whose frame has the same length for every `n`.
fn numbered_ping(n: usize) -> Vec<u8> {
    json_frame(&json!({"type": "ping", "id": format!("{n:06}")}))
}

#[test]
fn a_frame_split_at_every_byte_boundary_is_reassembled() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    let mut sent = server.with(|s| s.stats().bytes_in);
    let len = numbered_ping(0).len();
    for cut in 1..len {
        let bytes = numbered_ping(cut);
        c.send_raw(&bytes[..cut]);
        // The first part is in the server, as one read of its own.
        assert_eq!(server.with(|s| s.stats().bytes_in), sent + cut as u64);
        c.send_raw(&bytes[cut..]);
        assert_eq!(c.recv(), json!({"type": "pong", "id": format!("{cut:06}")}));
        sent += len as u64;
    }
}

#[test]
fn a_whole_session_sent_one_byte_per_write_works() {
    let server = Pipe::default();
    let mut bob = server.hello("bob");
    let mut alice = server.connect();
    let mut stream = json_frame(&json!({"type": "hello", "nick": "alice"}));
    stream.extend(json_frame(
        &json!({"type": "msg", "to": "bob", "text": "byte by byte"}),
    ));
    let before = server.with(|s| s.stats().bytes_in);
    for (i, b) in stream.iter().enumerate() {
        alice.send_raw(&[*b]);
        assert_eq!(server.with(|s| s.stats().bytes_in), before + i as u64 + 1);
    }
    assert_eq!(alice.recv()["type"], "welcome");
    assert_eq!(bob.recv(), online("alice"));
    assert_eq!(
        bob.recv(),
        json!({"type": "msg", "from": "alice", "to": "bob", "text": "byte by byte"})
    );
}

#[test]
fn many_frames_in_one_write_are_all_handled_in_order() {
    let server = Pipe::default();
    let mut c = server.connect();
    let mut batch = json_frame(&json!({"type": "hello", "nick": "alice"}));
    for i in 0..500 {
        batch.extend(json_frame(&json!({"type": "ping", "id": i})));
    }
    batch.extend(json_frame(&json!({"type": "who"})));
    c.send_raw(&batch);
    assert_eq!(
        c.recv(),
        json!({"type": "welcome", "nick": "alice", "users": ["alice"]})
    );
    for i in 0..500 {
        assert_eq!(c.recv(), json!({"type": "pong", "id": i}));
    }
    assert_eq!(c.recv(), json!({"type": "users", "users": ["alice"]}));
}

#[test]
fn a_frame_of_exactly_max_frame_bytes_is_accepted() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    let overhead = json!({"type": "ping", "id": ""}).to_string().len();
    let id = "x".repeat(65536 - overhead);
    let payload = json!({"type": "ping", "id": id}).to_string();
    assert_eq!(payload.len(), 65536);
    c.send_payload(payload.as_bytes());
    assert_eq!(c.recv(), json!({"type": "pong", "id": id}));
}

#[test]
fn length_zero_gets_empty_frame_then_close() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    c.send_raw(&[0, 0, 0, 0]);
    expect_error_then_close(&mut c, "empty_frame");
}

#[test]
fn length_zero_before_hello_gets_empty_frame_then_close() {
    let server = Pipe::default();
    let mut c = server.connect();
    c.send_raw(&[0, 0, 0, 0]);
    expect_error_then_close(&mut c, "empty_frame");
}

#[test]
fn length_one_over_max_frame_bytes_gets_frame_too_large_then_close() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    c.send_raw(&65537u32.to_be_bytes());
    expect_error_then_close(&mut c, "frame_too_large");
}

#[test]
fn length_over_a_smaller_configured_limit_gets_frame_too_large() {
    let server = Pipe::start(config_with(|c| c.max_frame_bytes = 100));
    let mut c = server.hello("alice");
    let ok = json!({"type": "ping", "id": "y".repeat(70)}).to_string();
    assert!(ok.len() <= 100);
    c.send_payload(ok.as_bytes());
    assert_eq!(c.recv()["type"], "pong");
    c.send_raw(&101u32.to_be_bytes());
    expect_error_then_close(&mut c, "frame_too_large");
}

#[test]
fn length_u32_max_gets_frame_too_large_then_close() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    c.send_raw(&u32::MAX.to_be_bytes());
    expect_error_then_close(&mut c, "frame_too_large");
}

/// The answer comes as soon as the 4 length bytes are in: the server does
/// not wait for (or reserve room for) the 4 GiB it announced, and keeps
/// serving everyone else.
#[test]
fn a_huge_length_is_refused_before_any_payload_and_the_server_survives() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    assert_eq!(alice.recv(), online("bob"));
    for _ in 0..20 {
        let mut evil = server.connect();
        evil.send_raw(&u32::MAX.to_be_bytes());
        evil.send_raw(b"{\"type\":");
        expect_error_then_close(&mut evil, "frame_too_large");
    }
    assert_chat_works(&mut alice, "alice", &mut bob, "bob");
    assert_chat_works(&mut bob, "bob", &mut alice, "alice");
}

#[test]
fn a_frame_whose_length_arrives_split_is_checked_once_complete() {
    let server = Pipe::default();
    let mut c = server.hello("alice");
    let before = server.with(|s| s.stats().bytes_in);
    let header = u32::MAX.to_be_bytes();
    for (i, b) in header.iter().enumerate() {
        c.send_raw(&[*b]);
        assert_eq!(server.with(|s| s.stats().bytes_in), before + i as u64 + 1);
    }
    expect_error_then_close(&mut c, "frame_too_large");
}

#[test]
fn unknown_fields_are_ignored() {
    let server = Pipe::default();
    let mut bob = server.hello("bob");
    let mut alice = server.connect();
    alice.send(&json!({"type": "hello", "nick": "alice", "version": 2, "caps": {"x": [1, 2]}}));
    assert_eq!(
        alice.recv(),
        json!({"type": "welcome", "nick": "alice", "users": ["alice", "bob"]})
    );
    assert_eq!(bob.recv(), online("alice"));
    alice.send(&json!({"type": "msg", "to": "bob", "text": "hi", "color": "red", "z": null}));
    assert_eq!(
        bob.recv(),
        json!({"type": "msg", "from": "alice", "to": "bob", "text": "hi"})
    );
    alice.send(&json!({"type": "all", "text": "yo", "priority": [1, {"a": true}]}));
    assert_eq!(bob.recv(), json!({"type": "all", "from": "alice", "text": "yo"}));
    alice.send(&json!({"type": "who", "filter": "b*"}));
    assert_eq!(alice.recv(), json!({"type": "users", "users": ["alice", "bob"]}));
    alice.send(&json!({"type": "ping", "id": 7, "extra": "x"}));
    assert_eq!(alice.recv(), json!({"type": "pong", "id": 7}));
    alice.send(&json!({"type": "quit", "why": "done"}));
    assert!(alice.expect_closed().is_empty());
    assert_eq!(bob.recv(), offline("alice", "quit"));
}
