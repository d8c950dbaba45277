//! The server keeps serving through every kind of bad input: each one comes
//! from a fresh connection while two registered clients keep chatting, and
//! after each the two must still reach each other.

mod common;
mod support_a;

use std::net::Shutdown;

use common::*;
use serde_json::json;
use support_a::*;

/// What the bad connection should see.
enum Expect {
    /// This error, then the server closes.
    ErrorThenClose(&'static str),
    /// This error; the connection stays open (the test then drops it).
    Error(&'static str),
    /// Nothing in particular: the test drops or resets it at once.
    Nothing,
}

/// One bad input: a name, the bytes, what comes back, and how the client
/// leaves afterwards.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
    reset: bool,
}

fn case(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        bytes,
        expect,
        reset: false,
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let deep_id = format!(
        r#"{{"type":"ping","id":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let mut many_pings = Vec::new();
    for i in 0..2000 {
        many_pings.extend(json_frame(&json!({"type": "ping", "id": [i, "p".repeat(100)]})));
    }
    let half = json_frame(&json!({"type": "who"}));
    let mut cases = vec![
        case(
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ErrorThenClose("frame_too_large"),
        ),
        case(
            "TLS hello",
            vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
            ErrorThenClose("frame_too_large"),
        ),
        case("length 0", vec![0, 0, 0, 0], ErrorThenClose("empty_frame")),
        case(
            "length max+1",
            65537u32.to_be_bytes().to_vec(),
            ErrorThenClose("frame_too_large"),
        ),
        case(
            "length 2^32-1",
            u32::MAX.to_be_bytes().to_vec(),
            ErrorThenClose("frame_too_large"),
        ),
        case("not JSON", frame(b"hello?"), Error("bad_request")),
        case("an array", frame(b"[1,2,3]"), Error("bad_request")),
        case("no type", frame(b"{}"), Error("bad_request")),
        case("type 5", frame(br#"{"type":5}"#), Error("bad_request")),
        case(
            "invalid UTF-8",
            frame(b"{\"type\":\"\xff\"}"),
            Error("bad_request"),
        ),
        case("deep id", frame(deep_id.as_bytes()), Error("bad_request")),
        case(
            "unknown type",
            frame(br#"{"type":"launch"}"#),
            Error("unknown_type"),
        ),
        case(
            "msg before hello",
            json_frame(&json!({"type": "msg", "to": "alice", "text": "x"})),
            Error("not_registered"),
        ),
        case(
            "bad nick",
            json_frame(&json!({"type": "hello", "nick": "a b"})),
            Error("bad_nick"),
        ),
        case(
            "taken nick",
            json_frame(&json!({"type": "hello", "nick": "ALICE"})),
            Error("nick_taken"),
        ),
        case("half a frame", half[..half.len() - 3].to_vec(), Nothing),
        case("half a length", vec![0, 0], Nothing),
        case("nothing at all", Vec::new(), Nothing),
        case("2000 pings never read", many_pings.clone(), Nothing),
    ];
    for (name, bytes) in [
        ("reset after half a frame", half[..5].to_vec()),
        ("reset with answers queued", many_pings),
        ("reset at once", Vec::new()),
    ] {
        cases.push(Case {
            name,
            bytes,
            expect: Expect::Nothing,
            reset: true,
        });
    }
    cases
}

#[test]
fn the_server_keeps_serving_after_every_kind_of_bad_input() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    for case in cases() {
        let mut bad = TestClient::connect(server.addr);
        bad.send_raw(&case.bytes);
        match case.expect {
            Expect::ErrorThenClose(code) => {
                let frames = bad.expect_closed();
                assert_eq!(frames.len(), 1, "{}: {frames:?}", case.name);
                assert_error(&frames[0], code);
            }
            Expect::Error(code) => {
                let v = bad.recv();
                assert_eq!(v["code"], code, "{}: {v}", case.name);
                assert_error(&v, code);
            }
            Expect::Nothing => {}
        }
        if case.reset {
            reset(bad.stream);
        } else {
            drop(bad);
        }
        assert_chat_works(&mut alice, "alice", &mut bob, "bob");
        assert_chat_works(&mut bob, "bob", &mut alice, "alice");
    }
    // A registered client that misbehaves is dropped; the others carry on.
    let mut carol = TestClient::hello(server.addr, "carol");
    assert_eq!(alice.recv(), online("carol"));
    assert_eq!(bob.recv(), online("carol"));
    carol.send_raw(b"GET / HTTP/1.0\r\n\r\n");
    expect_error_then_close(&mut carol, "frame_too_large");
    assert_eq!(alice.recv(), offline("carol", "protocol_error"));
    assert_eq!(bob.recv(), offline("carol", "protocol_error"));
    let mut dave = TestClient::hello(server.addr, "dave");
    assert_eq!(alice.recv(), online("dave"));
    assert_eq!(bob.recv(), online("dave"));
    dave.stream.shutdown(Shutdown::Write).unwrap();
    assert!(dave.expect_closed().is_empty());
    assert_eq!(alice.recv(), offline("dave", "disconnect"));
    assert_eq!(bob.recv(), offline("dave", "disconnect"));
    assert_chat_works(&mut alice, "alice", &mut bob, "bob");
    // Nothing else reached the two who stayed.
    assert_nothing_pending(&mut alice);
    assert_nothing_pending(&mut bob);
    let stats = server.with(|s| s.stats());
    assert_eq!(stats.registered, 2);
}
