//! A program run in a pseudo-terminal, as a person at a terminal would run
//! it: keys written to the terminal, and what it prints fed to a terminal
//! emulator (vt100), so tests assert on the screen a person would see.
//! Every wait is on a condition with a deadline.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, LocalModes, Winsize};

use crate::common::DEADLINE;

/// What the reader thread has seen.
struct Seen {
    parser: vt100::Parser,
    /// Every byte the program wrote, escape sequences included.
    raw: Vec<u8>,
    /// The terminal closed (the program and its children exited).
    closed: bool,
}

pub struct Pty {
    pub child: Child,
    master: File,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

pub const ROWS: u16 = 24;
pub const COLS: u16 = 80;

/// Keys, as a terminal sends them.
pub mod key {
    pub const UP: &[u8] = b"\x1b[A";
    pub const DOWN: &[u8] = b"\x1b[B";
    pub const RIGHT: &[u8] = b"\x1b[C";
    pub const LEFT: &[u8] = b"\x1b[D";
    pub const HOME: &[u8] = b"\x1b[H";
    pub const END: &[u8] = b"\x1b[F";
    pub const DELETE: &[u8] = b"\x1b[3~";
    pub const BACKSPACE: &[u8] = b"\x7f";
    pub const TAB: &[u8] = b"\t";
    pub const SHIFT_TAB: &[u8] = b"\x1b[Z";
    pub const ENTER: &[u8] = b"\r";
    pub const CTRL_A: &[u8] = b"\x01";
    pub const CTRL_C: &[u8] = b"\x03";
    pub const CTRL_D: &[u8] = b"\x04";
    pub const CTRL_E: &[u8] = b"\x05";
    pub const CTRL_K: &[u8] = b"\x0b";
    pub const CTRL_L: &[u8] = b"\x0c";
    pub const CTRL_U: &[u8] = b"\x15";
    pub const CTRL_W: &[u8] = b"\x17";
    pub const CTRL_Y: &[u8] = b"\x19";
}

impl Pty {
    /// Starts `cmd` with stdin, stdout and stderr on a new terminal of
    /// [`ROWS`] x [`COLS`].
    pub fn spawn(mut cmd: Command) -> Pty {
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        rustix::pty::grantpt(&master).expect("grantpt");
        rustix::pty::unlockpt(&master).expect("unlockpt");
        let name = rustix::pty::ptsname(&master, Vec::new()).expect("ptsname");
        termios::tcsetwinsize(
            &master,
            Winsize {
                ws_row: ROWS,
                ws_col: COLS,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("set the window size");
        let slave: OwnedFd = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, Mode::empty())
            .expect("open the pty");
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty"));
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        cmd.env("TERM", "xterm-256color");
        let child = cmd.spawn().expect("spawn in the pty");
        drop(slave);
        let master = File::from(master);
        let seen = Arc::new((
            Mutex::new(Seen {
                parser: vt100::Parser::new(nonzero(ROWS), nonzero(COLS), 0),
                raw: Vec::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let mut reader = master.try_clone().expect("dup the master");
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                // EIO once every holder of the terminal has closed it.
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*seen2;
                // A test that failed while holding the lock poisoned it; the
                // screen is still worth keeping for the next message.
                let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                s.parser.process(&buf[..n]);
                s.raw.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Pty { child, master, seen }
    }

    /// Types `bytes` (keys) on the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("type on the terminal");
        self.master.flush().unwrap();
    }

    /// Waits until `pred` holds for the screen; returns the screen's text.
    /// Panics at the deadline, showing the screen.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&vt100::Screen) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        let (lock, cv) = &*self.seen;
        let mut s = lock.lock().unwrap();
        loop {
            if pred(s.parser.screen()) {
                return s.parser.screen().contents();
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let screen = s.parser.screen().contents();
                drop(s);
                panic!("waited for {what}; the screen:\n{screen}");
            }
            s = cv.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Waits until the screen shows `text` somewhere.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?} on screen"), |s| s.contents().contains(text))
    }

    /// Waits until the cursor's row reads `line` (trailing blanks ignored)
    /// with the cursor at `col`.
    pub fn wait_input(&self, line: &str, col: u16) -> String {
        self.wait_for(&format!("the input line {line:?}, cursor at column {col}"), |s| {
            let (row, c) = s.cursor_position();
            row_text(s, row) == line && c == col
        })
    }

    /// The screen's text now.
    pub fn screen(&self) -> String {
        self.seen.0.lock().unwrap().parser.screen().contents()
    }

    /// Runs `f` on the screen now.
    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        f(self.seen.0.lock().unwrap().parser.screen())
    }

    /// Feeds bytes to the emulator as if another program had written them
    /// to this terminal (to see that Ctrl-L paints over them).
    pub fn scribble(&self, bytes: &[u8]) {
        self.seen.0.lock().unwrap().parser.process(bytes);
    }

    /// Every byte the program wrote so far.
    pub fn raw(&self) -> Vec<u8> {
        self.seen.0.lock().unwrap().raw.clone()
    }

    /// Whether the terminal's line discipline is cooked and echoing, as a
    /// shell expects it back.
    pub fn is_cooked(&self) -> bool {
        let t = termios::tcgetattr(&self.master).expect("tcgetattr");
        t.local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG)
    }

    /// Waits for the exit, killing the program at the deadline.
    pub fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                panic!(
                    "program did not exit before the deadline; the screen:\n{}",
                    self.screen()
                );
            }
            // Polling a child's exit: std::process::Child has no blocking
            // wait with a timeout.
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row of the screen, trailing blanks dropped.
pub fn row_text(s: &vt100::Screen, row: u16) -> String {
    s.contents_between(row, 0, row, COLS).trim_end().to_string()
}

/// The rows of the screen, trailing blanks dropped, empty rows kept.
pub fn rows(s: &vt100::Screen) -> Vec<String> {
    (0..ROWS).map(|r| row_text(s, r)).collect()
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a terminal has rows and columns")
}
