//! The terminal: raw mode (always undone on the way out, panics included),
//! and the screen: transcript lines scroll up above one input line that is
//! redrawn, never broken, whenever something is printed.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Mutex, Once};

use rustix::termios::{self, InputModes, LocalModes, OptionalActions, SpecialCodeIndex, Termios};
use unicode_width::UnicodeWidthChar;

use crate::editor::Editor;

/// The settings found at start, put back by [`restore`].
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
static PANIC_HOOK: Once = Once::new();

/// Raw mode while this lives: keys arrive one by one, unechoed, Ctrl-C and
/// Ctrl-Z as bytes. Output processing stays on, so a panic message or
/// anything else printed before [`restore`] still starts its lines at the
/// left edge.
pub struct RawMode(());

impl RawMode {
    pub fn enter() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN);
        raw.input_modes.remove(
            InputModes::IXON
                | InputModes::ICRNL
                | InputModes::INLCR
                | InputModes::IGNCR
                | InputModes::ISTRIP
                | InputModes::BRKINT,
        );
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                let _ = io::stdout().write_all(b"\r\n");
                previous(info);
            }));
        });
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as it was found; does nothing the second time.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &saved);
    }
}

/// Transcript lines kept for Ctrl-L to paint again.
const KEEP_LINES: usize = 500;

pub struct Screen {
    out: io::Stdout,
    /// The transcript as printed (escape sequences of our own included).
    lines: VecDeque<String>,
    /// Before the input line: `alice> `, or `nick> ` while asking for one.
    pub prompt: String,
    /// How wide the prompt shows (without its colour).
    prompt_width: usize,
    /// The first character of the input line on screen (long lines scroll
    /// sideways so the cursor stays in view).
    scroll: usize,
}

impl Screen {
    pub fn new() -> Screen {
        Screen {
            out: io::stdout(),
            lines: VecDeque::new(),
            prompt: String::new(),
            prompt_width: 0,
            scroll: 0,
        }
    }

    /// Sets the prompt; `shown` is it with colour, `plain` without.
    pub fn set_prompt(&mut self, shown: String, plain: &str) {
        self.prompt = shown;
        self.prompt_width = width(plain);
    }

    /// Prints one transcript line above the input line, which is then
    /// drawn again as it was.
    pub fn print(&mut self, line: &str, editor: &Editor) -> io::Result<()> {
        if self.lines.len() == KEEP_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
        let mut buf = Vec::new();
        buf.extend_from_slice(b"\r\x1b[K");
        buf.extend_from_slice(line.replace('\n', "\r\n").as_bytes());
        buf.extend_from_slice(b"\r\n");
        self.prompt_line(&mut buf, editor);
        self.write(&buf)
    }

    /// Draws the input line again (after a key).
    pub fn draw(&mut self, editor: &Editor) -> io::Result<()> {
        let mut buf = Vec::new();
        self.prompt_line(&mut buf, editor);
        self.write(&buf)
    }

    /// Ctrl-L: clears the screen and paints the latest transcript lines
    /// that fit, then the input line.
    pub fn redraw(&mut self, editor: &Editor) -> io::Result<()> {
        let (rows, cols) = size();
        let mut room = rows.saturating_sub(1);
        let mut shown = Vec::new();
        for line in self.lines.iter().rev() {
            let need: usize = line
                .split('\n')
                .map(|l| width(&strip_sgr(l)).div_ceil(cols).max(1))
                .sum();
            if need > room {
                break;
            }
            room -= need;
            shown.push(line);
        }
        let mut buf = b"\x1b[H\x1b[2J".to_vec();
        for line in shown.iter().rev() {
            buf.extend_from_slice(line.replace('\n', "\r\n").as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        self.prompt_line(&mut buf, editor);
        self.write(&buf)
    }

    /// `/clear`: an empty screen, the transcript forgotten.
    pub fn clear(&mut self, editor: &Editor) -> io::Result<()> {
        self.lines.clear();
        self.redraw(editor)
    }

    /// Leaves the terminal tidy: the input line erased, the cursor at the
    /// start of an empty line.
    pub fn finish(&mut self) -> io::Result<()> {
        self.write(b"\r\x1b[K")
    }

    fn prompt_line(&mut self, buf: &mut Vec<u8>, editor: &Editor) {
        let (_, cols) = size();
        // The last column stays free: writing there makes some terminals
        // wrap early.
        let room = cols.saturating_sub(self.prompt_width + 1).max(1);
        let text = editor.text();
        let cursor = editor.cursor();
        self.scroll = self.scroll.min(cursor);
        while self.scroll < cursor && chars_width(&text[self.scroll..cursor]) > room {
            self.scroll += 1;
        }
        let mut used = 0;
        let visible: String = text[self.scroll..]
            .iter()
            .take_while(|c| {
                used += c.width().unwrap_or(0);
                used <= room
            })
            .collect();
        buf.extend_from_slice(b"\r\x1b[K");
        buf.extend_from_slice(self.prompt.as_bytes());
        buf.extend_from_slice(visible.as_bytes());
        let col = self.prompt_width + chars_width(&text[self.scroll..cursor]);
        buf.extend_from_slice(b"\r");
        if col > 0 {
            buf.extend_from_slice(format!("\x1b[{col}C").as_bytes());
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.out.flush()
    }
}

/// Rows and columns of the terminal (24x80 if it will not say).
fn size() -> (usize, usize) {
    match termios::tcgetwinsize(io::stdout()) {
        Ok(ws) if ws.ws_col > 0 && ws.ws_row > 0 => (ws.ws_row.into(), ws.ws_col.into()),
        _ => (24, 80),
    }
}

fn chars_width(chars: &[char]) -> usize {
    chars.iter().map(|c| c.width().unwrap_or(0)).sum()
}

fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `s` without our colour sequences (`ESC [ ... m`), to measure it.
fn strip_sgr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
