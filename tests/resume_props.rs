//! A property test of resumable sessions (protocol 1.2) in memory: random
//! traffic both ways, random socket windows (frames left unread, or partly
//! written), random disconnect points (the server noticing or not), random
//! resumes and window expiries, against a model of what each side must end
//! up with:
//! - a successful resume gives alice every frame of her session exactly
//!   once, in order (messages, acks, notices, pongs alike);
//! - a `gap` is allowed only when the frames after her count weigh more
//!   than `resume_retain_bytes` (the server keeps at least that much), and
//!   then the session ends as the contract says;
//! - `unknown_session` only after the window expired;
//! - bob gets every message alice sent while connected, once, in order,
//!   and hears of alice only when a session really ends or starts.

mod common;

use std::time::Duration;

use chat::testing::{Pipe, PipeClient};
use chat::Config;
use proptest::prelude::*;
use serde_json::{json, Value};

const WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum Op {
    /// bob sends alice a message with a text this long.
    BobSends(usize),
    /// The host sends alice a notice.
    Notice,
    /// alice sends bob a message, asking for an ack or not.
    AliceSends(bool),
    /// alice reads up to this many whole frames.
    AliceReads(u8),
    /// alice's socket holds at most this many unread bytes.
    Window(Option<u16>),
    /// alice's network goes, unnoticed.
    Vanish,
    /// The server notices (her session parks).
    ServerNotices,
    /// alice resumes on a new connection.
    Resume,
    /// The resume window passes.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..300).prop_map(Op::BobSends),
        1 => Just(Op::Notice),
        2 => any::<bool>().prop_map(Op::AliceSends),
        3 => (0u8..6).prop_map(Op::AliceReads),
        1 => prop_oneof![Just(None), (0u16..1500).prop_map(Some)].prop_map(Op::Window),
        1 => Just(Op::Vanish),
        1 => Just(Op::ServerNotices),
        1 => Just(Op::Resume),
        1 => Just(Op::Expire),
    ]
}

/// What a frame costs as the server counts it: its payload and
/// `FRAME_OVERHEAD` (the texts here need no escaping, so any key order gives the
/// server's length).
fn cost(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len() + chat::FRAME_OVERHEAD
}

fn counted(v: &Value) -> bool {
    v["type"] != "welcome" && !(v["type"] == "error" && v["code"] == "replaced")
}

struct World {
    server: Pipe,
    retain: usize,
    bob: PipeClient,
    bob_expected: Vec<Value>,
    bob_got: Vec<Value>,
    alice: PipeClient,
    /// alice's connection is gone (the server may not know).
    vanished: bool,
    /// The server closed it: her session is parked.
    parked: bool,
    token: String,
    /// The id the host knows her session by.
    session_id: u64,
    /// Counted frames she read whole in this session.
    received: u64,
    /// Every counted frame queued to this session, in order.
    expected: Vec<Value>,
    /// What she read of it.
    got: Vec<Value>,
    notices: u64,
    acks: u64,
    texts: u64,
}

impl World {
    fn new(retain: usize) -> World {
        let server = Pipe::start(Config {
            resume_retain_bytes: retain,
            resume_window: WINDOW,
            ..Config::default()
        });
        let bob = server.hello("bob");
        let alice = server.connect();
        let mut w = World {
            bob,
            bob_expected: Vec::new(),
            bob_got: Vec::new(),
            alice,
            vanished: false,
            parked: false,
            token: String::new(),
            session_id: 0,
            received: 0,
            expected: Vec::new(),
            got: Vec::new(),
            notices: 0,
            acks: 0,
            texts: 0,
            retain,
            server,
        };
        w.register();
        w
    }

    /// A fresh resumable session for alice on her current connection.
    fn register(&mut self) {
        self.alice
            .send(&json!({"type": "hello", "nick": "alice", "resumable": true}));
        let welcome = self.alice.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        self.token = welcome["session"].as_str().unwrap().to_string();
        self.session_id = self.alice.id();
        self.received = 0;
        self.expected.clear();
        self.got.clear();
        self.bob_expected
            .push(json!({"type": "presence", "nick": "alice", "state": "online"}));
    }

