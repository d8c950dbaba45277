//! The JSON messages of `docs/protocol.md`, typed: what clients send, parsed
//! leniently (unknown fields ignored), and what the server sends, serialised
//! from borrowed data so that building a frame copies as little as possible.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest nick and longest room name (after the `#`).
pub const MAX_NAME_LEN: usize = 32;

/// A parsed client frame, borrowing from the payload it was read from.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// `{"type":"hello","nick":N}`
    Hello {
        /// The nick asked for (not yet validated).
        nick: Cow<'a, str>,
        /// An optional credential for a host that approves registrations.
        token: Option<Cow<'a, str>>,
    },
    /// `{"type":"msg","to":N,"text":T}`, optional `id`.
    Msg {
        /// The recipient's nick.
        to: Cow<'a, str>,
        /// The message text: a JSON string literal, validated, forwarded
        /// byte for byte.
        text: &'a RawValue,
        /// Ask for an `ack` carrying this value.
        id: Option<&'a RawValue>,
    },
    /// `{"type":"all","text":T}`, optional `id`.
    All {
        /// The message text: a JSON string literal, validated, forwarded
        /// byte for byte.
        text: &'a RawValue,
        /// Ask for an `ack` carrying this value.
        id: Option<&'a RawValue>,
    },
    /// `{"type":"who"}`
    Who,
    /// `{"type":"ping","id":X}`
    Ping {
        /// Echoed as is in the `pong`.
        id: &'a RawValue,
    },
    /// `{"type":"pong","id":X}`: an answer to the server's ping.
    Pong,
    /// `{"type":"quit"}`
    Quit,
    /// `{"type":"join","room":R}` (protocol 1.1)
    Join {
        /// The room's name, `#` included (not yet validated).
        room: Cow<'a, str>,
    },
    /// `{"type":"part","room":R}` (protocol 1.1)
    Part {
        /// The room's name.
        room: Cow<'a, str>,
    },
    /// `{"type":"room","room":R,"text":T}`, optional `id` (protocol 1.1)
    Room {
        /// The room's name.
        room: Cow<'a, str>,
        /// The message text: a JSON string literal, validated, forwarded
        /// byte for byte.
        text: &'a RawValue,
        /// Ask for an `ack` carrying this value.
        id: Option<&'a RawValue>,
    },
}

/// Why a client frame could not be understood; each maps to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, not an object, no string `type`, or a required field
    /// missing or of the wrong kind: `bad_request`.
    BadRequest,
    /// A `type` this server does not know: `unknown_type`.
    UnknownType,
}

impl ParseError {
    /// The protocol's error code.
    pub fn code(self) -> &'static str {
        match self {
            ParseError::BadRequest => "bad_request",
            ParseError::UnknownType => "unknown_type",
        }
    }
}

/// Every field any client message has, each kept as raw JSON so that a field
/// of the wrong kind only matters to the message types that use it.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    nick: Option<&'a RawValue>,
    #[serde(borrow)]
    to: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    room: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<&'a RawValue>,
}

/// Deepest nesting of arrays and objects in a payload, the outer object
/// included: serde_json refuses a 128th level in the values it builds.
pub(crate) const MAX_DEPTH: usize = 127;

/// A field that is there, even as `null`, is `Some`: plain `Option` would
/// turn `"id":null` into no id, yet `null` is an id like any other.
fn present<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&'a RawValue>::deserialize(d).map(Some)
}

/// Whether the arrays and objects in `json` (valid JSON) nest at most `max`
/// deep.
pub(crate) fn nesting_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    true
}

/// A JSON string that can be forwarded as it came: unescaping and escaping
/// it again would cost two passes and two copies over what may be most of
/// a 64 KiB frame. A string without escapes needs no more checking (one
/// memchr); escapes are checked by decoding, which refuses what clients
/// could not read back (a lone surrogate, say).
fn text(raw: Option<&RawValue>) -> Result<&RawValue, ParseError> {
    let raw = raw.ok_or(ParseError::BadRequest)?;
    if !raw.get().starts_with('"') {
        return Err(ParseError::BadRequest);
    }
    // Without a backslash there is nothing left to check: the parser
    // already matched the quotes and the payload is UTF-8.
    if memchr::memchr(b'\\', raw.get().as_bytes()).is_some() {
        serde_json::from_str::<String>(raw.get()).map_err(|_| ParseError::BadRequest)?;
    }
    Ok(raw)
}

/// A JSON string field, borrowed from the payload unless it has escapes.
fn string(raw: Option<&RawValue>) -> Result<Cow<'_, str>, ParseError> {
    let raw = raw.ok_or(ParseError::BadRequest)?;
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .map(Cow::Owned)
            .map_err(|_| ParseError::BadRequest),
    }
}

