//! A script of operations on the sans-IO server core (`chat::testing::Core`)
//! from several fake clients and the host, and the invariants checked after
//! every step. Shared by the `core` fuzz target (which decodes scripts with
//! `arbitrary`) and by `tests/fuzz_regressions.rs` (which writes them by
//! hand), so a regression test checks exactly what the fuzzer checked.
//!
//! The invariants, any of which failing is a panic:
//! - every byte stream a client receives decodes as whole frames whose
//!   payloads are JSON objects with a string `type`;
//! - `stats().queued_bytes` always equals what `take_output` hands out;
//!   no client's queue ever holds more than `max_queue_bytes`;
//! - `msg`, `all` and `room` frames carry the real sender's nick in `from`:
//!   each one a client receives is exactly a frame the core reported as
//!   routed (event `Message`) for a sender registered under that nick, or a
//!   payload the host itself sent;
//! - registered nicks are unique (case-insensitively), renames included;
//!   events for a client stop at its `Disconnected` (or at the `Resumed`
//!   that moved its session elsewhere); only closed clients (or parked
//!   sessions' connections) are reaped; the client, registered and parked
//!   counts match the events;
//! - resumable sessions (`core_sessions.rs`): every token is new; a welcome
//!   carries one exactly when its hello asked; `resume_failed` says
//!   `unknown_session` or `gap`, and always `unknown_session` for a token
//!   that is not a live session's (wrong, spent, ended), which changes
//!   nothing for anyone; a resume moves the session (nick, id) exactly once;
//!   only resumable sessions park, for `disconnect`, `timeout` or
//!   `slow_consumer`; a queue passes `max_queue_bytes` only by a resume's
//!   replayed backlog.

// The `Arbitrary` derives need `--cfg fuzzing` (set by cargo-fuzz and
// cargo-afl); a crate that includes this file without it declares the cfg
// (fuzz/Cargo.toml) or allows `unexpected_cfgs` at its root.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chat::frame::FrameDecoder;
use chat::testing::Core;
use chat::{ClientId, EventKind, Stats};
use serde_json::{json, Value};

#[path = "core_ops.rs"]
mod ops;
#[path = "core_sessions.rs"]
mod sessions;

#[allow(unused_imports)] // the fuzz target names only `Script`
pub use ops::{ClientMsg, HostPayload, Limits, Op, Script, MAX_CLIENTS, NICKS, ROOMS};
pub use sessions::ResumeCount;

/// What the harness knows about one fake client.
struct Client {
    id: ClientId,
    /// Not reading its socket: output accumulates in the core.
    stalled: bool,
    /// Reassembles what it received (no limit: server frames may exceed
    /// `max_frame_bytes`, e.g. a `welcome` listing every nick).
    stream: FrameDecoder,
    /// Registered under this nick (from the `Registered` event).
    nick: Option<String>,
    /// Its `Disconnected` event was seen.
    disconnected: bool,
    /// The core forgot it.
    reaped: bool,
    /// Every frame it received, in order.
    received: Vec<Value>,
    /// Its resumable session, as seen from outside.
    session: sessions::ClientSession,
}

/// What a script left behind, for tests to look at.
#[derive(Debug)]
pub struct Outcome {
    /// The core's counters at the end.
    pub stats: Stats,
    /// How many messages the core routed (distinct payloads).
    pub routed: usize,
    /// Every frame each client received, by order of connection.
    pub received: Vec<Vec<Value>>,
}

/// The core and everything observed of it.
struct World {
    core: Core,
    max_queue_bytes: usize,
    start: Instant,
    elapsed: Duration,
    clients: Vec<Client>,
    by_id: HashMap<ClientId, usize>,
    /// Payloads of frames the core reported routed, with their sender's nick.
    routed: HashSet<Vec<u8>>,
    /// Payloads the host sent that were accepted.
    host_sent: HashSet<Vec<u8>>,
    /// Tickets of intercepted messages.
    tickets: Vec<u64>,
    /// Every session token issued, and what is known of sessions.
    sessions: sessions::Sessions,
}

