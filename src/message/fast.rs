//! The fast path of parsing, for the payload clients send most: a flat
//! object of plain strings, read with SIMD checks instead of serde_json's
//! string scan. Whatever it does not take goes to serde_json, which decides.

use super::incoming::Fields;

/// The fast path, for the payload clients send most: one object whose
/// members are all strings, with no escape and no control character
/// anywhere (so a string ends at the next quote), and no `id`. Anything
/// else, valid or not, is `None`, left to serde_json, which decides. What
/// it takes, it reads as serde_json would (`tests::the_fast_path_agrees`).
/// It exists because serde_json scans strings 8 bytes at a time: with
/// 16 KiB texts that scan was a fifth of the server's CPU, and here the
/// checks are SIMD.
pub(super) fn flat_strings(payload: &str) -> Option<Fields<'_>> {
    let bytes = payload.as_bytes();
    if !plain(bytes) {
        return None;
    }
    let mut fields = Fields {
        // No backslash anywhere: no string has an escape to check.
        unescaped: true,
        ..Fields::default()
    };
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
            // Not strings in the protocol: serde_json decides.
            "id" | "resumable" | "resume" => return None,
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
    crate::sys::with_avx2(|| plain_lanes(bytes))
}

/// [`plain`], in one pass with no early exit: running minima over the
/// bytes, a backslash counting as 0, so the check is whether every minimum
/// is still 0x20 or more. Over fixed arrays of 32 this compiles to
/// `vpcmpeqb`, `vpandn`, `vpminub` per 32 bytes with AVX2 (two arrays, so
/// that two chains of minima run side by side), or the same in twice as
/// many SSE2 instructions. A 16 KiB text, measured: 111 ns with AVX2,
/// 339 with SSE2; one array of 16 (the first version) took 560.
#[inline(always)]
fn plain_lanes(bytes: &[u8]) -> bool {
    let (mut chunks, mut even, mut odd) = (bytes.chunks_exact(64), [u8::MAX; 32], [u8::MAX; 32]);
    let keep = |lane: &mut u8, b: u8| *lane = (*lane).min(if b == b'\\' { 0 } else { b });
    for chunk in &mut chunks {
        let (first, second) = chunk.split_at(32);
        let first: &[u8; 32] = first.try_into().expect("halves of 32");
        let second: &[u8; 32] = second.try_into().expect("halves of 32");
        for (lane, &b) in even.iter_mut().zip(first) {
            keep(lane, b);
        }
        for (lane, &b) in odd.iter_mut().zip(second) {
            keep(lane, b);
        }
    }
    let ok = |b: u8| b >= 0x20 && b != b'\\';
    even.iter().zip(&odd).all(|(&a, &b)| a.min(b) >= 0x20) && chunks.remainder().iter().all(|&b| ok(b))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::strategies::literal as json_literal;
    use crate::message::{parse, parse_slow};
    use proptest::prelude::*;

    proptest! {
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
                        Just("resumable"), Just("resume"),
                    ],
                    prop_oneof![
                        Just(r#""all""#.to_string()), Just(r#""msg""#.to_string()),
                        Just(r#""hello""#.to_string()), Just(r#""room""#.to_string()),
                        Just(r#""nick""#.to_string()), Just(r#""members""#.to_string()),
                        Just("true".to_string()),
                        Just(r##""#r""##.to_string()), Just(r#""bob""#.to_string()),
                        json_literal(), Just("1".to_string()), Just("null".to_string()),
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
    fn plain_finds_a_control_byte_or_backslash_anywhere() {
        // Whole chunks of 64 and the remainder after them: every position.
        for len in [1, 63, 64, 65, 127, 128, 129, 200] {
            assert!(plain(&vec![b'x'; len]));
            for at in 0..len {
                for bad in [0x00, 0x1f, b'\\'] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = bad;
                    assert!(!plain(&bytes), "{bad:#x} at {at} of {len}");
                }
                let mut bytes = vec![b'x'; len];
                bytes[at] = 0x20;
                bytes[len - 1 - at] = 0xff;
                assert!(plain(&bytes));
            }
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
}
