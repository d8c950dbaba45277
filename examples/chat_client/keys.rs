//! Bytes from a terminal in raw mode, decoded into keys. Escape sequences
//! the client does not use are swallowed whole, never typed as text.

/// One key press (or a pasted character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    Enter,
    Tab,
    /// Shift-Tab: completion backwards.
    BackTab,
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    /// Ctrl-Left or Alt-B.
    WordLeft,
    /// Ctrl-Right or Alt-F.
    WordRight,
    /// Alt-Backspace: delete the word before the cursor, like Ctrl-W.
    KillWordBack,
    /// Alt-D: delete the word after the cursor.
    KillWordForward,
    /// Ctrl and a letter, as the lowercase letter (`Ctrl('a')`).
    Ctrl(char),
}

const ESC: u8 = 0x1b;

/// Turns raw input into keys, keeping a sequence split across reads until
/// its end arrives.
#[derive(Default)]
pub struct KeyDecoder {
    pending: Vec<u8>,
}

impl KeyDecoder {
    /// Adds bytes read from the terminal; returns the keys now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Key> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut at = 0;
        while at < self.pending.len() {
            match decode(&self.pending[at..]) {
                Decoded::Key(key, used) => {
                    keys.extend(key);
                    at += used;
                }
                Decoded::Incomplete => break,
            }
        }
        self.pending.drain(..at);
        keys
    }

    /// Whether a lone Escape (or a sequence's start) waits for more bytes.
    /// The caller waits a moment for them, then calls [`Self::flush`].
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Nothing more came: the Escape key alone (which does nothing here),
    /// or a sequence cut short. Either way, dropped.
    pub fn flush(&mut self) -> Vec<Key> {
        let rest = std::mem::take(&mut self.pending);
        // An Escape followed by the start of a character: keep the character.
        match rest.iter().position(|&b| b != ESC) {
            Some(i) if rest[i] >= 0x80 => self.push(&rest[i..]),
            _ => Vec::new(),
        }
    }
}

enum Decoded {
    /// A key (or nothing, for a swallowed sequence) and the bytes it took.
    Key(Option<Key>, usize),
    /// The bytes are the start of something longer.
    Incomplete,
}

fn decode(b: &[u8]) -> Decoded {
    let key = |k: Key, n: usize| Decoded::Key(Some(k), n);
    match b[0] {
        ESC => decode_escape(b),
        b'\r' | b'\n' => key(Key::Enter, 1),
        b'\t' => key(Key::Tab, 1),
        0x7f | 0x08 => key(Key::Backspace, 1),
        c @ 0x01..=0x1a => key(Key::Ctrl(char::from(b'a' + c - 1)), 1),
        0x00 | 0x1c..=0x1f => Decoded::Key(None, 1),
        0x20..=0x7e => key(Key::Char(char::from(b[0])), 1),
        _ => decode_utf8(b),
    }
}

fn decode_utf8(b: &[u8]) -> Decoded {
    let len = match b[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Decoded::Key(Some(Key::Char('\u{fffd}')), 1),
    };
    if b.len() < len {
        // Only wait if what came so far can still become a character.
        return if b[1..].iter().all(|&x| (0x80..0xc0).contains(&x)) {
            Decoded::Incomplete
        } else {
            Decoded::Key(Some(Key::Char('\u{fffd}')), 1)
        };
    }
    match std::str::from_utf8(&b[..len]) {
        Ok(s) => {
            let c = s.chars().next().unwrap_or('\u{fffd}');
            // Printable only: C1 controls and the like are not text.
            let c = if c.is_control() { '\u{fffd}' } else { c };
            Decoded::Key(Some(Key::Char(c)), len)
        }
        Err(_) => Decoded::Key(Some(Key::Char('\u{fffd}')), 1),
    }
}

fn decode_escape(b: &[u8]) -> Decoded {
    let Some(&next) = b.get(1) else {
        return Decoded::Incomplete;
    };
    let key = |k: Key, n: usize| Decoded::Key(Some(k), n);
    match next {
        b'[' => decode_csi(b),
        b'O' => match b.get(2) {
            None => Decoded::Incomplete,
            Some(b'A') => key(Key::Up, 3),
            Some(b'B') => key(Key::Down, 3),
            Some(b'C') => key(Key::Right, 3),
            Some(b'D') => key(Key::Left, 3),
            Some(b'H') => key(Key::Home, 3),
            Some(b'F') => key(Key::End, 3),
            Some(_) => Decoded::Key(None, 3),
        },
        b'b' | b'B' => key(Key::WordLeft, 2),
        b'f' | b'F' => key(Key::WordRight, 2),
        b'd' | b'D' => key(Key::KillWordForward, 2),
        0x7f | 0x08 => key(Key::KillWordBack, 2),
        // Escape pressed twice: the first did nothing.
        ESC => Decoded::Key(None, 1),
        // Alt and any other key: nothing bound to it.
        _ => Decoded::Key(None, 2),
    }
}

/// `ESC [ params intermediates final`, as ECMA-48 shapes every control
/// sequence: everything up to the final byte belongs to it.
fn decode_csi(b: &[u8]) -> Decoded {
    let mut end = 2;
    while let Some(&c) = b.get(end) {
        if (0x40..=0x7e).contains(&c) {
            break;
        }
        if !(0x20..=0x3f).contains(&c) {
            // Not a control sequence after all: drop the `ESC [`.
            return Decoded::Key(None, 2);
        }
        end += 1;
    }
    let Some(&fin) = b.get(end) else {
        return Decoded::Incomplete;
    };
    let params = std::str::from_utf8(&b[2..end]).unwrap_or("");
    // `1;5` is Ctrl, `1;3` is Alt: either moves by words.
    let modified = params.ends_with(";5") || params.ends_with(";3");
    let key = match (fin, params) {
        (b'A', _) => Some(Key::Up),
        (b'B', _) => Some(Key::Down),
        (b'C', _) if modified => Some(Key::WordRight),
        (b'D', _) if modified => Some(Key::WordLeft),
        (b'C', _) => Some(Key::Right),
        (b'D', _) => Some(Key::Left),
        (b'H', _) => Some(Key::Home),
        (b'F', _) => Some(Key::End),
        (b'Z', _) => Some(Key::BackTab),
        (b'~', "1" | "7") => Some(Key::Home),
        (b'~', "4" | "8") => Some(Key::End),
        (b'~', "3") => Some(Key::Delete),
        // Bracketed-paste markers, function keys, focus reports, ...
        _ => None,
    };
    Decoded::Key(key, end + 1)
}
