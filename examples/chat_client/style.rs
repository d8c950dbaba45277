//! How transcript lines look: timestamps, nick colours, highlighted
//! mentions, and text from the network made harmless for a terminal.

use std::fmt::Write as _;

/// One line of the transcript, before it is given a look.
#[derive(Debug, Clone)]
pub enum Line {
    /// Something the client or server says about the session (`* ...`).
    Status(String),
    /// Something that went wrong (`! ...`).
    Error(String),
    /// A message somebody (maybe we) said.
    Said(Said),
    /// Text of our own, printed as it is (`/help`).
    Text(String),
    /// What the server's host says itself (a `notice` frame, which no
    /// client can send): `-notice- TEXT`, a shape no user's message takes.
    Notice(String),
}

/// A chat message, incoming or our own echo.
#[derive(Debug, Clone)]
pub struct Said {
    /// Who said it (already cleaned).
    pub from: String,
    /// Where it went.
    pub to: Target,
    /// What was said (already cleaned).
    pub text: String,
    /// We said it: the echo of our own line.
    pub own: bool,
}

/// Where a message went.
#[derive(Debug, Clone)]
pub enum Target {
    /// Everyone online.
    All,
    /// One user: to us when incoming, to this nick when ours.
    Private(String),
    /// A room's members.
    Room(String),
}

/// The look of lines on one output.
pub struct Style {
    /// Escape sequences for colour and emphasis (a terminal without
    /// `NO_COLOR`).
    pub color: bool,
    /// A time of day before each line (terminal mode).
    pub timestamps: bool,
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const MENTION: &str = "\x1b[1;33m";
/// Host notices: reverse video, unlike any nick's colour.
const NOTICE: &str = "\x1b[1;7m";

/// Foreground colours for nicks: the six basic hues, normal and bright,
/// which every terminal has and themes keep readable.
const PALETTE: [u8; 12] = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

impl Style {
    /// `line` as text for the output, `me` being our own nick (for
    /// mentions). No newline.
    pub fn render(&self, line: &Line, me: &str) -> String {
        let mut out = String::new();
        if self.timestamps && !matches!(line, Line::Text(_)) {
            let now = jiff::ZonedDateTime::now().strftime("%H:%M").to_string();
            self.paint(&mut out, DIM, &now);
            out.push(' ');
        }
        match line {
            Line::Status(text) => {
                out.push_str("* ");
                out.push_str(text);
            }
            Line::Error(text) => self.paint(&mut out, RED, &format!("! {text}")),
            Line::Said(said) => self.said(&mut out, said, me),
            Line::Text(text) => out.push_str(text),
            Line::Notice(text) => {
                self.paint(&mut out, NOTICE, "-notice-");
                out.push(' ');
                out.push_str(text);
            }
        }
        out
    }

    fn said(&self, out: &mut String, said: &Said, me: &str) {
        if let Target::Room(room) = &said.to {
            let _ = write!(out, "[{room}] ");
        }
        out.push('<');
        self.nick(out, &said.from, said.own);
        match (&said.to, said.own) {
            (Target::Private(to), true) => {
                out.push_str(" (to ");
                self.nick(out, to, false);
                out.push(')');
            }
            (Target::Private(_), false) => out.push_str(" (private)"),
            _ => {}
        }
        out.push_str("> ");
        if !said.own && mentions(&said.text, me) {
            self.paint(out, MENTION, &said.text);
        } else {
            out.push_str(&said.text);
        }
    }

    fn nick(&self, out: &mut String, nick: &str, own: bool) {
        if !self.color {
            out.push_str(nick);
        } else if own {
            self.paint(out, BOLD, nick);
        } else {
            let code = PALETTE[(fnv1a(&nick.to_ascii_lowercase()) % PALETTE.len() as u64) as usize];
            self.paint(out, &format!("\x1b[{code}m"), nick);
        }
    }

    fn paint(&self, out: &mut String, sgr: &str, text: &str) {
        if self.color {
            out.push_str(sgr);
            out.push_str(text);
            out.push_str(RESET);
        } else {
            out.push_str(text);
        }
    }
}

/// Whether `text` names `me` as a whole word (nicks compare without case,
/// as the server compares them).
pub fn mentions(text: &str, me: &str) -> bool {
    if me.is_empty() {
        return false;
    }
    let is_nick_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.split(|c: char| !is_nick_char(c))
        .any(|word| word.eq_ignore_ascii_case(me))
}

/// A stable hash, so a nick keeps its colour across runs and clients.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Text from the network, with control characters escaped so that nobody
/// can move the cursor, recolour the screen or fake extra lines on the
/// reader's terminal. Bidirectional overrides and isolates are escaped too:
/// they reorder what follows them on screen ("Trojan Source").
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
