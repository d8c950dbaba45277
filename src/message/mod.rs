//! The JSON messages of `docs/protocol.md`, typed: what clients send
//! (parsed leniently, unknown fields ignored, with a fast path for the
//! common payload), the rules for names, and what the server sends
//! (serialised from borrowed data, so building a payload copies little).
//! No framing here: a payload is the JSON object alone, and each transport
//! frames it its own way.

mod fast;
mod incoming;
mod json;
mod names;
mod outgoing;
mod payload;

pub use incoming::{parse, parse_slow, Incoming, JsonString, ParseError, Resume};
pub(crate) use json::check_payload;
pub use json::looks_like_object;
pub use names::{fold, fold_in, valid_nick, valid_room, MAX_NAME_LEN};
pub use outgoing::{
    encode_json, encode_with, error_payload, resume_failed_payload, text_payload, Outgoing, RoomCount, TextTo,
};
pub use payload::Payload;

#[cfg(test)]
pub(crate) mod strategies {
    //! Generators shared by the property tests of this module.
    use proptest::prelude::*;

    /// A JSON string literal: escapes, non-ASCII, quotes, or none at all.
    pub fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z #é😀]{0,40}".prop_map(|t| format!("\"{t}\"")),
            "[a-z\"\\\\\n\u{1}é]{0,20}".prop_map(|t| serde_json::to_string(&t).unwrap()),
            Just(r#""\u00e9\n""#.to_string()),
        ]
    }
}
