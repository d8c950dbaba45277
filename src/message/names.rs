//! The rules for nicks and room names, and the case folding they are
//! compared by.

use std::borrow::Cow;

/// Longest nick and longest room name (after the `#`).
pub const MAX_NAME_LEN: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
