//! Checks on JSON text that serde_json does not make: nesting depth, the
//! shape of the first byte, and what makes a host's payload fit to send.

use crate::error::{Error, Result};

/// Deepest nesting of arrays and objects in a payload, the outer object
/// included: serde_json refuses a 128th level in the values it builds.
pub(crate) const MAX_DEPTH: usize = 127;

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

/// Whether `bytes` (after leading whitespace) starts a JSON object. serde
/// would otherwise accept an array for a struct.
pub fn looks_like_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .is_some_and(|&b| b == b'{')
}

/// Whether `payload` is fit to be sent to clients as the host gave it: at
/// most `max` bytes, UTF-8, one JSON object with a string `type`, nested
/// no deeper than clients' parsers read.
pub(crate) fn check_payload(payload: &[u8], max: usize) -> Result<()> {
    if payload.len() > max {
        return Err(Error::PayloadTooLarge {
            len: payload.len(),
            max,
        });
    }
    if !looks_like_object(payload) {
        return Err(Error::NotJsonObject("it does not start with '{'".into()));
    }
    // serde_json does not check UTF-8 in what it skips, and clients
    // are promised UTF-8 JSON.
    std::str::from_utf8(payload).map_err(|e| Error::NotJsonObject(e.to_string()))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(payload)
        .map_err(|e| Error::NotJsonObject(e.to_string()))?;
    // Every payload a client gets has a string `type` (PROTOCOL.md);
    // the host's too (fuzzing finding F2).
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<&'a serde_json::value::RawValue>,
    }
    let typed: Typed<'_> =
        serde_json::from_slice(payload).map_err(|e| Error::NotJsonObject(e.to_string()))?;
    if !typed.kind.is_some_and(|k| k.get().starts_with('"')) {
        return Err(Error::NotJsonObject("it has no string \"type\"".into()));
    }
    // Clients parse what the host sends; most JSON parsers (serde_json
    // among them) refuse deeper nesting than this.
    if !nesting_within(payload, MAX_DEPTH) {
        return Err(Error::NotJsonObject(format!(
            "nested more than {MAX_DEPTH} levels deep"
        )));
    }
    Ok(())
}