/// Whether `bytes` (after leading whitespace) starts a JSON object. serde
/// would otherwise accept an array for a struct.
pub fn looks_like_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .is_some_and(|&b| b == b'{')
}

/// Parses one client payload.
pub fn parse(payload: &[u8]) -> Result<Incoming<'_>, ParseError> {
    // serde_json checks UTF-8 only in the strings it decodes; a payload is
    // UTF-8 throughout, skipped fields included. Checked once here, so the
    // parser below reads a &str and checks nothing twice.
    if !looks_like_object(payload) {
        return Err(ParseError::BadRequest);
    }
    let payload = std::str::from_utf8(payload).map_err(|_| ParseError::BadRequest)?;
    // serde_json limits nesting to 128 levels, so hostile nesting is an
    // error here, not a stack overflow.
    let env: Envelope<'_> = serde_json::from_str(payload).map_err(|_| ParseError::BadRequest)?;
    // Skipped values have no depth limit in serde_json, but an `id` goes
    // back to the client in `pong` and `ack`, one level down: too deep, and
    // the client's own parser could not read that answer.
    // (A number beyond f64's range, `1e400`, is echoed as is: it is a JSON
    // value, which is all the protocol asks of an id; fuzzing finding F1.)
    let too_deep = |id: &RawValue| !nesting_within(id.get().as_bytes(), MAX_DEPTH - 1);
    if env.id.is_some_and(too_deep) {
        return Err(ParseError::BadRequest);
    }
    let kind = string(env.kind)?;
    Ok(match &*kind {
        "hello" => Incoming::Hello {
            nick: string(env.nick)?,
            token: env.token.map(|t| string(Some(t))).transpose()?,
        },
        "msg" => Incoming::Msg {
            to: string(env.to)?,
            text: text(env.text)?,
            id: env.id,
        },
        "all" => Incoming::All {
            text: text(env.text)?,
            id: env.id,
        },
        "who" => Incoming::Who,
        "ping" => Incoming::Ping {
            id: env.id.ok_or(ParseError::BadRequest)?,
        },
        "pong" => Incoming::Pong,
        "quit" => Incoming::Quit,
        "join" => Incoming::Join {
            room: string(env.room)?,
        },
        "part" => Incoming::Part {
            room: string(env.room)?,
        },
        "room" => Incoming::Room {
            room: string(env.room)?,
            text: text(env.text)?,
            id: env.id,
        },
        _ => return Err(ParseError::UnknownType),
    })
}

/// Whether `nick` is 1 to 32 of `[A-Za-z0-9_-]`.
pub fn valid_nick(nick: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&nick.len())
        && nick
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `room` is `#` then 1 to 32 of `[A-Za-z0-9_-]`.
pub fn valid_room(room: &str) -> bool {
    room.strip_prefix('#').is_some_and(valid_nick)
}

/// The key nicks are compared by: nicks are ASCII, so ASCII case folding is
/// the whole story.
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// [`fold`] into a buffer on the caller's stack, for lookups on the hot
/// path (a valid nick or room name always fits; anything longer is
/// allocated, and then matches nothing anyway).
pub fn fold_in<'b>(name: &str, buf: &'b mut [u8; 64]) -> Cow<'b, str> {
    if let Some(dst) = buf.get_mut(..name.len()) {
        dst.copy_from_slice(name.as_bytes());
        dst.make_ascii_lowercase();
        // ASCII case folding keeps UTF-8 valid, so this is always Ok.
        if let Ok(folded) = std::str::from_utf8(dst) {
            return Cow::Borrowed(folded);
        }
    }
    Cow::Owned(fold(name))
}