    fn live(&self) -> bool {
        !self.vanished
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::BobSends(len) => {
                self.texts += 1;
                let text = format!("t{}{}", self.texts, "x".repeat(len));
                self.bob
                    .send(&json!({"type": "msg", "to": "alice", "text": text}));
                self.expected
                    .push(json!({"type": "msg", "from": "bob", "to": "alice", "text": text}));
            }
            Op::Notice => {
                self.notices += 1;
                let text = format!("n{}", self.notices);
                let id = self.session_id;
                self.server.with(|s| s.notice(id, &text)).unwrap();
                self.expected.push(json!({"type": "notice", "text": text}));
            }
            Op::AliceSends(ack) if self.live() => {
                self.texts += 1;
                let text = format!("a{}", self.texts);
                let mut m = json!({"type": "msg", "to": "bob", "text": text});
                if ack {
                    self.acks += 1;
                    m["id"] = json!(self.acks);
                    self.expected
                        .push(json!({"type": "ack", "id": self.acks, "queued": 1}));
                }
                self.alice.send(&m);
                self.bob_expected
                    .push(json!({"type": "msg", "from": "alice", "to": "bob", "text": text}));
            }
            Op::AliceReads(n) if self.live() => {
                for _ in 0..n {
                    if !self.alice.has_pending() {
                        break;
                    }
                    let v = self.alice.recv();
                    assert!(counted(&v), "an uncounted frame mid-session: {v}");
                    self.received += 1;
                    self.got.push(v);
                }
            }
            Op::Window(w) if self.live() => self.alice.set_window(w.map(usize::from)),
            Op::Vanish if self.live() => {
                self.alice.vanish();
                self.vanished = true;
            }
            Op::ServerNotices if self.vanished && !self.parked => {
                self.alice.close();
                self.parked = true;
            }
            Op::Resume if self.vanished => self.resume(),
            Op::Expire if self.parked => {
                self.server.advance(WINDOW + Duration::from_millis(1));
                self.bob_expected.push(
                    json!({"type": "presence", "nick": "alice", "state": "offline", "reason": "disconnect"}),
                );
                let mut next = self.server.connect();
                next.send(&self.resume_hello());
                let v = next.recv();
                assert_eq!(
                    (&v["code"], &v["reason"]),
                    (&json!("resume_failed"), &json!("unknown_session")),
                    "{v}"
                );
                self.alice = next;
                self.vanished = false;
                self.parked = false;
                self.register();
            }
            _ => {}
        }
        self.drain_bob();
    }

    fn resume_hello(&self) -> Value {
        json!({"type": "hello", "nick": "alice", "resume": {"session": self.token, "received": self.received}})
    }

    fn resume(&mut self) {
        let mut next = self.server.connect();
        next.send(&self.resume_hello());
        let v = next.recv();
        let after: usize = self.expected[self.received as usize..].iter().map(cost).sum();
        self.alice = next;
        self.vanished = false;
        self.parked = false;
        if v["type"] == "welcome" {
            assert_eq!(v["resumed"], true, "{v}");
            self.token = v["session"].as_str().unwrap().to_string();
            self.session_id = self.alice.id();
            return;
        }
        assert_eq!(v["code"], "resume_failed", "{v}");
        assert_eq!(v["reason"], "gap", "{v}");
        assert!(
            after > self.retain,
            "a gap although only {after} bytes came after frame {} (retain {})",
            self.received,
            self.retain
        );
        self.bob_expected
            .push(json!({"type": "presence", "nick": "alice", "state": "offline", "reason": "disconnect"}));
        self.register();
    }

    fn drain_bob(&mut self) {
        while self.bob.has_pending() {
            let v = self.bob.recv();
            self.bob_got.push(v);
        }
    }

    /// alice comes back if she is away and reads everything; then both
    /// sides are compared with the model.
    fn finish(mut self) {
        if self.vanished {
            self.resume();
        }
        self.alice.set_window(None);
        self.alice.send(&json!({"type": "ping", "id": "end"}));
        self.expected.push(json!({"type": "pong", "id": "end"}));
        while self.got.len() < self.expected.len() {
            let v = self.alice.recv();
            assert!(counted(&v), "{v}");
            self.got.push(v);
        }
        assert_eq!(self.got, self.expected, "alice's session");
        assert!(!self.alice.has_pending(), "alice got more than her session");
        self.drain_bob();
        assert_eq!(self.bob_got, self.bob_expected, "bob");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_once_in_order_across_random_drops(
        retain in prop_oneof![Just(1usize), 50usize..2000, Just(1 << 20)],
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut w = World::new(retain);
        // bob's own view of alice registering is not part of his model.
        w.drain_bob();
        w.bob_got.clear();
        w.bob_expected.clear();
        for op in &ops {
            w.apply(op);
        }
        w.finish();
    }
}
