//! The client's one select() loop: the keyboard (or a script), the server
//! socket, signals and timers, and the session state between them.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::select::{select, FdSet};
use nix::sys::time::TimeVal;
use serde_json::json;

use crate::complete::Completer;
use crate::conn::{Conn, Connector, Progress};
use crate::editor::Editor;
use crate::keys::KeyDecoder;
use crate::session::{Effect, Session};
use crate::signals::{drain, watch_signals};
use crate::style::{Line, Style};
use crate::term::{RawMode, Screen};

/// What the command line asked for.
pub struct Options {
    /// `--connect` as given, for messages.
    pub target: String,
    pub addrs: Vec<SocketAddr>,
    pub nick: Option<String>,
    pub token: Option<String>,
    pub quiet: bool,
    pub timeout: Duration,
    /// Interactive: stdin and stdout are a terminal.
    pub tty: bool,
    pub color: bool,
    /// `--tls`: the session inside TLS, verified as this says.
    pub tls: Option<crate::conn::Tls>,
    /// The name TLS verifies (the host of `--connect`), for messages.
    pub tls_host: String,
    /// `--insecure`: any certificate is taken.
    pub insecure: bool,
    /// How long to keep reconnecting after a drop (zero: never).
    pub reconnect_for: Duration,
}

/// How the session ended.
pub enum End {
    /// We left (a quit, the end of input, Ctrl-D, a signal).
    Quit,
    /// The server or the network ended it.
    Lost(String),
    /// The server would not register us.
    Refused(String),
    /// No connection could be made, or no answer came.
    Unreachable(String),
}

/// How long a quit may wait for the server to close after it.
const QUIT_LINGER: Duration = Duration::from_secs(2);
/// How long a lone Escape waits for the rest of a key's sequence.
const ESC_WAIT: Duration = Duration::from_millis(50);

/// The terminal side: raw mode, the screen, the line being typed.
pub struct Tty {
    pub screen: Screen,
    pub editor: Editor,
    pub keys: KeyDecoder,
    pub completer: Completer,
    _raw: RawMode,
}

/// The scripted side: piped input, read by lines.
pub struct Script {
    pub partial: Vec<u8>,
    /// Cleared once a write to stdout fails (its reader went away): not a
    /// reason to stop, the script's lines are still sent.
    pub stdout_open: bool,
}

pub enum Ui {
    Tty(Box<Tty>),
    Script(Script),
}

pub struct App {
    pub opts: Options,
    pub session: Session,
    pub style: Style,
    pub ui: Ui,
    pub connector: Option<Connector>,
    pub conn: Option<Conn>,
    /// The TLS settings each connection (the first, and every reconnect)
    /// starts from.
    pub tls: Option<crate::conn::Tls>,
    /// After a drop: trying to get the session back.
    pub reconnect: Option<crate::reconnect::Reconnect>,
    /// Frames waiting for the connection (typed while reconnecting, or
    /// while a resumed session catches up), sent in order once it is.
    pub unsent: Vec<serde_json::Value>,
    /// Rooms to join again when a session could not be resumed and a new
    /// one began.
    pub rejoin: Vec<String>,
    /// Waiting for the user to type a nick (a terminal without `--nick`, or
    /// after the server refused one).
    pub asking_nick: bool,
    /// When our hello went out (cleared by the answer).
    pub hello_at: Option<Instant>,
    /// The "not answering" notice was given.
    warned: bool,
    /// We sent quit: the server's close (or this deadline) ends it.
    pub quit_by: Option<Instant>,
    pub stdin_open: bool,
    pub end: Option<End>,
    signals: UnixStream,
    resized: Option<UnixStream>,
}

impl App {
    pub fn new(mut opts: Options) -> io::Result<App> {
        let style = Style {
            color: opts.color,
            timestamps: opts.tty,
        };
        let (signals, resized) = watch_signals(opts.tty)?;
        let ui = if opts.tty {
            Ui::Tty(Box::new(Tty {
                _raw: RawMode::enter()?,
                screen: Screen::new(),
                editor: Editor::default(),
                keys: KeyDecoder::default(),
                completer: Completer::default(),
            }))
        } else {
            Ui::Script(Script {
                partial: Vec::new(),
                stdout_open: true,
            })
        };
        let mut app = App {
            session: Session::default(),
            style,
            ui,
            connector: None,
            tls: opts.tls.take(),
            reconnect: None,
            unsent: Vec::new(),
            rejoin: Vec::new(),
            conn: None,
            asking_nick: false,
            hello_at: None,
            warned: false,
            quit_by: None,
            stdin_open: true,
            end: None,
            signals,
            resized,
            opts,
        };
        match app.opts.nick.clone() {
            Some(nick) => app.session.nick = nick,
            None => {
                app.show(Line::Status("choose a nick: 1 to 32 of A-Z a-z 0-9 _ -".into()));
                let user = std::env::var("USER").unwrap_or_default();
                app.ask_nick(if crate::session::valid_nick(&user) {
                    &user
                } else {
                    ""
                });
            }
        }
        if app.opts.tty {
            let target = app.opts.target.clone();
            app.show(Line::Status(format!("connecting to {target}")));
        }
        app.set_prompt();
        Ok(app)
    }

