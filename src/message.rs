//! The JSON messages of `docs/protocol.md`, typed: what clients send, parsed
//! leniently (unknown fields ignored), and what the server sends, serialised
//! from borrowed data so that building a frame copies as little as possible.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::frame::WireFrame;

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
        /// The message text, forwarded byte for byte.
        text: JsonString<'a>,
        /// Ask for an `ack` carrying this value.
        id: Option<&'a RawValue>,
    },
    /// `{"type":"all","text":T}`, optional `id`.
    All {
        /// The message text, forwarded byte for byte.
        text: JsonString<'a>,
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
        /// The message text, forwarded byte for byte.
        text: JsonString<'a>,
        /// Ask for an `ack` carrying this value.
        id: Option<&'a RawValue>,
    },
}

/// A JSON string literal from a client's payload, quotes and escapes
/// included, checked to be one valid string: what recipients get, byte for
/// byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonString<'a>(&'a str);

impl<'a> JsonString<'a> {
    /// The literal as it came, quotes included.
    pub fn literal(self) -> &'a str {
        self.0
    }
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
/// a 64 KiB frame. `raw` is one valid JSON value (checked by the parser); a
/// string without escapes needs no more checking (one memchr), escapes are
/// checked by decoding, which refuses what clients could not read back (a
/// lone surrogate, say).
fn text(raw: Option<&str>) -> Result<JsonString<'_>, ParseError> {
    let raw = raw.ok_or(ParseError::BadRequest)?;
    if !raw.starts_with('"') {
        return Err(ParseError::BadRequest);
    }
    if memchr::memchr(b'\\', raw.as_bytes()).is_some() {
        serde_json::from_str::<String>(raw).map_err(|_| ParseError::BadRequest)?;
    }
    Ok(JsonString(raw))
}

/// A JSON string field (`raw` is one valid JSON value), borrowed from the
/// payload unless it has escapes.
fn string(raw: Option<&str>) -> Result<Cow<'_, str>, ParseError> {
    let raw = raw.ok_or(ParseError::BadRequest)?;
    if !raw.starts_with('"') {
        return Err(ParseError::BadRequest);
    }
    if memchr::memchr(b'\\', raw.as_bytes()).is_none() {
        // A valid literal without escapes: its text is between the quotes.
        return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|_| ParseError::BadRequest)
}

/// Whether `bytes` (after leading whitespace) starts a JSON object. serde
/// would otherwise accept an array for a struct.
pub fn looks_like_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .is_some_and(|&b| b == b'{')
}

/// The fields of a client payload that some message type uses, each as the
/// JSON text it had (a string keeps its quotes and escapes).
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    nick: Option<&'a str>,
    to: Option<&'a str>,
    text: Option<&'a str>,
    room: Option<&'a str>,
    token: Option<&'a str>,
    id: Option<&'a RawValue>,
}

/// Parses one client payload.
pub fn parse(payload: &[u8]) -> Result<Incoming<'_>, ParseError> {
    parse_with(payload, true)
}

/// [`parse`] without its fast path: serde_json reads every payload. For the
/// checks that the two agree (the `parse` fuzz target, the tests).
#[doc(hidden)]
pub fn parse_slow(payload: &[u8]) -> Result<Incoming<'_>, ParseError> {
    parse_with(payload, false)
}

/// [`parse`], with or without the fast path.
fn parse_with(payload: &[u8], fast: bool) -> Result<Incoming<'_>, ParseError> {
    // serde_json checks UTF-8 only in the strings it decodes; a payload is
    // UTF-8 throughout, skipped fields included. Checked once here, so the
    // parsers below read a &str and check nothing twice.
    if !looks_like_object(payload) {
        return Err(ParseError::BadRequest);
    }
    let payload = std::str::from_utf8(payload).map_err(|_| ParseError::BadRequest)?;
    let fields = match fast.then(|| flat_strings(payload)).flatten() {
        Some(fields) => fields,
        None => serde_fields(payload)?,
    };
    incoming(fields)
}

/// Any payload, through serde_json.
fn serde_fields(payload: &str) -> Result<Fields<'_>, ParseError> {
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
    Ok(Fields {
        kind: env.kind.map(RawValue::get),
        nick: env.nick.map(RawValue::get),
        to: env.to.map(RawValue::get),
        text: env.text.map(RawValue::get),
        room: env.room.map(RawValue::get),
        token: env.token.map(RawValue::get),
        id: env.id,
    })
}

