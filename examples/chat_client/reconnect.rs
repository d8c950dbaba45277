//! Getting a resumable session back after a drop (protocol 1.2): reconnect
//! with backoff, resume with the count of frames read, catch up, then send
//! again what the server never read; or, when the server cannot resume,
//! say so and start a new session under the same nick.
//!
//! Why nothing shows twice: the server replays exactly the frames after
//! the `received` we send, and we count a frame only once it has been read
//! whole and handled. Why nothing we sent is lost or doubled: every message
//! carries an `id`, and after a resume we ping and wait for the pong: the
//! server answers in order, so any ack that is still missing then belongs
//! to a message the server never read, which is sent again.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::app::{App, End};
use crate::session::PARKING;
use crate::style::Line;

/// A reconnect under way.
pub struct Reconnect {
    /// When the connection dropped: reconnecting stops `--reconnect-ms`
    /// after this.
    pub since: Instant,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt starts (none while one is under way).
    pub next_at: Option<Instant>,
}

/// The wait after the `failed`-th failed attempt: 0.5 s, doubling up to
/// 8 s, plus up to a fifth more so that the clients of a restarted server
/// do not all come back at the same instant.
pub fn backoff(failed: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.pow(failed.saturating_sub(1).min(4));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

impl App {
    /// Whether a frame sent now goes straight out: connected, registered,
    /// and caught up after a resume.
    pub fn online(&self) -> bool {
        self.conn.is_some()
            && self.session.registered
            && self.session.resync.is_none()
            && self.reconnect.is_none()
    }

    /// Sends `frame` now, or once the session is back.
    pub fn send_frame(&mut self, frame: Value) {
        match &mut self.conn {
            Some(conn)
                if self.session.registered && self.session.resync.is_none() && self.reconnect.is_none() =>
            {
                conn.send(&frame)
            }
            _ => self.unsent.push(frame),
        }
    }

    /// The connection ended (`code`: the error the server sent first, if
    /// any). A resumable session is reconnected; anything else ends here.
    pub fn lost(&mut self, why: String, code: Option<String>) {
        if self.quit_by.is_some() {
            self.finish(End::Quit);
            return;
        }
        let resumable = self.session.token.is_some()
            && !self.opts.reconnect_for.is_zero()
            && code.as_deref().is_none_or(|c| PARKING.contains(&c));
        if !resumable {
            self.finish(End::Lost(why));
            return;
        }
        let now = Instant::now();
        self.conn = None;
        self.connector = None;
        self.hello_at = None;
        self.session.connection_lost();
        let limit = self.opts.reconnect_for;
        match &mut self.reconnect {
            None => {
                self.reconnect = Some(Reconnect {
                    since: now,
                    attempts: 0,
                    next_at: Some(now),
                });
                let quit = if self.opts.tty { " (Ctrl-C quits)" } else { "" };
                self.show(Line::Status(format!("{why}; reconnecting{quit}")));
            }
            Some(r) => {
                let wait = backoff(r.attempts);
                if now + wait > r.since + limit {
                    let (secs, n) = (limit.as_secs_f64(), r.attempts);
                    self.finish(End::Lost(format!(
                        "could not reconnect within {secs} s ({n} attempts): {why}"
                    )));
                    return;
                }
                r.next_at = Some(now + wait);
                let secs = (wait.as_secs_f64() * 10.0).round() / 10.0;
                self.show(Line::Status(format!(
                    "reconnect failed: {why}; next try in {secs} s"
                )));
            }
        }
        self.set_prompt();
    }

    /// Starts the next attempt when its time has come.
    pub fn reconnect_timer(&mut self, now: Instant) {
        let Some(r) = &mut self.reconnect else { return };
        if r.next_at.is_none_or(|at| now < at) || self.conn.is_some() || self.connector.is_some() {
            return;
        }
        r.next_at = None;
        r.attempts += 1;
        let n = r.attempts;
        let target = self.opts.target.clone();
        self.show(Line::Status(format!("reconnecting to {target} (attempt {n})")));
        self.connect();
        self.step_connector(false);
    }

    /// A welcome came: the session is back (`resumed`), or a new one began.
    pub fn welcomed(&mut self, resumed: bool) {
        self.reconnect = None;
        if resumed {
            // The pong comes after every frame the server had for us.
            let id = format!("resync-{}", self.session.received);
            self.session.resync = Some(id.clone());
            if let Some(conn) = &mut self.conn {
                conn.send(&json!({"type": "ping", "id": id}));
            }
            return;
        }
        // A new session: what the old one sent without an ack may or may
        // not have reached anyone; nobody can tell now.
        let doubtful: Vec<String> = {
            let pending = &mut self.session.pending;
            let texts = pending
                .iter()
                .filter(|p| p.sent)
                .map(|p| p.echo.text.clone())
                .collect();
            pending.retain(|p| !p.sent);
            texts
        };
        for text in doubtful {
            if !self.opts.tty {
                self.session.failures += 1;
            }
            self.show(Line::Error(format!(
                "not known to have gone through (the old session ended): {text}"
            )));
        }
        for room in std::mem::take(&mut self.rejoin) {
            self.show(Line::Status(format!("joining {room} again")));
            if let Some(conn) = &mut self.conn {
                conn.send(&json!({"type": "join", "room": room}));
            }
        }
        self.flush_unsent();
    }

    /// The resumed session has caught up: what the server never read goes
    /// again, then what waited.
    pub fn synced(&mut self) {
        let again: Vec<Value> = self
            .session
            .pending
            .iter()
            .filter(|p| p.sent)
            .map(|p| p.frame.clone())
            .collect();
        if let Some(conn) = &mut self.conn {
            for frame in &again {
                conn.send(frame);
            }
        }
        self.flush_unsent();
    }

    /// The server could not resume (`why`, in words): a new session, under
    /// the same nick, on the same connection.
    pub fn resume_failed(&mut self, why: String) {
        self.session.token = None;
        self.rejoin = self.session.rooms.iter().cloned().collect();
        let nick = self.session.nick.clone();
        self.show(Line::Error(format!(
            "could not resume the session: {why}; starting a new one as {nick}"
        )));
        self.hello();
    }

    /// Sends what waited for the connection, in the order it was given.
    fn flush_unsent(&mut self) {
        let frames = std::mem::take(&mut self.unsent);
        for frame in frames {
            if let Some(id) = frame.get("id").and_then(Value::as_u64) {
                if let Some(p) = self.session.pending.iter_mut().find(|p| p.id == id) {
                    p.sent = true;
                }
            }
            if let Some(conn) = &mut self.conn {
                conn.send(&frame);
            }
        }
    }
}