    /// Runs until the session ends; returns how.
    pub fn run(&mut self) -> io::Result<End> {
        self.connect();
        self.step_connector(false);
        while self.end.is_none() {
            self.round()?;
        }
        Ok(self.end.take().unwrap_or(End::Quit))
    }

    fn round(&mut self) -> io::Result<()> {
        let watch_stdin = self.stdin_open
            && self.quit_by.is_none()
            && match &self.ui {
                Ui::Tty(_) => true,
                // A script's lines wait for the welcome, as typing would.
                Ui::Script(_) => self.session.registered && self.reconnect.is_none(),
            };
        let mut timeout = self
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if let Ui::Tty(t) = &self.ui {
            if t.keys.waiting() {
                timeout = Some(timeout.map_or(ESC_WAIT, |t| t.min(ESC_WAIT)));
            }
        }
        let stdin = io::stdin();
        let ready = {
            let mut r = FdSet::new();
            let mut w = FdSet::new();
            if watch_stdin {
                r.insert(stdin.as_fd());
            }
            r.insert(self.signals.as_fd());
            if let Some(s) = &self.resized {
                r.insert(s.as_fd());
            }
            if let Some(c) = &self.connector {
                if let Some(fd) = c.fd() {
                    if c.wants_write() {
                        w.insert(fd);
                    }
                    if c.wants_read() {
                        r.insert(fd);
                    }
                }
            }
            if let Some(c) = &self.conn {
                r.insert(c.fd());
                if c.wants_write() {
                    w.insert(c.fd());
                }
            }
            let mut tv = timeout.map(|t| TimeVal::new(t.as_secs() as _, t.subsec_micros() as _));
            match select(None, &mut r, &mut w, None, tv.as_mut()) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            Ready {
                stdin: watch_stdin && r.contains(stdin.as_fd()),
                signal: r.contains(self.signals.as_fd()),
                resized: self.resized.as_ref().is_some_and(|s| r.contains(s.as_fd())),
                connected: self
                    .connector
                    .as_ref()
                    .and_then(Connector::fd)
                    .is_some_and(|fd| w.contains(fd) || r.contains(fd)),
                readable: self.conn.as_ref().is_some_and(|c| r.contains(c.fd())),
                writable: self.conn.as_ref().is_some_and(|c| w.contains(c.fd())),
            }
        };
        let now = Instant::now();
        if ready.signal {
            drain(&self.signals);
            self.quit();
        }
        if ready.resized {
            if let Some(s) = &self.resized {
                drain(s);
            }
            self.redraw_input(false);
        }
        self.step_connector(ready.connected);
        if ready.readable {
            self.read_socket();
        }
        if ready.stdin {
            self.read_stdin();
        } else if let Ui::Tty(t) = &mut self.ui {
            if t.keys.waiting() {
                let keys = t.keys.flush();
                self.keys(keys);
            }
        }
        self.timers(now);
        if ready.writable || self.conn.as_ref().is_some_and(Conn::wants_write) {
            self.flush_socket();
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let hello = self
            .hello_at
            .filter(|_| !self.warned)
            .map(|at| at + self.opts.timeout);
        [
            self.connector.as_ref().and_then(Connector::deadline),
            hello,
            self.quit_by,
            self.reconnect.as_ref().and_then(|r| r.next_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn timers(&mut self, now: Instant) {
        if self.quit_by.is_some_and(|by| now >= by) {
            self.finish(End::Quit);
        }
        self.reconnect_timer(now);
        let Some(at) = self.hello_at else { return };
        if self.warned || now < at + self.opts.timeout {
            return;
        }
        if self.reconnect.is_some() {
            // A reconnect that got no answer is tried again.
            let secs = self.opts.timeout.as_secs_f64();
            self.lost(format!("no reply to hello in {secs} s"), None);
            return;
        }
        self.warned = true;
        let secs = self.opts.timeout.as_secs_f64();
        let what = format!(
            "the server at {} is not answering (connected, but no reply to hello in {secs} s)",
            self.opts.target
        );
        if self.opts.tty {
            self.show(Line::Error(format!("{what}; still waiting, Ctrl-D gives up")));
        } else {
            self.finish(End::Unreachable(what));
        }
    }

    /// Starts connecting to the server's addresses, one after another.
    pub fn connect(&mut self) {
        self.connector = Some(Connector::new(
            self.opts.addrs.clone(),
            self.opts.timeout,
            self.tls.clone(),
        ));
    }

    pub fn step_connector(&mut self, writable: bool) {
        let Some(connector) = &mut self.connector else {
            return;
        };
        match connector.step(writable, Instant::now()) {
            Progress::Pending => {}
            Progress::Up(conn) => {
                self.connector = None;
                if let Some(tls) = conn.tls_description() {
                    let how = if self.opts.insecure {
                        "not verified (--insecure)".to_string()
                    } else {
                        format!("verified as {}", self.opts.tls_host)
                    };
                    self.show(Line::Status(format!("TLS: {tls}, {how}")));
                }
                self.conn = Some(conn);
                if !self.asking_nick {
                    self.hello();
                }
            }
            Progress::TlsFailed(why) if self.reconnect.is_some() => {
                self.connector = None;
                self.lost(why, None);
            }
            Progress::TlsFailed(why) => {
                self.connector = None;
                self.finish(End::Unreachable(why));
            }
            Progress::Failed if self.reconnect.is_some() => {
                let c = self.connector.take().unwrap();
                self.lost(c.why(), None);
            }
            Progress::Failed => {
                let c = self.connector.take().unwrap();
                let why = if c.timed_out {
                    format!(
                        "the server at {} is not answering (no connection in {} s: {})",
                        self.opts.target,
                        self.opts.timeout.as_secs_f64(),
                        c.why()
                    )
                } else {
                    format!("cannot connect to {}: {}", self.opts.target, c.why())
                };
                self.finish(End::Unreachable(why));
            }
        }
    }

    /// Sends our hello with the nick chosen, asking for a resumable
    /// session; or, with a session to get back, the resume.
    pub fn hello(&mut self) {
        let mut hello = json!({"type": "hello", "nick": self.session.nick});
        if let Some(session) = &self.session.token {
            hello["resume"] = json!({"session": session, "received": self.session.received});
        } else {
            hello["resumable"] = json!(true);
            if let Some(token) = &self.opts.token {
                hello["token"] = json!(token);
            }
        }
        if let Some(conn) = &mut self.conn {
            conn.send(&hello);
            self.hello_at = Some(Instant::now());
            self.warned = false;
        }
    }

    fn read_socket(&mut self) {
        let Some(conn) = &mut self.conn else { return };
        let result = conn.read();
        let (frames, closed) = match result {
            Ok(r) => r,
            Err(e) => {
                let why = format!("connection lost: {}", crate::conn::plain(&e));
                self.lost(why, None);
                return;
            }
        };
        for frame in frames {
            for effect in self.session.incoming(&frame) {
                self.effect(effect);
            }
            // Ended, or the connection these frames came on was given up.
            if self.end.is_some() || self.conn.is_none() {
                return;
            }
        }
        if closed {
            self.closed("the server closed the connection".into());
        }
    }

    /// The socket closed or failed: the reason the server gave before, if
    /// any, else `otherwise`.
    fn closed(&mut self, otherwise: String) {
        match self.session.closing.take() {
            Some((code, why)) => self.lost(why, Some(code)),
            None => self.lost(otherwise, None),
        }
    }

    fn flush_socket(&mut self) {
        let Some(conn) = &mut self.conn else { return };
        if let Err(e) = conn.flush() {
            self.closed(format!("connection lost: {}", crate::conn::plain(&e)));
        }
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            // A script's output stays what others said.
            Effect::Show(crate::style::Line::Said(said)) if said.own && !self.opts.tty => {}
            Effect::Show(line) => self.show(line),
            Effect::Reply(frame) => {
                if let Some(c) = &mut self.conn {
                    c.send(&frame);
                }
            }
            Effect::Welcome { resumed } => {
                self.hello_at = None;
                self.asking_nick = false;
                self.welcomed(resumed);
                self.set_prompt();
            }
            Effect::ResumeFailed(why) => self.resume_failed(why),
            Effect::Renamed => self.set_prompt(),
            Effect::Synced => self.synced(),
            Effect::NickRefused(why) => {
                self.hello_at = None;
                if self.opts.tty {
                    self.show(Line::Error(format!("{why}: type another nick")));
                    self.ask_nick("");
                } else {
                    self.finish(End::Refused(why));
                }
            }
            Effect::Refused(why) => self.finish(End::Refused(why)),
        }
    }

    /// Leaves: a quit to the server, whose close then ends the session.
    pub fn quit(&mut self) {
        if self.quit_by.is_some() {
            return;
        }
        if self.conn.is_some() && self.session.registered {
            // After what waits to be sent, if anything does.
            self.send_frame(json!({"type": "quit"}));
            self.quit_by = Some(Instant::now() + QUIT_LINGER);
        } else {
            self.finish(End::Quit);
        }
    }

    pub fn finish(&mut self, end: End) {
        if self.end.is_none() {
            self.end = Some(end);
        }
    }

    fn read_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        let n = match io::stdin().lock().read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(_) => 0,
        };
        if n == 0 {
            self.stdin_open = false;
            self.end_of_input();
            return;
        }
        match &mut self.ui {
            Ui::Tty(t) => {
                let keys = t.keys.push(&buf[..n]);
                self.keys(keys);
            }
            Ui::Script(s) => {
                s.partial.extend_from_slice(&buf[..n]);
                self.script_lines();
            }
        }
    }
}

/// What select() found ready in one round.
struct Ready {
    stdin: bool,
    signal: bool,
    resized: bool,
    connected: bool,
    readable: bool,
    writable: bool,
}