/// Runs a script, checking every invariant after every step. Panics on the
/// first violation, with the step number.
pub fn run(script: &Script) -> Outcome {
    let cfg = script.limits.config();
    cfg.validate().expect("the fuzz limits are a valid Config");
    let mut w = World {
        core: Core::new(&cfg),
        max_queue_bytes: cfg.max_queue_bytes,
        start: Instant::now(),
        elapsed: Duration::ZERO,
        clients: Vec::new(),
        by_id: HashMap::new(),
        routed: HashSet::new(),
        host_sent: HashSet::new(),
        tickets: Vec::new(),
        sessions: sessions::Sessions::new(&cfg),
    };
    for (step, op) in script.ops.iter().enumerate() {
        let go_on = w.apply(op);
        w.check(step, op);
        if !go_on {
            break;
        }
    }
    w.finish();
    Outcome {
        stats: w.core.stats(),
        routed: w.routed.len(),
        received: w.clients.into_iter().map(|c| c.received).collect(),
    }
}

/// A frame as a client reads it: a JSON object. Finding F1
/// (docs/reliability.md): a client's `id` with a number beyond f64's range
/// (`1e400`) is echoed as is in `pong` and `ack`, which is valid JSON that
/// serde_json cannot read as a `Value`. Such a frame is checked for syntax
/// only, and recorded as `{"type":T,"unreadable":...}` (T its `type` if a
/// string, else null).
fn client_reads(f: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(f) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(v) => Err(format!("a frame that is not an object: {v}")),
        Err(e) if e.to_string().starts_with("number out of range") => {
            #[derive(serde::Deserialize)]
            struct Typed {
                #[serde(rename = "type")]
                kind: Option<String>,
            }
            let text = std::str::from_utf8(f).map_err(|e| format!("a frame that is not UTF-8 ({e})"))?;
            serde_json::from_str::<&serde_json::value::RawValue>(text)
                .map_err(|e| format!("a frame that is not JSON ({e})"))?;
            let t: Typed =
                serde_json::from_str(text).map_err(|e| format!("a frame that is not an object ({e})"))?;
            Ok(json!({"type": t.kind, "unreadable": text}))
        }
        Err(e) => Err(format!("a frame that is not JSON ({e})")),
    }
}

impl World {
    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn pick(&self, i: u8) -> Option<usize> {
        (!self.clients.is_empty()).then(|| usize::from(i) % self.clients.len())
    }

    fn id(&self, i: u8) -> Option<ClientId> {
        self.pick(i).map(|k| self.clients[k].id)
    }