/// The fast path, for the payload clients send most: one object whose
/// members are all strings, with no escape and no control character
/// anywhere (so a string ends at the next quote), and no `id`. Anything
/// else, valid or not, is `None`, left to serde_json, which decides. What
/// it takes, it reads as serde_json would (`tests::the_fast_path_agrees`).
/// It exists because serde_json scans strings 8 bytes at a time: with
/// 16 KiB texts that scan was a fifth of the server's CPU, and here the
/// checks are SIMD.
fn flat_strings(payload: &str) -> Option<Fields<'_>> {
    let bytes = payload.as_bytes();
    if !plain(bytes) {
        return None;
    }
    let mut fields = Fields::default();
    let mut ignored;
    let mut at = skip_spaces(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        let (key, next) = literal(bytes, skip_spaces(bytes, at))?;
        at = skip_spaces(bytes, next);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let (value, next) = literal(bytes, skip_spaces(bytes, at + 1))?;
        let slot = match &payload[key.start + 1..key.end - 1] {
            "type" => &mut fields.kind,
            "nick" => &mut fields.nick,
            "to" => &mut fields.to,
            "text" => &mut fields.text,
            "room" => &mut fields.room,
            "token" => &mut fields.token,
            "id" => return None,
            // Unknown fields are ignored, even twice, as serde_json does:
            // each goes to an empty slot of its own.
            _ => {
                ignored = None;
                &mut ignored
            }
        };
        // A field given twice: serde_json refuses it.
        if slot.replace(&payload[value]).is_some() {
            return None;
        }
        at = skip_spaces(bytes, next);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_spaces(bytes, at + 1) == bytes.len()).then_some(fields)
}

/// No byte below 0x20 (JSON allows none in strings, and between tokens only
/// tab, newline and return, left to serde_json) and no backslash.
fn plain(bytes: &[u8]) -> bool {
    // Whole chunks without an early exit: the loop compiles to SIMD.
    bytes
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'\\')))
}

/// Where the spaces from `at` end.
fn skip_spaces(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..].iter().take_while(|&&b| b == b' ').count()
}

/// The string literal starting at `at` in a [`plain`] payload: its range,
/// quotes included, and where it ends.
fn literal(bytes: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let close = at + 1 + memchr::memchr(b'"', &bytes[at + 1..])?;
    Some((at..close + 1, close + 1))
}

