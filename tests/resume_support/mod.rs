//! A client of resumable sessions (protocol 1.2) for the tests, over any
//! [`Wire`]: it asks for a session, counts the frames of the session it
//! reads whole (not `welcome`, not the farewell error of a dropped or
//! replaced connection), and resumes on a new connection with that count,
//! keeping every counted frame it ever read, in order.
#![allow(dead_code)]

use serde_json::{json, Value};

use crate::common::Wire;

/// Whether a frame belongs to the session (is counted) rather than to the
/// connection: every frame but `welcome` and the error that says why a
/// connection of the session is dropped (`timeout`, `slow_consumer`) or
/// `replaced`.
pub fn counted(v: &Value) -> bool {
    if v["type"] == "welcome" {
        return false;
    }
    let farewell = ["timeout", "slow_consumer", "replaced"];
    !(v["type"] == "error" && farewell.iter().any(|c| v["code"] == *c))
}

/// One user's resumable session, across connections.
pub struct Resumer<W: Wire> {
    /// The connection in use now.
    pub wire: W,
    /// The nick registered.
    pub nick: String,
    /// The token of the last welcome.
    pub token: String,
    /// Counted frames read whole so far.
    pub received: u64,
    /// Every counted frame read, in order, across connections.
    pub frames: Vec<Value>,
}

impl<W: Wire> Resumer<W> {
    /// Registers `nick` on `wire` with `"resumable":true`; panics unless the
    /// welcome carries a session.
    pub fn hello(mut wire: W, nick: &str) -> Self {
        wire.send(&json!({"type": "hello", "nick": nick, "resumable": true}));
        let welcome = wire.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let token = welcome["session"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {welcome}"))
            .to_string();
        Resumer {
            wire,
            nick: nick.to_string(),
            token,
            received: 0,
            frames: Vec::new(),
        }
    }

    /// Reads the next frame, counting it if it is the session's.
    pub fn recv(&mut self) -> Value {
        let v = self.wire.recv();
        self.note(&v);
        v
    }

    /// Reads frames until the connection closes; returns them.
    pub fn read_to_close(&mut self) -> Vec<Value> {
        let frames = self.wire.expect_closed();
        for v in &frames {
            self.note(v);
        }
        frames
    }

    fn note(&mut self, v: &Value) {
        if counted(v) {
            self.received += 1;
            self.frames.push(v.clone());
        }
    }

    /// The `hello` that resumes this session after `received` frames.
    pub fn resume_hello(&self, received: u64) -> Value {
        json!({"type": "hello", "nick": self.nick, "resume": {"session": self.token, "received": received}})
    }

    /// Resumes on `wire` with the count so far; panics unless the welcome
    /// says `resumed` with a fresh token. Returns the old connection.
    pub fn resume(&mut self, mut wire: W) -> W {
        wire.send(&self.resume_hello(self.received));
        let welcome = wire.recv();
        assert_eq!(welcome["type"], "welcome", "resume of {}: {welcome}", self.nick);
        assert_eq!(welcome["resumed"], true, "{welcome}");
        assert_eq!(welcome["nick"], self.nick.as_str(), "{welcome}");
        let token = welcome["session"].as_str().expect("a fresh token").to_string();
        assert_ne!(token, self.token, "the token must change on every resume");
        self.token = token;
        std::mem::replace(&mut self.wire, wire)
    }
}

/// Asserts `v` is `resume_failed` with `reason`.
pub fn assert_resume_failed(v: &Value, reason: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["code"], "resume_failed", "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}

/// `{"type":"msg","from":from,"to":to,"text":text}`.
pub fn msg(from: &str, to: &str, text: &str) -> Value {
    json!({"type": "msg", "from": from, "to": to, "text": text})
}