    /// Does one step; false when the script must end (shutdown).
    fn apply(&mut self, op: &Op) -> bool {
        let now = self.now();
        match op {
            Op::Connect { ip } => {
                if self.clients.len() < MAX_CLIENTS {
                    let peer = SocketAddr::from((Ipv4Addr::new(127, 0, 0, ip % 4 + 1), 40000));
                    let id = self.core.connect(peer, now);
                    assert!(!self.by_id.contains_key(&id), "client id {id} reused");
                    self.by_id.insert(id, self.clients.len());
                    self.clients.push(Client {
                        id,
                        stalled: false,
                        stream: FrameDecoder::new(1 << 24),
                        nick: None,
                        disconnected: false,
                        reaped: false,
                        received: Vec::new(),
                        session: sessions::ClientSession::default(),
                    });
                }
            }
            Op::Send { client, msg, split } => {
                if let Some(k) = self.pick(*client) {
                    let id = self.clients[k].id;
                    let payload = self.client_payload(k, msg);
                    let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
                    wire.extend_from_slice(&payload);
                    let cut = usize::from(*split).min(wire.len());
                    self.core.receive(id, &wire[..cut], now);
                    self.core.receive(id, &wire[cut..], now);
                }
            }
            Op::Raw { client, bytes } => {
                if let Some(k) = self.pick(*client) {
                    self.clients[k].session.tainted = true;
                    self.core.receive(self.clients[k].id, bytes, now);
                }
            }
            Op::Advance { ms } => {
                self.elapsed += Duration::from_millis(u64::from(*ms));
                self.core.tick(self.now());
            }
            Op::Tick => self.core.tick(now),
            Op::Gone { client } => {
                if let Some(id) = self.id(*client) {
                    self.core.peer_gone(id, now);
                }
            }
            Op::Reap => {
                for id in self.core.reap(now) {
                    let k = self.by_id[&id];
                    self.drain_events();
                    let c = &mut self.clients[k];
                    assert!(
                        c.disconnected || c.session.parked || c.session.moved,
                        "client {id} reaped before its Disconnected event"
                    );
                    assert!(!c.reaped, "client {id} reaped twice");
                    // The server drops the socket at reap: whatever the core
                    // still held for it is gone with it.
                    c.reaped = true;
                }
            }
            Op::Stall { client, stalled } => {
                if let Some(k) = self.pick(*client) {
                    self.clients[k].stalled = *stalled;
                }
            }
            Op::HostSend { client, payload } => {
                if let Some(k) = self.pick(*client) {
                    let bytes = payload.bytes();
                    let id = self.clients[k].id;
                    self.drain_events();
                    let gone = self.clients[k].disconnected || self.clients[k].session.moved;
                    let res = self.core.send(id, &bytes, now);
                    if gone {
                        assert!(res.is_err(), "host send to closed client {id} accepted");
                    }
                    self.note_host(res.is_ok(), bytes);
                }
            }
            Op::HostBroadcast { payload } => {
                let bytes = payload.bytes();
                let res = self.core.broadcast(&bytes, now);
                self.note_host(res.is_ok(), bytes);
            }
            Op::HostRoomSend { room, payload } => {
                let bytes = payload.bytes();
                let name = ROOMS[usize::from(*room) % ROOMS.len()];
                let res = self.core.room_send(name, &bytes, now);
                self.note_host(res.is_ok(), bytes);
            }
            Op::HostRoomRemove { client, room } => {
                if let Some(id) = self.id(*client) {
                    let name = ROOMS[usize::from(*room) % ROOMS.len()];
                    let _ = self.core.room_remove(id, name, now);
                }
            }
            Op::Kick { client, message } => {
                if let Some(id) = self.id(*client) {
                    let _ = self.core.kick(id, message.as_deref(), now);
                }
            }
            Op::Approve { client } => {
                if let Some(id) = self.id(*client) {
                    let _ = self.core.approve(id, now);
                }
            }
            Op::Reject { client } => {
                if let Some(id) = self.id(*client) {
                    let _ = self.core.reject(id, Some("no"), now);
                }
            }
            Op::Release { ticket } => {
                if !self.tickets.is_empty() {
                    let t = self.tickets[usize::from(*ticket) % self.tickets.len()];
                    let _ = self.core.release(t, now);
                }
            }
            Op::DropHeld { ticket } => {
                if !self.tickets.is_empty() {
                    let t = self.tickets[usize::from(*ticket) % self.tickets.len()];
                    let _ = self.core.drop_held(t, "dropped", None, now);
                }
            }
            Op::HostNotice { client, text } => {
                if let Some(k) = self.pick(*client) {
                    let id = self.clients[k].id;
                    self.drain_events();
                    let gone = self.clients[k].disconnected || self.clients[k].session.moved;
                    let res = self.core.notice(id, text, now);
                    if gone {
                        assert!(res.is_err(), "host notice to closed client {id} accepted");
                    }
                }
            }
            Op::HostNoticeAll { text } => {
                let _ = self.core.notice_all(text, now);
            }
            Op::Shutdown => {
                self.core.shutdown(now, now + Duration::from_millis(100));
                return false;
            }
        }
        true
    }

    /// No other live session holds `nick` (case-insensitively).
    fn assert_nick_free(&self, k: usize, nick: &str) {
        let folded = nick.to_ascii_lowercase();
        for (j, other) in self.clients.iter().enumerate() {
            if j != k && !other.disconnected && !other.session.moved {
                let taken = other.nick.as_deref().map(str::to_ascii_lowercase);
                assert_ne!(taken.as_deref(), Some(&*folded), "nick {nick} registered twice");
            }
        }
    }

    fn note_host(&mut self, accepted: bool, bytes: Vec<u8>) {
        if accepted {
            self.host_sent.insert(bytes);
        }
    }

    /// Reads every event, checking them against what is known.
    fn drain_events(&mut self) {
        let events: Vec<_> = self.core.events().collect();
        for ev in events {
            let k = *self
                .by_id
                .get(&ev.client)
                .unwrap_or_else(|| panic!("event for unknown client {}: {ev:?}", ev.client));
            assert!(
                !self.clients[k].disconnected && !self.clients[k].session.moved,
                "event after Disconnected (or after its session moved) for client {}: {ev:?}",
                ev.client
            );
            self.sessions.check_step_event(&ev);
            match &ev.kind {
                EventKind::Registered => {
                    let nick = ev.nick.as_deref().expect("Registered without a nick").to_string();
                    self.assert_nick_free(k, &nick);
                    assert!(
                        self.clients[k].nick.is_none(),
                        "client {} registered twice",
                        ev.client
                    );
                    self.clients[k].nick = Some(nick);
                }
                EventKind::Message(m) => {
                    let v: Value = serde_json::from_slice(m.payload()).expect("routed frame is JSON");
                    let from = v["from"].as_str().expect("routed frame has a string from");
                    let sender = self.clients[k].nick.as_deref();
                    assert_eq!(
                        Some(from),
                        sender,
                        "routed frame {v} does not carry its sender's nick"
                    );
                    assert_eq!(ev.nick.as_deref(), sender, "Message event with the wrong nick");
                    self.routed.insert(m.payload().to_vec());
                }
                EventKind::Intercepted(h) => self.tickets.push(h.ticket),
                EventKind::Disconnected { .. } => {
                    self.session_ended(k);
                    self.clients[k].disconnected = true;
                }
                EventKind::Renamed { old } => self.renamed(k, old, ev.nick.as_deref()),
                EventKind::Parked { reason } => self.parked(k, *reason),
                EventKind::Resumed { previous } => self.resumed(k, *previous, ev.nick.as_deref()),
                _ => {}
            }
        }
    }

