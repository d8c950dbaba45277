//! What the server sends: typed frames serialised from borrowed data,
//! texts spliced into hand-built payloads, and the error codes. A
//! [`Payload`] is the JSON object alone; each transport adds its framing.

use serde::Serialize;
use serde_json::value::RawValue;

use super::incoming::JsonString;
#[cfg(test)]
use crate::code::Code;

use super::payload::POOLED_MIN;
use super::Payload;

/// Where a client's text goes, for the frame that carries it.
#[derive(Debug, Clone, Copy)]
pub enum TextTo<'a> {
    /// `msg` to one client.
    One {
        /// The recipient's nick.
        to: &'a str,
    },
    /// `all`.
    All,
    /// `room` to its members.
    Room {
        /// The room's name.
        room: &'a str,
    },
}

/// The payload carrying a client's text: `{"type":"msg","from":F,"to":T,
/// "text":X}`, `{"type":"all","from":F,"text":X}` or `{"type":"room",
/// "room":R,"from":F,"text":X}`, with the text spliced in as it came. Built
/// by hand, in the bytes serde_json would write (tested), so that a long
/// text is copied once into the payload, not first through a serialiser.
pub fn text_payload(from: &str, to: TextTo<'_>, text: JsonString<'_>) -> Payload {
    // Names are short and never need escaping (checked at join and hello),
    // but are written as JSON strings all the same.
    fn json_str(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(out, s).expect("writing a string into a Vec");
    }
    let write_head = |head: &mut Vec<u8>| {
        match to {
            TextTo::One { to } => {
                head.extend_from_slice(br#"{"type":"msg","from":"#);
                json_str(head, from);
                head.extend_from_slice(br#","to":"#);
                json_str(head, to);
            }
            TextTo::All => {
                head.extend_from_slice(br#"{"type":"all","from":"#);
                json_str(head, from);
            }
            TextTo::Room { room } => {
                head.extend_from_slice(br#"{"type":"room","room":"#);
                json_str(head, room);
                head.extend_from_slice(br#","from":"#);
                json_str(head, from);
            }
        }
        head.extend_from_slice(br#","text":"#);
    };
    let text = text.literal().as_bytes();
    if text.len() < POOLED_MIN {
        // Short: built in the scratch buffer and copied into an exact
        // allocation, as every other payload.
        return encode_with(|out| {
            write_head(out);
            out.extend_from_slice(text);
            out.push(b'}');
        });
    }
    // Long: the fields before the text go first into a small reused buffer,
    // so the payload's size is known before it is built, and the text is
    // copied once, into the (pooled) buffer it is sent from.
    HEAD.with(|head| {
        let mut head = head.borrow_mut();
        head.clear();
        write_head(&mut head);
        let len = head.len() + text.len() + 1;
        Payload::build(len, |out| {
            out.extend_from_slice(&head);
            out.extend_from_slice(text);
            out.push(b'}');
        })
        .expect("a payload this long is pooled")
    })
}

thread_local! {
    /// Where the fields before a long text are written (names only: a few
    /// hundred bytes at most), reused so a long text costs no allocation
    /// of its own besides its pooled buffer.
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Where payloads are serialised before they are copied into their
    /// shared allocation: reused, so a payload costs one allocation of its
    /// exact size and no regrowth of a fresh buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Serialises `value` as a JSON payload.
pub fn encode_json<T: Serialize + ?Sized>(value: &T) -> Payload {
    encode_with(|out| {
        // Serialising our own message types into a Vec cannot fail: they
        // hold only strings, numbers and raw JSON that was already validated.
        serde_json::to_writer(out, value).expect("serialising a server message");
    })
}

/// A payload that `write` appends to the buffer it is given: built in a
/// reused buffer, then copied once into its shared allocation.
pub fn encode_with(write: impl FnOnce(&mut Vec<u8>)) -> Payload {
    SCRATCH.with(|scratch| {
        let mut out = scratch.borrow_mut();
        out.clear();
        write(&mut out);
        let payload = Payload::from(&out[..]);
        // One huge payload should not pin its buffer forever.
        if out.capacity() > 256 * 1024 {
            *out = Vec::new();
        }
        payload
    })
}

/// `{"type":"error","code":C}`, with the fields that apply.
pub fn error_payload(code: &str, to: Option<&str>, room: Option<&str>, message: Option<&str>) -> Payload {
    encode_json(&Outgoing::Error {
        code,
        to,
        room,
        reason: None,
        message,
    })
}

/// `{"type":"error","code":"resume_failed","reason":W,"message":M}`.
pub fn resume_failed_payload(reason: &str, message: &str) -> Payload {
    encode_json(&Outgoing::Error {
        code: "resume_failed",
        to: None,
        room: None,
        reason: Some(reason),
        message: Some(message),
    })
}

/// One room in the answer to `rooms`.
#[derive(Debug, Serialize)]
pub struct RoomCount<'a> {
    /// The room's name, as it was first written.
    pub room: &'a str,
    /// How many members it has.
    pub members: usize,
}

/// A frame the server sends. Field order follows `docs/protocol.md`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outgoing<'a> {
    /// Registration (or a resume) succeeded.
    Welcome {
        /// The nick as registered.
        nick: &'a str,
        /// Every registered nick, sorted.
        users: &'a [&'a str],
        /// A resumable session's token (protocol 1.2).
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<&'a str>,
        /// The welcome of a resume (protocol 1.2).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// Someone came or went, on the server or in a room, or was renamed.
    Presence {
        /// Whose presence changed (for `renamed`, the new nick).
        nick: &'a str,
        /// For `renamed`: the nick before.
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<&'a str>,
        /// The room, for `joined` and `parted`.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// `online`, `offline`, `joined`, `parted` or `renamed`.
        state: &'a str,
        /// Why, for `offline`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    /// The answer to `join`.
    Joined {
        /// The room, as it was first named.
        room: &'a str,
        /// Every member, sorted.
        members: &'a [&'a str],
    },
    /// The answer to `part`.
    Parted {
        /// The room.
        room: &'a str,
    },
    /// The answer to a successful `nick` (protocol 1.2).
    Nick {
        /// The new nick.
        nick: &'a str,
        /// The nick before.
        old: &'a str,
    },
    /// The answer to `members` (protocol 1.2).
    Members {
        /// The room, as it was first named.
        room: &'a str,
        /// Every member, sorted.
        members: &'a [&'a str],
    },
    /// The answer to `rooms` (protocol 1.2).
    Rooms {
        /// Every room with its member count, sorted by name.
        rooms: &'a [RoomCount<'a>],
    },
    /// What the host says itself (protocol 1.2); clients cannot send it.
    Notice {
        /// The host's text.
        text: &'a str,
    },
    /// The answer to `who`.
    Users {
        /// Every registered nick, sorted.
        users: &'a [&'a str],
    },
    /// The answer to a client's `ping`.
    Pong {
        /// The client's id, echoed byte for byte.
        id: &'a RawValue,
    },
    /// The server's own liveness probe.
    Ping {
        /// A number the client echoes in its `pong`.
        id: u64,
    },
    /// A message reached its recipients' queues.
    Ack {
        /// The client's id, echoed byte for byte.
        id: &'a RawValue,
        /// How many output queues hold the message.
        queued: usize,
    },
    /// Something went wrong; `code` says what.
    Error {
        /// A word from `docs/protocol.md`.
        code: &'a str,
        /// For `no_such_user`: the nick that was not found.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<&'a str>,
        /// For room errors: the room.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// For `resume_failed`: `unknown_session` or `gap`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        /// A sentence for people.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;
    use crate::message::strategies::literal;
    use crate::message::Incoming;
    use proptest::prelude::*;

    /// The payloads a text went out in before `text_payload`: serde_json's.
    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum SerdeText<'a> {
        Msg {
            from: &'a str,
            to: &'a str,
            text: &'a RawValue,
        },
        All {
            from: &'a str,
            text: &'a RawValue,
        },
        Room {
            room: &'a str,
            from: &'a str,
            text: &'a RawValue,
        },
    }

    proptest! {
        #[test]
        fn text_payloads_are_the_bytes_serde_json_writes(
            lit in literal(),
            from in "[A-Za-z0-9_-]{1,32}",
            to in "[A-Za-z0-9_-]{1,32}",
            room in "#[A-Za-z0-9_-]{1,32}",
        ) {
            let payload = format!(r#"{{"type":"all","text":{lit}}}"#);
            let Ok(Incoming::All { text, .. }) = parse(payload.as_bytes()) else {
                panic!("{payload} did not parse")
            };
            let raw: &RawValue = serde_json::from_str(&lit).unwrap();
            for (to_where, serde) in [
                (TextTo::One { to: &to }, SerdeText::Msg { from: &from, to: &to, text: raw }),
                (TextTo::All, SerdeText::All { from: &from, text: raw }),
                (TextTo::Room { room: &room }, SerdeText::Room { room: &room, from: &from, text: raw }),
            ] {
                let payload = text_payload(&from, to_where, text);
                prop_assert_eq!(&payload[..], &encode_json(&serde)[..]);
            }
        }
    }

    #[test]
    fn long_texts_built_in_pooled_buffers_are_the_bytes_serde_json_writes() {
        for len in [POOLED_MIN - 1, POOLED_MIN, 16_384, 70_000] {
            let lit = format!("\"{}\\n\"", "é".repeat(len / 2));
            let payload = format!(r#"{{"type":"all","text":{lit}}}"#);
            let Ok(Incoming::All { text, .. }) = parse(payload.as_bytes()) else {
                panic!("a text of {len} did not parse")
            };
            let raw: &RawValue = serde_json::from_str(&lit).unwrap();
            for (to_where, serde) in [
                (
                    TextTo::One { to: "b" },
                    SerdeText::Msg {
                        from: "a",
                        to: "b",
                        text: raw,
                    },
                ),
                (TextTo::All, SerdeText::All { from: "a", text: raw }),
                (
                    TextTo::Room { room: "#r" },
                    SerdeText::Room {
                        room: "#r",
                        from: "a",
                        text: raw,
                    },
                ),
            ] {
                assert_eq!(&text_payload("a", to_where, text)[..], &encode_json(&serde)[..]);
            }
        }
    }

    #[test]
    fn outgoing_shapes() {
        let s = serde_json::to_string(&Outgoing::Presence {
            nick: "a",
            old: None,
            room: None,
            state: "offline",
            reason: Some("quit"),
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"type":"presence","nick":"a","state":"offline","reason":"quit"}"#
        );
        let s = serde_json::to_string(&Outgoing::Error {
            code: Code::NoSuchUser.as_str(),
            to: Some("b"),
            room: None,
            reason: None,
            message: None,
        })
        .unwrap();
        assert_eq!(s, r#"{"type":"error","code":"no_such_user","to":"b"}"#);
        let s = serde_json::to_string(&Outgoing::Presence {
            nick: "b2",
            old: Some("b"),
            room: None,
            state: "renamed",
            reason: None,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"type":"presence","nick":"b2","old":"b","state":"renamed"}"#
        );
        let s = serde_json::to_string(&Outgoing::Welcome {
            nick: "a",
            users: &["a"],
            session: Some("T"),
            resumed: true,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"type":"welcome","nick":"a","users":["a"],"session":"T","resumed":true}"#
        );
        let s = serde_json::to_string(&Outgoing::Welcome {
            nick: "a",
            users: &["a"],
            session: None,
            resumed: false,
        })
        .unwrap();
        assert_eq!(s, r#"{"type":"welcome","nick":"a","users":["a"]}"#);
        assert_eq!(
            &resume_failed_payload("gap", "m")[..],
            br#"{"type":"error","code":"resume_failed","reason":"gap","message":"m"}"#
        );
    }
}