/// A frame the server sends. Field order follows `docs/protocol.md`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outgoing<'a> {
    /// Registration succeeded.
    Welcome {
        /// The nick as registered.
        nick: &'a str,
        /// Every registered nick, sorted.
        users: &'a [&'a str],
    },
    /// Someone came or went, on the server or in a room.
    Presence {
        /// Whose presence changed.
        nick: &'a str,
        /// The room, for `joined` and `parted`.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// `online`, `offline`, `joined` or `parted`.
        state: &'a str,
        /// Why, for `offline`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    /// A private message.
    Msg {
        /// The sender, set by the server.
        from: &'a str,
        /// The recipient.
        to: &'a str,
        /// The text, as the sender's JSON string literal.
        text: &'a RawValue,
    },
    /// A message to everyone.
    All {
        /// The sender, set by the server.
        from: &'a str,
        /// The text, as the sender's JSON string literal.
        text: &'a RawValue,
    },
    /// A message to a room.
    Room {
        /// The room.
        room: &'a str,
        /// The sender, set by the server.
        from: &'a str,
        /// The text, as the sender's JSON string literal.
        text: &'a RawValue,
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
        /// A sentence for people.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_message() {
        assert!(
            matches!(parse(br#"{"type":"hello","nick":"al"}"#), Ok(Incoming::Hello { nick, token: None }) if nick == "al")
        );
        assert!(matches!(
            parse(br#"{"type":"msg","to":"b","text":"hi \u00e9","id":[1]}"#),
            Ok(Incoming::Msg { to, text, id: Some(id) }) if to == "b" && text.get() == r#""hi \u00e9""# && id.get() == "[1]"
        ));
        assert!(matches!(
            parse(br#" {"type":"all","text":"x","extra":{}}"#),
            Ok(Incoming::All { id: None, .. })
        ));
        assert!(matches!(parse(br#"{"type":"who"}"#), Ok(Incoming::Who)));
        assert!(
            matches!(parse(br#"{"type":"ping","id":1.50}"#), Ok(Incoming::Ping { id }) if id.get() == "1.50")
        );
        assert!(matches!(parse(br#"{"type":"quit"}"#), Ok(Incoming::Quit)));
    }

    #[test]
    fn classifies_bad_input() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"\"str\"",
            b"{}",
            br#"{"type":5}"#,
            br#"{"type":"msg","to":"b"}"#,
            br#"{"type":"msg","to":"b","text":7}"#,
            br#"{"type":"ping"}"#,
            b"{\"type\":\"who\"",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(bad).unwrap_err(), ParseError::BadRequest, "{bad:?}");
        }
        assert_eq!(
            parse(br#"{"type":"dance"}"#).unwrap_err(),
            ParseError::UnknownType
        );
        // Hostile nesting never overflows the stack: skipped when it is an
        // unknown field, rejected where a string is required.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let ignored = format!(r#"{{"type":"all","text":"x","n":{deep}}}"#);
        assert!(matches!(parse(ignored.as_bytes()), Ok(Incoming::All { .. })));
        let in_text = format!(r#"{{"type":"all","text":{deep}}}"#);
        assert_eq!(parse(in_text.as_bytes()).unwrap_err(), ParseError::BadRequest);
        let objects = format!("{}{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
        assert_eq!(parse(objects.as_bytes()).unwrap_err(), ParseError::BadRequest);
    }

    #[test]
    fn null_ids_deep_ids_and_invalid_utf8_in_skipped_fields() {
        assert!(
            matches!(parse(br#"{"type":"ping","id":null}"#), Ok(Incoming::Ping { id }) if id.get() == "null")
        );
        assert!(matches!(
            parse(br#"{"type":"all","text":"x","id":null}"#),
            Ok(Incoming::All { id: Some(id), .. }) if id.get() == "null"
        ));
        let ok = format!(r#"{{"type":"ping","id":{}{}}}"#, "[".repeat(126), "]".repeat(126));
        assert!(matches!(parse(ok.as_bytes()), Ok(Incoming::Ping { .. })));
        let deep = format!(r#"{{"type":"ping","id":{}{}}}"#, "[".repeat(127), "]".repeat(127));
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), ParseError::BadRequest);
        let quoted = format!(r#"{{"type":"ping","id":"{}\"\\"}}"#, "[".repeat(500));
        assert!(matches!(parse(quoted.as_bytes()), Ok(Incoming::Ping { .. })));
        assert_eq!(
            parse(b"{\"type\":\"all\",\"text\":\"x\",\"n\":\"\xfe\"}").unwrap_err(),
            ParseError::BadRequest
        );
    }

    #[test]
    fn nick_rules() {
        assert!(valid_nick("a"));
        assert!(valid_nick("Alice_-9"));
        assert!(valid_nick(&"x".repeat(32)));
        assert!(!valid_nick(""));
        assert!(!valid_nick(&"x".repeat(33)));
        assert!(!valid_nick("al ice"));
        assert!(!valid_nick("élan"));
        assert_eq!(fold("AlIce"), "alice");
    }

    #[test]
    fn outgoing_shapes() {
        let s = serde_json::to_string(&Outgoing::Presence {
            nick: "a",
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
            code: "no_such_user",
            to: Some("b"),
            room: None,
            message: None,
        })
        .unwrap();
        assert_eq!(s, r#"{"type":"error","code":"no_such_user","to":"b"}"#);
    }
}