    /// Takes what one client's socket would take, checking every frame;
    /// returns what that was as the queue cap counts it (each payload plus
    /// `FRAME_OVERHEAD`, where the wire has its 4-byte length).
    fn deliver(&mut self, k: usize) -> usize {
        let mut out = Vec::new();
        let id = self.clients[k].id;
        let n = self.core.take_output(id, &mut out);
        assert_eq!(n, out.len());
        let c = &mut self.clients[k];
        c.stream.push(&out);
        let mut frames = Vec::new();
        loop {
            match c.stream.next_frame() {
                Ok(Some(f)) => frames.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => panic!("client {id} received a bad length prefix: {e:?}"),
            }
        }
        let count = frames.len();
        for f in frames {
            let v = client_reads(&f).unwrap_or_else(|e| panic!("client {id} got {e}: {f:?}"));
            let kind = match v.get("type").and_then(Value::as_str) {
                Some(kind) => kind,
                // Finding F2 is fixed: host payloads need a string type too.
                None => panic!("client {id} got a frame without a string type: {v}"),
            };
            if matches!(kind, "msg" | "all" | "room") {
                assert!(
                    self.routed.contains(&f) || self.host_sent.contains(&f),
                    "client {id} got a {kind} frame nobody routed under that sender: {v}"
                );
            }
            self.session_frame(k, &v);
            self.clients[k].received.push(v);
        }
        let counted = n - count * chat::frame::HEADER_LEN + count * chat::FRAME_OVERHEAD;
        let cap = self
            .sessions
            .queue_cap(&self.clients[k].session, self.max_queue_bytes);
        assert!(
            counted <= cap,
            "client {id} had {counted} bytes queued, over its cap of {cap}"
        );
        counted
    }

    fn check(&mut self, step: usize, op: &Op) {
        self.drain_events();
        let before = self.core.stats().queued_bytes;
        let mut taken = 0;
        for k in 0..self.clients.len() {
            if !self.clients[k].stalled && !self.clients[k].reaped {
                taken += self.deliver(k);
            }
        }
        let s = self.core.stats();
        assert_eq!(
            s.queued_bytes,
            before - taken as u64,
            "step {step} ({op:?}): queued_bytes does not match what was taken"
        );
        assert!(s.peak_queued_bytes >= s.queued_bytes);
        let open = self.clients.iter().filter(|c| !c.reaped).count() as u64;
        assert_eq!(s.clients, open, "step {step} ({op:?}): stats.clients");
        let registered = self
            .clients
            .iter()
            .filter(|c| c.nick.is_some() && !c.disconnected && !c.session.moved)
            .count() as u64;
        assert_eq!(s.registered, registered, "step {step} ({op:?}): stats.registered");
        let parked = self.clients.iter().filter(|c| c.session.parked).count() as u64;
        assert_eq!(s.parked, parked, "step {step} ({op:?}): stats.parked");
        self.sessions.end_step();
    }

    /// Every reader catches up: the queues empty exactly, and every stream
    /// ends on a frame boundary.
    fn finish(&mut self) {
        self.drain_events();
        let before = self.core.stats().queued_bytes;
        let mut taken = 0;
        for k in 0..self.clients.len() {
            if !self.clients[k].reaped {
                taken += self.deliver(k);
            }
        }
        assert_eq!(taken as u64, before, "queued_bytes is not what the queues held");
        assert_eq!(self.core.stats().queued_bytes, 0);
        for c in &self.clients {
            if !c.reaped {
                assert_eq!(c.stream.buffered(), 0, "client {} got a partial frame", c.id);
            }
        }
    }
}
