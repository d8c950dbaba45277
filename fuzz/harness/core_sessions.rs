//! The resumable sessions (protocol 1.2) of the core harness: the tokens
//! issued, what each fake client knows of its session (its token, the frames
//! of it read whole, whether it parked or moved), the `hello` that resumes
//! one, and the invariants about them (see `core_script.rs`).

use std::collections::{HashSet, VecDeque};

use chat::{ClientId, Config, Event, Reason};
use serde_json::{json, Value};

use super::{ClientMsg, World, NICKS};

/// The count a resume claims, next to its holder's own.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum ResumeCount {
    /// What the session's holder has read whole.
    Honest,
    /// That many fewer (frames it claims not to have).
    Behind(u8),
    /// That many more (frames never sent, maybe).
    Ahead(u8),
}

/// What a resume sent is expected to get.
#[derive(Debug, Clone)]
struct Expect {
    /// The token is not a live session's (wrong, spent, ended): only
    /// `unknown_session` may come back.
    stale: bool,
    /// The count claimed: the session's count from then on if it resumes.
    count: u64,
}

/// One fake client's view of its session.
#[derive(Debug, Default)]
pub(super) struct ClientSession {
    /// It sent a hello asking for a session (or a resume) at some point.
    asked: bool,
    /// The token of its session's last welcome.
    token: Option<String>,
    /// Frames of its session read whole.
    count: u64,
    /// Its session is parked.
    pub parked: bool,
    /// Its session moved to another client by a resume.
    pub moved: bool,
    /// It took a session over by a resume (its queue may hold a replay).
    resumed: bool,
    /// Resumes it sent, oldest first, not answered yet.
    expect: VecDeque<Expect>,
    /// It sent bytes that may not be whole frames, or any payload: its
    /// answers cannot be matched with resumes any more.
    pub tainted: bool,
}

/// Every token issued, and the checks that span a step.
#[derive(Debug)]
pub(super) struct Sessions {
    /// Tokens in the order issued, with the client each went to.
    issued: Vec<(String, usize)>,
    seen: HashSet<String>,
    retain: usize,
    /// Resumes are answered in the step they are sent (no rate limit, no
    /// approval), so a failed one is checked for touching nothing.
    answered_at_once: bool,
    /// A resume with a stale token was sent this step: no event may come.
    quiet: bool,
}

impl Sessions {
    pub fn new(cfg: &Config) -> Self {
        Sessions {
            issued: Vec::new(),
            seen: HashSet::new(),
            retain: cfg.resume_retain_bytes,
            answered_at_once: cfg.rate_limit_frames.is_none()
                && cfg.rate_limit_bytes.is_none()
                && !cfg.approve_registrations,
            quiet: false,
        }
    }

    /// An event of this step.
    pub fn check_step_event(&self, ev: &Event) {
        assert!(
            !self.quiet,
            "a resume with a wrong, spent or expired token changed something: {ev:?}"
        );
    }

    /// The step is over.
    pub fn end_step(&mut self) {
        self.quiet = false;
    }

    /// Most bytes a client's queue may hold: `max_queue_bytes`, or for a
    /// connection that took a session over, that plus its replayed backlog
    /// (at most the tail, what it held when it parked, and what came
    /// while parked).
    pub fn queue_cap(&self, s: &ClientSession, max_queue_bytes: usize) -> usize {
        if s.resumed {
            4 * max_queue_bytes + self.retain + 8192
        } else {
            max_queue_bytes
        }
    }
}

impl World {
    /// The payload of a client's message; a resume is built from the
    /// tokens issued so far.
    pub(super) fn client_payload(&mut self, k: usize, msg: &ClientMsg) -> Vec<u8> {
        match *msg {
            ClientMsg::HelloResumable { .. } => self.clients[k].session.asked = true,
            ClientMsg::Frame(_) => self.clients[k].session.tainted = true,
            ClientMsg::Resume {
                token,
                count,
                corrupt,
            } => return self.resume_payload(k, token, count, corrupt),
            _ => {}
        }
        msg.payload()
    }

    fn resume_payload(&mut self, k: usize, token: u8, count: ResumeCount, corrupt: bool) -> Vec<u8> {
        self.clients[k].session.asked = true;
        let picked = (!self.sessions.issued.is_empty())
            .then(|| self.sessions.issued[usize::from(token) % self.sessions.issued.len()].clone());
        let (mut token, owner) = picked.unwrap_or_else(|| ("none".to_string(), k));
        let o = &self.clients[owner];
        let live = o.session.token.as_deref() == Some(&token) && !o.disconnected && !o.session.moved;
        let nick = o.nick.clone().unwrap_or_else(|| NICKS[0].to_string());
        let honest = o.session.count;
        let received = match count {
            ResumeCount::Honest => honest,
            ResumeCount::Behind(n) => honest.saturating_sub(u64::from(n)),
            ResumeCount::Ahead(n) => honest + u64::from(n),
        };
        if corrupt {
            token.push('x');
        }
        let stale = !live || corrupt;
        let me = &mut self.clients[k];
        if me.nick.is_none() && !me.session.tainted && self.sessions.answered_at_once {
            me.session.expect.push_back(Expect {
                stale,
                count: received,
            });
            self.sessions.quiet |= stale;
        }
        let v = json!({"type": "hello", "nick": nick, "resume": {"session": token, "received": received}});
        serde_json::to_vec(&v).expect("serialising a Value")
    }

