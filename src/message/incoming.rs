//! What clients send: one payload parsed into an [`Incoming`], borrowing
//! from it. Through the fast path of `fast.rs` when the payload is the
//! common flat object of plain strings, through serde_json otherwise.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::fast::flat_strings;
use super::json::{looks_like_object, nesting_within, MAX_DEPTH};
use crate::code::Code;

/// A parsed client frame, borrowing from the payload it was read from.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// `{"type":"hello","nick":N}`, optional `token`, `resumable`, `resume`
    /// (protocol 1.2).
    Hello {
        /// The nick asked for (not yet validated).
        nick: Cow<'a, str>,
        /// An optional credential for a host that approves registrations.
        token: Option<Cow<'a, str>>,
        /// `"resumable":true`: the client asks for a resumable session.
        resumable: bool,
        /// `"resume":{"session":T,"received":N}`: the client resumes a
        /// session.
        resume: Option<Resume<'a>>,
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
    /// `{"type":"nick","nick":N}`: a rename (protocol 1.2)
    Nick {
        /// The nick asked for (not yet validated).
        nick: Cow<'a, str>,
    },
    /// `{"type":"members","room":R}` (protocol 1.2)
    Members {
        /// The room's name.
        room: Cow<'a, str>,
    },
    /// `{"type":"rooms"}` (protocol 1.2)
    Rooms,
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

/// What a `hello` asks to resume: `{"session":T,"received":N}`.
#[derive(Debug, Deserialize)]
pub struct Resume<'a> {
    /// The session's token, as the last `welcome` gave it.
    #[serde(borrow)]
    pub session: Cow<'a, str>,
    /// How many frames of the session the client has read whole.
    pub received: u64,
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
    pub fn code(self) -> Code {
        match self {
            ParseError::BadRequest => Code::BadRequest,
            ParseError::UnknownType => Code::UnknownType,
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
    #[serde(borrow)]
    resumable: Option<&'a RawValue>,
    #[serde(borrow)]
    resume: Option<&'a RawValue>,
}

/// A field that is there, even as `null`, is `Some`: plain `Option` would
/// turn `"id":null` into no id, yet `null` is an id like any other.
fn present<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&'a RawValue>::deserialize(d).map(Some)
}

/// A JSON string that can be forwarded as it came: unescaping and escaping
/// it again would cost two passes and two copies over what may be most of
/// a 64 KiB frame. `raw` is one valid JSON value (checked by the parser); a
/// string without escapes needs no more checking (one memchr), escapes are
/// checked by decoding, which refuses what clients could not read back (a
/// lone surrogate, say).
///
/// `unescaped`: the payload is known to hold no backslash at all (the fast
/// path checked), so the search for one is skipped: on a 16 KiB text it was
/// a pass of its own.
fn text(raw: Option<&str>, unescaped: bool) -> Result<JsonString<'_>, ParseError> {
    let raw = raw.ok_or(ParseError::BadRequest)?;
    if !raw.starts_with('"') {
        return Err(ParseError::BadRequest);
    }
    if !unescaped && memchr::memchr(b'\\', raw.as_bytes()).is_some() {
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

/// The `resume` object of a `hello` (`raw` is one valid JSON value):
/// absent or `null` is no resume; anything but an object with a string
/// `session` and a non-negative integer `received` is `bad_request`.
fn resume(raw: Option<&str>) -> Result<Option<Resume<'_>>, ParseError> {
    match raw {
        None | Some("null") => Ok(None),
        Some(raw) => serde_json::from_str(raw)
            .map(Some)
            .map_err(|_| ParseError::BadRequest),
    }
}

/// The fields of a client payload that some message type uses, each as the
/// JSON text it had (a string keeps its quotes and escapes).
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) kind: Option<&'a str>,
    pub(super) nick: Option<&'a str>,
    pub(super) to: Option<&'a str>,
    pub(super) text: Option<&'a str>,
    pub(super) room: Option<&'a str>,
    pub(super) token: Option<&'a str>,
    pub(super) id: Option<&'a RawValue>,
    pub(super) resumable: Option<&'a str>,
    pub(super) resume: Option<&'a str>,
    /// The payload has no backslash anywhere, so no string in it has an
    /// escape (set by the fast path, which checked every byte).
    pub(super) unescaped: bool,
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
    // simdutf8 (SIMD, chosen at run time: AVX2 where there is one) accepts
    // exactly what `std::str::from_utf8` accepts, at a third of its
    // instructions on a 16 KiB ASCII text.
    let payload = simdutf8::basic::from_utf8(payload).map_err(|_| ParseError::BadRequest)?;
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
        resumable: env.resumable.map(RawValue::get),
        resume: env.resume.map(RawValue::get),
        unescaped: false,
    })
}

