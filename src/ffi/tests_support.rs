//! What the C ABI's unit tests share: a server made from a `ChatConfig`,
//! loopback clients, and events read the way a C host reads them.
use std::ffi::{c_char, CStr};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::event::CHAT_EVENT_JOINED;
use super::*;

pub(super) const DEADLINE: Duration = Duration::from_secs(10);

pub(super) fn text(p: *const c_char) -> Option<String> {
    // SAFETY: every pointer read here is NULL or a NUL-terminated string
    // from the library, alive for this test step.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string())
}

/// Checks that the call just made failed with `code` and said so in the
/// last error, naming `function`.
pub(super) fn assert_failed(got: i32, code: i32, function: &str) {
    assert_eq!(got, code, "last error: {:?}", text(chat_last_error()));
    assert_eq!(chat_last_error_code(), code);
    let msg = text(chat_last_error()).expect("a last error message");
    assert!(msg.starts_with(&format!("{function}: ")), "{msg}");
}

/// A server on a free loopback port, with `change` applied to the defaults.
pub(super) fn server_with(change: impl FnOnce(&mut ChatConfig)) -> *mut ChatServer {
    let mut cfg = config::default_config();
    cfg.listen_addr = c"127.0.0.1:0".as_ptr();
    change(&mut cfg);
    // SAFETY: `cfg` is a full ChatConfig whose address is a static string.
    let s = unsafe { chat_server_new(&cfg) };
    assert!(!s.is_null(), "chat_server_new: {:?}", text(chat_last_error()));
    s
}

pub(super) fn free(s: *mut ChatServer) {
    // SAFETY: every test frees its own live server once, at its end.
    unsafe { chat_server_free(s) };
}

/// A blocking framed-JSON client whose reads time out.
pub(super) struct Client(pub(super) TcpStream);

impl Client {
    pub(super) fn connect(s: *mut ChatServer) -> Client {
        // SAFETY: `s` is live.
        let port = unsafe { chat_server_port(s) };
        let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Client(stream)
    }

    pub(super) fn send(&mut self, v: Value) {
        let payload = v.to_string();
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(payload.as_bytes());
        self.0.write_all(&buf).unwrap();
    }

    pub(super) fn recv(&mut self) -> Value {
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).unwrap();
        let mut payload = vec![0; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut payload).unwrap();
        serde_json::from_slice(&payload).unwrap()
    }
}

/// What a test keeps of one event (its pointers die with the next call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) kind: u32,
    pub(super) client: u64,
    pub(super) nick: Option<String>,
    pub(super) room: Option<String>,
    pub(super) token: Option<String>,
    pub(super) ticket: u64,
    pub(super) payload: Option<Value>,
    pub(super) user_data: u64,
}

/// Pumps `s` until an event comes, and copies it out.
pub(super) fn next_seen(s: *mut ChatServer) -> Seen {
    let end = Instant::now() + DEADLINE;
    loop {
        let mut ev = ChatEvent::new();
        // SAFETY: `s` is live, `ev` is writable.
        let got = unsafe { chat_server_next_event(s, &mut ev) };
        assert!(got >= 0, "next_event: {:?}", text(chat_last_error()));
        if got == 1 {
            let payload = (!ev.payload.is_null()).then(|| {
                // SAFETY: a payload has payload_len readable bytes.
                let bytes = unsafe { std::slice::from_raw_parts(ev.payload, ev.payload_len) };
                serde_json::from_slice(bytes).unwrap()
            });
            return Seen {
                kind: ev.kind,
                client: ev.client,
                nick: text(ev.nick),
                room: text(ev.room),
                token: text(ev.token),
                ticket: ev.ticket,
                payload,
                user_data: ev.user_data,
            };
        }
        assert!(Instant::now() < end, "no event before the deadline");
        // SAFETY: `s` is live.
        assert!(unsafe { chat_server_poll_once(s, 100) } >= 0);
    }
}

/// Pumps until an event of `kind` comes, skipping others.
pub(super) fn next_of(s: *mut ChatServer, kind: u32) -> Seen {
    let end = Instant::now() + DEADLINE;
    loop {
        let ev = next_seen(s);
        if ev.kind == kind {
            return ev;
        }
        assert!(
            Instant::now() < end,
            "no event of kind {kind} before the deadline"
        );
    }
}

/// Writes queued output to the sockets.
pub(super) fn flush(s: *mut ChatServer) {
    // SAFETY: `s` is live.
    assert!(unsafe { chat_server_poll_once(s, 0) } >= 0);
}

/// Connects and registers `nick` on a server without approval; returns
/// the client and its id.
pub(super) fn registered(s: *mut ChatServer, nick: &str) -> (Client, u64) {
    let mut c = Client::connect(s);
    c.send(json!({"type":"hello","nick":nick}));
    let ev = next_of(s, CHAT_EVENT_REGISTERED);
    assert_eq!(ev.nick.as_deref(), Some(nick));
    assert_eq!(c.recv()["type"], "welcome");
    (c, ev.client)
}

/// Makes `c` join `room` and waits for the host's event.
pub(super) fn join(s: *mut ChatServer, c: &mut Client, id: u64, room: &str) {
    c.send(json!({"type":"join","room":room}));
    let ev = next_of(s, CHAT_EVENT_JOINED);
    assert_eq!(ev.client, id);
    // The room keeps the spelling of whoever made it.
    assert!(ev.room.unwrap().eq_ignore_ascii_case(room));
    // Presence frames may come first.
    let reply = (0..10).map(|_| c.recv()).find(|v| v["type"] == "joined");
    assert!(reply.is_some(), "no joined reply");
}

// ----- ChatConfig -----