/// The message the fields make.
fn incoming(f: Fields<'_>) -> Result<Incoming<'_>, ParseError> {
    let kind = string(f.kind)?;
    Ok(match &*kind {
        "hello" => Incoming::Hello {
            nick: string(f.nick)?,
            token: f.token.map(|t| string(Some(t))).transpose()?,
        },
        "msg" => Incoming::Msg {
            to: string(f.to)?,
            text: text(f.text)?,
            id: f.id,
        },
        "all" => Incoming::All {
            text: text(f.text)?,
            id: f.id,
        },
        "who" => Incoming::Who,
        "ping" => Incoming::Ping {
            id: f.id.ok_or(ParseError::BadRequest)?,
        },
        "pong" => Incoming::Pong,
        "quit" => Incoming::Quit,
        "join" => Incoming::Join {
            room: string(f.room)?,
        },
        "part" => Incoming::Part {
            room: string(f.room)?,
        },
        "room" => Incoming::Room {
            room: string(f.room)?,
            text: text(f.text)?,
            id: f.id,
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

/// The frame carrying a client's text: `{"type":"msg","from":F,"to":T,
/// "text":X}`, `{"type":"all","from":F,"text":X}` or `{"type":"room",
/// "room":R,"from":F,"text":X}`, with the text spliced in as it came. Built
/// by hand, in the bytes serde_json would write (tested), so that a long
/// text is copied once into the frame, not first through a serialiser.
pub fn text_frame(from: &str, to: TextTo<'_>, text: JsonString<'_>) -> WireFrame {
    // Names are short and never need escaping (checked at join and hello),
    // but are written as JSON strings all the same.
    fn json_str(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(out, s).expect("writing a string into a Vec");
    }
    crate::frame::encode_with(|out| {
        match to {
            TextTo::One { to } => {
                out.extend_from_slice(br#"{"type":"msg","from":"#);
                json_str(out, from);
                out.extend_from_slice(br#","to":"#);
                json_str(out, to);
            }
            TextTo::All => {
                out.extend_from_slice(br#"{"type":"all","from":"#);
                json_str(out, from);
            }
            TextTo::Room { room } => {
                out.extend_from_slice(br#"{"type":"room","room":"#);
                json_str(out, room);
                out.extend_from_slice(br#","from":"#);
                json_str(out, from);
            }
        }
        out.extend_from_slice(br#","text":"#);
        out.extend_from_slice(text.literal().as_bytes());
        out.push(b'}');
    })
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
    use proptest::prelude::*;

    /// The frames a text went out in before `text_frame`: serde_json's.
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

    /// A JSON string literal: escapes, non-ASCII, quotes, or none at all.
    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z #é😀]{0,40}".prop_map(|t| format!("\"{t}\"")),
            "[a-z\"\\\\\n\u{1}é]{0,20}".prop_map(|t| serde_json::to_string(&t).unwrap()),
            Just(r#""\u00e9\n""#.to_string()),
        ]
    }

    proptest! {
        #[test]
        fn text_frames_are_the_bytes_serde_json_writes(
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
                let frame = text_frame(&from, to_where, text);
                prop_assert_eq!(&frame[..], &crate::frame::encode_json(&serde)[..]);
            }
        }

        /// Payloads near what the fast path takes (flat objects of strings,
        /// with spaces, duplicates, escapes, control characters, other
        /// values, trailing bytes): both paths read each the same.
        #[test]
        fn the_fast_path_agrees_with_serde_json(
            members in prop::collection::vec(
                (
                    prop_oneof![
                        Just("type"), Just("text"), Just("to"), Just("nick"), Just("room"),
                        Just("token"), Just("id"), Just("from"), Just("x"), Just("ty\\u0070e"),
                    ],
                    prop_oneof![
                        Just(r#""all""#.to_string()), Just(r#""msg""#.to_string()),
                        Just(r#""hello""#.to_string()), Just(r#""room""#.to_string()),
                        Just(r##""#r""##.to_string()), Just(r#""bob""#.to_string()),
                        literal(), Just("1".to_string()), Just("null".to_string()),
                        Just("[\"a\"]".to_string()), Just("{}".to_string()),
                    ],
                ),
                0..6,
            ),
            spaces in prop::collection::vec(prop_oneof![Just(""), Just(" "), Just("  "), Just("\t"), Just("\n")], 8),
            tail in prop_oneof![Just(""), Just(" "), Just("}"), Just(","), Just("x"), Just("\n")],
        ) {
            let mut payload = format!("{}{{", spaces[0]);
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    payload.push(',');
                }
                payload += &format!("{}\"{key}\"{}:{}{value}{}", spaces[1], spaces[2], spaces[3], spaces[4]);
            }
            payload += &format!("{}}}{tail}", spaces[5]);
            let fast = format!("{:?}", parse(payload.as_bytes()));
            let slow = format!("{:?}", parse_slow(payload.as_bytes()));
            prop_assert_eq!(fast, slow, "{}", payload);
        }
    }

    #[test]
    fn the_fast_path_takes_the_common_payloads() {
        for payload in [
            r#"{"type":"all","text":"hi"}"#,
            r#" { "type" : "msg" , "to" : "bob" , "text" : "hé 😀" , "x" : "y" } "#,
            r##"{"text":"#r","room":"#r","type":"room"}"##,
        ] {
            assert!(flat_strings(payload).is_some(), "{payload}");
        }
        for payload in [
            r#"{"type":"all","text":"h\u00e9"}"#,
            r#"{"type":"all","text":"hi","id":1}"#,
            "{\"type\":\"all\",\n\"text\":\"hi\"}",
            r#"{"type":"all","type":"all","text":"hi"}"#,
            r#"{"type":"all","text":"hi"}}"#,
            r#"{}"#,
        ] {
            assert!(flat_strings(payload).is_none(), "{payload}");
        }
    }

    #[test]
    fn parses_every_client_message() {
        assert!(
            matches!(parse(br#"{"type":"hello","nick":"al"}"#), Ok(Incoming::Hello { nick, token: None }) if nick == "al")
        );
        assert!(matches!(
            parse(br#"{"type":"msg","to":"b","text":"hi \u00e9","id":[1]}"#),
            Ok(Incoming::Msg { to, text, id: Some(id) }) if to == "b" && text.literal() == r#""hi \u00e9""# && id.get() == "[1]"
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