/// The message the fields make.
fn incoming(f: Fields<'_>) -> Result<Incoming<'_>, ParseError> {
    let kind = string(f.kind)?;
    Ok(match &*kind {
        "hello" => Incoming::Hello {
            nick: string(f.nick)?,
            token: f.token.map(|t| string(Some(t))).transpose()?,
            // Only `true` asks: anything else is a plain session, as an
            // unknown field would be.
            resumable: f.resumable == Some("true"),
            resume: resume(f.resume)?,
        },
        "msg" => Incoming::Msg {
            to: string(f.to)?,
            text: text(f.text, f.unescaped)?,
            id: f.id,
        },
        "all" => Incoming::All {
            text: text(f.text, f.unescaped)?,
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
            text: text(f.text, f.unescaped)?,
            id: f.id,
        },
        "nick" => Incoming::Nick {
            nick: string(f.nick)?,
        },
        "members" => Incoming::Members {
            room: string(f.room)?,
        },
        "rooms" => Incoming::Rooms,
        // `notice` is the host's alone: from a client it is as unknown as
        // any other type, so nobody can pose as the host.
        _ => return Err(ParseError::UnknownType),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_message() {
        assert!(
            matches!(parse(br#"{"type":"hello","nick":"al"}"#), Ok(Incoming::Hello { nick, token: None, resumable: false, resume: None }) if nick == "al")
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
        assert!(
            matches!(parse(br#"{"type":"nick","nick":"b2"}"#), Ok(Incoming::Nick { nick }) if nick == "b2")
        );
        assert!(
            matches!(parse(br##"{"type":"members","room":"#r"}"##), Ok(Incoming::Members { room }) if room == "#r")
        );
        assert!(matches!(parse(br#"{"type":"rooms"}"#), Ok(Incoming::Rooms)));
    }

    #[test]
    fn hello_may_ask_for_a_session_or_resume_one() {
        assert!(matches!(
            parse(br#"{"type":"hello","nick":"al","resumable":true}"#),
            Ok(Incoming::Hello {
                resumable: true,
                resume: None,
                ..
            })
        ));
        for not_asking in [r#""true""#, "false", "1", "null"] {
            let payload = format!(r#"{{"type":"hello","nick":"al","resumable":{not_asking}}}"#);
            assert!(
                matches!(
                    parse(payload.as_bytes()),
                    Ok(Incoming::Hello { resumable: false, .. })
                ),
                "{payload}"
            );
        }
        assert!(matches!(
            parse(br#"{"type":"hello","nick":"al","resume":{"session":"t0","received":7,"x":1}}"#),
            Ok(Incoming::Hello { resume: Some(Resume { session, received: 7 }), .. }) if session == "t0"
        ));
        assert!(matches!(
            parse(br#"{"type":"hello","nick":"al","resume":null}"#),
            Ok(Incoming::Hello { resume: None, .. })
        ));
        for bad in [
            r#""t""#,
            r#"{"session":"t"}"#,
            r#"{"received":1}"#,
            r#"{"session":1,"received":1}"#,
            r#"{"session":"t","received":-1}"#,
            r#"{"session":"t","received":1.5}"#,
            r#"{"session":"t","received":18446744073709551616}"#,
        ] {
            let payload = format!(r#"{{"type":"hello","nick":"al","resume":{bad}}}"#);
            assert_eq!(
                parse(payload.as_bytes()).unwrap_err(),
                ParseError::BadRequest,
                "{payload}"
            );
        }
        assert_eq!(
            parse(br#"{"type":"notice","text":"I am the host"}"#).unwrap_err(),
            ParseError::UnknownType
        );
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

    proptest::proptest! {
        /// The UTF-8 check is core's, byte for byte: texts of any length
        /// (the SIMD validator works in blocks of 64) with a stray byte,
        /// a cut or overlong sequence, or a surrogate anywhere in them.
        #[test]
        fn a_text_is_accepted_exactly_when_it_is_utf8(
            text in "[a-zé😀]{0,100}",
            at in proptest::prelude::any::<proptest::sample::Index>(),
            bad in proptest::prop_oneof![
                proptest::prelude::Just(&b"\xff"[..]),
                proptest::prelude::Just(&b"\xc3"[..]),
                proptest::prelude::Just(&b"\xc0\xaf"[..]),
                proptest::prelude::Just(&b"\xed\xa0\x80"[..]),
                proptest::prelude::Just(&b"\xf4\x90\x80\x80"[..]),
                proptest::prelude::Just(&b"\xe2\x82"[..]),
                proptest::prelude::Just(&b""[..]),
            ],
        ) {
            let mut bytes = text.into_bytes();
            bytes.splice(at.index(bytes.len() + 1)..at.index(bytes.len() + 1), bad.iter().copied());
            let mut payload = br#"{"type":"all","text":""#.to_vec();
            payload.extend_from_slice(&bytes);
            payload.extend_from_slice(br#""}"#);
            let utf8 = std::str::from_utf8(&payload).is_ok();
            proptest::prop_assert_eq!(parse(&payload).is_ok(), utf8);
            proptest::prop_assert_eq!(parse_slow(&payload).is_ok(), utf8);
        }
    }
}