    /// A frame client `k` read whole: counted for its session, and
    /// checked if it answers a hello of sessions.
    pub(super) fn session_frame(&mut self, k: usize, v: &Value) {
        let kind = v["type"].as_str().unwrap_or_default();
        let code = v["code"].as_str().unwrap_or_default();
        match (kind, code) {
            ("welcome", _) => self.welcome(k, v),
            ("error", "resume_failed") => {
                let reason = v["reason"].as_str().unwrap_or_default();
                assert!(
                    matches!(reason, "unknown_session" | "gap"),
                    "resume_failed with reason {reason:?}"
                );
                let s = &mut self.clients[k].session;
                if let Some(e) = s.expect.pop_front() {
                    assert!(
                        !e.stale || reason == "unknown_session",
                        "a wrong, spent or ended token got {reason}"
                    );
                }
            }
            // The connection's own farewells are not the session's.
            ("error", "timeout" | "slow_consumer" | "replaced") => {}
            _ => self.clients[k].session.count += 1,
        }
    }

    fn welcome(&mut self, k: usize, v: &Value) {
        let resumed = v["resumed"] == true;
        if let Some(token) = v["session"].as_str() {
            assert!(
                self.sessions.seen.insert(token.to_string()),
                "token {token} issued twice"
            );
            let s = &self.clients[k].session;
            assert!(s.asked || s.tainted, "a session nobody asked for: {v}");
            self.sessions.issued.push((token.to_string(), k));
        }
        let tracked = self.sessions.answered_at_once;
        let s = &mut self.clients[k].session;
        s.token = v["session"].as_str().map(str::to_string);
        s.count = 0;
        if resumed {
            match s.expect.pop_front() {
                Some(e) => {
                    assert!(!e.stale, "a wrong, spent or ended token resumed a session");
                    s.count = e.count;
                }
                // Resumes are matched with answers only when they are
                // answered at once (no rate limit, no approval).
                None => assert!(s.tainted || !tracked, "a resume welcome nobody asked for: {v}"),
            }
        }
    }

    /// `Disconnected`: its session, if any, ended.
    pub(super) fn session_ended(&mut self, k: usize) {
        let s = &mut self.clients[k].session;
        s.parked = false;
        s.token = None;
    }

    /// `Renamed`: the nick was its own, the new one is free.
    pub(super) fn renamed(&mut self, k: usize, old: &str, nick: Option<&str>) {
        let new = nick.expect("Renamed without a nick");
        assert_eq!(
            self.clients[k].nick.as_deref(),
            Some(old),
            "Renamed from a nick it did not have"
        );
        self.assert_nick_free(k, new);
        self.clients[k].nick = Some(new.to_string());
    }

    /// `Parked`: only a resumable session, for a reason that parks.
    pub(super) fn parked(&mut self, k: usize, reason: Reason) {
        let c = &mut self.clients[k];
        assert!(
            c.session.asked || c.session.tainted,
            "a session parked that was not resumable"
        );
        assert!(c.nick.is_some(), "an unregistered client parked");
        assert!(
            matches!(
                reason,
                Reason::Disconnect | Reason::Timeout | Reason::SlowConsumer
            ),
            "parked for {reason}"
        );
        assert!(!c.session.parked, "parked twice");
        c.session.parked = true;
    }

    /// `Resumed { previous }` on client `k`: the session of `previous`
    /// moved here, nick and all, once.
    pub(super) fn resumed(&mut self, k: usize, previous: ClientId, nick: Option<&str>) {
        let j = *self
            .by_id
            .get(&previous)
            .unwrap_or_else(|| panic!("Resumed from unknown client {previous}"));
        assert_ne!(j, k, "a session resumed onto itself");
        let old = &mut self.clients[j];
        assert!(
            !old.disconnected && !old.session.moved,
            "a session resumed from a client that had none"
        );
        old.session.moved = true;
        old.session.parked = false;
        old.session.token = None;
        let moved_nick = old.nick.take();
        assert_eq!(
            moved_nick.as_deref(),
            nick,
            "the session's nick did not move with it"
        );
        let c = &mut self.clients[k];
        assert!(c.nick.is_none(), "a registered client resumed a session");
        c.nick = moved_nick;
        c.session.resumed = true;
        c.session.asked = true;
    }
}
