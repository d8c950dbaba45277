//! The message parser fuzz check, shared by the `parse` fuzz target and the
//! corpus replay in `tests/fuzz_regressions.rs`.
//!
//! `chat::message::parse` must never panic, and whatever it accepts must
//! be answerable: the `pong` or `ack` echoing a client's `id`, and a `msg`
//! carrying its text, must be JSON that serde_json (a typical client) can
//! read back, with the id and text unchanged. And its fast path must read
//! every payload exactly as serde_json does (`parse_slow`).

use chat::message::{
    encode_json, parse, parse_slow, text_payload, Incoming, JsonString, Outgoing, ParseError, TextTo,
};
use serde_json::value::RawValue;
use serde_json::Value;

/// Parses a payload the server built, as a client would.
fn client_reads(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|e| panic!("a client cannot read the server's answer ({e})"))
}

/// The echoed id is byte for byte the client's, and reads back as the same
/// JSON value.
fn check_echo(id: &RawValue, payload: &[u8]) {
    let text = std::str::from_utf8(payload).expect("the server writes UTF-8");
    assert!(text.contains(id.get()), "the id was not echoed as is");
    // Finding F1 (docs/reliability.md): an id with a number beyond f64's
    // range (`1e400`) is valid JSON that the parser accepts and echoes as
    // is, as the protocol says, but serde_json (and Go's encoding/json)
    // cannot read it back. Nothing to compare for those.
    let Ok(original) = serde_json::from_str::<Value>(id.get()) else {
        return;
    };
    let echoed = &client_reads(payload)["id"];
    assert_eq!(echoed, &original, "the id did not come back unchanged");
}

/// A text goes out in a `msg` (as the sender's JSON literal) and a client
/// reads back the string the sender meant.
fn check_text(text: JsonString<'_>) {
    let meant: String =
        serde_json::from_str(text.literal()).expect("an accepted text is a readable JSON string");
    let payload = text_payload("a", TextTo::One { to: "b" }, text);
    assert_eq!(client_reads(&payload)["text"], Value::from(meant));
}

/// Checks one payload; panics on any violation.
pub fn run(data: &[u8]) {
    let parsed = parse(data);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", parse_slow(data)),
        "the fast path and serde_json read this payload differently"
    );
    let msg = match parsed {
        Ok(msg) => msg,
        Err(ParseError::BadRequest) => return,
        Err(ParseError::UnknownType) => {
            // It was valid enough to have a string type: an unknown one.
            assert!(std::str::from_utf8(data).is_ok());
            return;
        }
    };
    assert!(
        std::str::from_utf8(data).is_ok(),
        "accepted a payload that is not UTF-8"
    );
    assert!(chat::message::looks_like_object(data));
    // Where serde_json can read the whole payload (it refuses more than 128
    // levels even in fields the parser skips), its type is the one parsed.
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(data) {
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .expect("accepted without a string type");
        let expected = match &msg {
            Incoming::Hello { .. } => "hello",
            Incoming::Msg { .. } => "msg",
            Incoming::All { .. } => "all",
            Incoming::Who => "who",
            Incoming::Ping { .. } => "ping",
            Incoming::Pong => "pong",
            Incoming::Quit => "quit",
            Incoming::Join { .. } => "join",
            Incoming::Part { .. } => "part",
            Incoming::Room { .. } => "room",
            Incoming::Nick { .. } => "nick",
            Incoming::Members { .. } => "members",
            Incoming::Rooms => "rooms",
        };
        assert_eq!(kind, expected);
    }
    match msg {
        Incoming::Ping { id } => check_echo(id, &encode_json(&Outgoing::Pong { id })),
        Incoming::Msg { text, id, .. } | Incoming::All { text, id } | Incoming::Room { text, id, .. } => {
            check_text(text);
            if let Some(id) = id {
                check_echo(id, &encode_json(&Outgoing::Ack { id, queued: 1 }));
            }
        }
        _ => {}
    }
}
