//! Helpers shared by the wire-protocol tests (framing, session, leaving,
//! host API, backpressure): raw frames, error checks, ordering barriers and
//! condition waits. Everything waits on a condition with a deadline.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use chat::{ClientId, Config, Event, EventKind};
use nix::sys::socket::{setsockopt, sockopt};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::common::{loopback_config, Events, ServerThread, Wire, DEADLINE};

/// One frame on the wire: the big-endian length, then `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// `v` as one frame.
pub fn json_frame(v: &Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

/// A loopback config changed by `f`.
pub fn config_with(f: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = loopback_config();
    f(&mut cfg);
    cfg
}

/// The next frame's payload as the server wrote it, or `None` at EOF or
/// reset. Used where the exact bytes matter (`1.50` must stay `1.50`).
pub fn recv_raw(c: &mut impl Wire) -> Option<Vec<u8>> {
    c.try_recv_raw()
}

/// The top-level fields of a JSON object, each as the exact text it had.
pub fn raw_fields(payload: &[u8]) -> HashMap<String, Box<RawValue>> {
    serde_json::from_slice(payload).expect("a JSON object")
}

/// Asserts that `v` is `{"type":"error","code":code}`, allowing the
/// optional human-readable `message` (a string) the protocol permits.
pub fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["type"], "error", "expected error {code}, got {v}");
    assert_eq!(v["code"], code, "expected error {code}, got {v}");
    if let Some(m) = v.get("message") {
        assert!(m.is_string(), "message must be a string: {v}");
    }
}

/// Removes the optional `message` of an error frame, so the rest can be
/// compared exactly.
pub fn without_message(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("message");
    }
    v
}

/// Reads the next frame and asserts it is error `code`.
pub fn expect_error(c: &mut impl Wire, code: &str) -> Value {
    let v = c.recv();
    assert_error(&v, code);
    v
}

/// Asserts the server sends exactly error `code`, then closes.
pub fn expect_error_then_close(c: &mut impl Wire, code: &str) {
    let frames = c.expect_closed();
    assert_eq!(
        frames.len(),
        1,
        "expected only error {code} before EOF, got {frames:?}"
    );
    assert_error(&frames[0], code);
}

static SYNC_IDS: AtomicU64 = AtomicU64::new(1);

/// An ordering barrier: sends a `ping` and asserts the very next frame is
/// its `pong`. Because the server handles one client's frames in order and
/// never reorders its queue, this proves nothing else was queued for `c`
/// before the ping was handled (no echo, no stray error, no presence).
pub fn assert_nothing_pending(c: &mut impl Wire) {
    let id = format!("sync-{}", SYNC_IDS.fetch_add(1, Ordering::Relaxed));
    c.send(&json!({"type": "ping", "id": id}));
    assert_eq!(
        c.recv(),
        json!({"type": "pong", "id": id}),
        "a frame arrived before the pong"
    );
}

/// Proves the connection is open and registered: `from` messages `to`
/// (whose nick is `to_nick`), and `to` receives it.
pub fn assert_chat_works(from: &mut impl Wire, from_nick: &str, to: &mut impl Wire, to_nick: &str) {
    let text = format!("check-{}", SYNC_IDS.fetch_add(1, Ordering::Relaxed));
    from.send(&json!({"type": "msg", "to": to_nick, "text": text}));
    assert_eq!(
        to.recv(),
        json!({"type": "msg", "from": from_nick, "to": to_nick, "text": text})
    );
}

/// Waits until `cond` holds; panics at the deadline.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Waits until the server has read at least `n` bytes from clients in
/// total, so that a test knows a partial frame was really received (and
/// not merged with the next write).
pub fn wait_bytes_in(server: &ServerThread, n: u64) {
    wait_until(&format!("the server to read {n} bytes"), || {
        server.with(|s| s.stats().bytes_in) >= n
    });
}

/// The id of the client that registers as `nick` (skipping earlier events).
pub fn registered_id(server: &impl Events, nick: &str) -> ClientId {
    let nick = nick.to_string();
    server
        .event_until(move |e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some(&nick))
        .client
}

/// Takes events until `stop` matches one, returning all of them (the
/// matching one last).
pub fn events_until(server: &impl Events, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let ev = server.next_event();
        let done = stop(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// `{"type":"presence","nick":nick,"state":"offline","reason":reason}`.
pub fn offline(nick: &str, reason: &str) -> Value {
    json!({"type": "presence", "nick": nick, "state": "offline", "reason": reason})
}

/// `{"type":"presence","nick":nick,"state":"online"}`.
pub fn online(nick: &str) -> Value {
    json!({"type": "presence", "nick": nick, "state": "online"})
}

/// Closes `stream` with a TCP reset instead of a FIN: SO_LINGER on with a
/// zero timeout makes `close` abort the connection.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&stream, sockopt::Linger, &linger).expect("SO_LINGER");
    drop(stream);
}

/// How many messages each of several reader threads has received, for a
/// publisher that must stay within a window of the slowest: readers call
/// `advance`, the publisher waits in `wait_all`.
#[derive(Clone)]
pub struct Progress(Arc<(Mutex<Vec<usize>>, Condvar)>);

impl Progress {
    pub fn new(readers: usize) -> Progress {
        Progress(Arc::new((Mutex::new(vec![0; readers]), Condvar::new())))
    }

    /// Reader `index` has received `n` messages.
    pub fn advance(&self, index: usize, n: usize) {
        let (lock, cvar) = &*self.0;
        lock.lock().unwrap()[index] = n;
        cvar.notify_all();
    }

    /// Blocks until every reader has received at least `n` messages;
    /// panics at the deadline.
    pub fn wait_all(&self, n: usize) {
        let (lock, cvar) = &*self.0;
        let end = Instant::now() + DEADLINE;
        let mut got = lock.lock().unwrap();
        while got.iter().copied().min().unwrap() < n {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "readers stalled at {:?}, waiting for {n}", *got);
            got = cvar.wait_timeout(got, left).unwrap().0;
        }
    }
}
