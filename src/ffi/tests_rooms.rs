//! Unit tests of the rooms and authority functions of the C ABI and of the
//! `ChatConfig` fields that turn them on, called from Rust the way a C host
//! calls them: raw pointers, codes, the last error.

use std::ffi::{c_char, CStr};
use std::io::{Read, Write};
use std::mem::{offset_of, size_of};
use std::net::{SocketAddr, TcpStream};
use std::ptr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::error::{
    CHAT_ERR_NOT_IN_ROOM, CHAT_ERR_NOT_PENDING, CHAT_ERR_UNKNOWN_ROOM, CHAT_ERR_UNKNOWN_TICKET,
};
use super::event::{CHAT_EVENT_APPROVAL, CHAT_EVENT_INTERCEPTED, CHAT_EVENT_JOINED, CHAT_EVENT_PARTED};
use super::*;
use crate::Config;

const DEADLINE: Duration = Duration::from_secs(10);

fn text(p: *const c_char) -> Option<String> {
    // SAFETY: every pointer read here is NULL or a NUL-terminated string
    // from the library, alive for this test step.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string())
}

/// Checks that the call just made failed with `code` and said so in the
/// last error, naming `function`.
fn assert_failed(got: i32, code: i32, function: &str) {
    assert_eq!(got, code, "last error: {:?}", text(chat_last_error()));
    assert_eq!(chat_last_error_code(), code);
    let msg = text(chat_last_error()).expect("a last error message");
    assert!(msg.starts_with(&format!("{function}: ")), "{msg}");
}

/// A server on a free loopback port, with `change` applied to the defaults.
fn server_with(change: impl FnOnce(&mut ChatConfig)) -> *mut ChatServer {
    let mut cfg = config::default_config();
    cfg.listen_addr = c"127.0.0.1:0".as_ptr();
    change(&mut cfg);
    // SAFETY: `cfg` is a full ChatConfig whose address is a static string.
    let s = unsafe { chat_server_new(&cfg) };
    assert!(!s.is_null(), "chat_server_new: {:?}", text(chat_last_error()));
    s
}

fn free(s: *mut ChatServer) {
    // SAFETY: every test frees its own live server once, at its end.
    unsafe { chat_server_free(s) };
}

/// A blocking framed-JSON client whose reads time out.
struct Client(TcpStream);

impl Client {
    fn connect(s: *mut ChatServer) -> Client {
        // SAFETY: `s` is live.
        let port = unsafe { chat_server_port(s) };
        let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Client(stream)
    }

    fn send(&mut self, v: Value) {
        let payload = v.to_string();
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(payload.as_bytes());
        self.0.write_all(&buf).unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).unwrap();
        let mut payload = vec![0; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut payload).unwrap();
        serde_json::from_slice(&payload).unwrap()
    }
}

/// What a test keeps of one event (its pointers die with the next call).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: u32,
    client: u64,
    nick: Option<String>,
    room: Option<String>,
    token: Option<String>,
    ticket: u64,
    payload: Option<Value>,
    user_data: u64,
}

/// Pumps `s` until an event comes, and copies it out.
fn next_seen(s: *mut ChatServer) -> Seen {
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
fn next_of(s: *mut ChatServer, kind: u32) -> Seen {
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
fn flush(s: *mut ChatServer) {
    // SAFETY: `s` is live.
    assert!(unsafe { chat_server_poll_once(s, 0) } >= 0);
}

/// Connects and registers `nick` on a server without approval; returns
/// the client and its id.
fn registered(s: *mut ChatServer, nick: &str) -> (Client, u64) {
    let mut c = Client::connect(s);
    c.send(json!({"type":"hello","nick":nick}));
    let ev = next_of(s, CHAT_EVENT_REGISTERED);
    assert_eq!(ev.nick.as_deref(), Some(nick));
    assert_eq!(c.recv()["type"], "welcome");
    (c, ev.client)
}

/// Makes `c` join `room` and waits for the host's event.
fn join(s: *mut ChatServer, c: &mut Client, id: u64, room: &str) {
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

#[test]
fn default_config_fills_the_new_fields_with_the_rust_defaults() {
    let mut cfg = ChatConfig {
        handshake_timeout_ms: 7,
        max_per_ip: 7,
        rate_limit_frames: 7,
        rate_limit_grace_ms: 7,
        rate_limit_bytes: 7,
        max_rooms_per_client: 7,
        max_members_per_room: 7,
        max_rooms: 7,
        approve_registrations: 7,
        approval_timeout_ms: 7,
        intercept_messages: 7,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a writable ChatConfig.
    unsafe { chat_config_default(&mut cfg) };
    assert_eq!(cfg.handshake_timeout_ms, 30_000);
    assert_eq!(
        (cfg.max_per_ip, cfg.rate_limit_frames, cfg.rate_limit_bytes),
        (0, 0, 0)
    );
    assert_eq!(cfg.rate_limit_grace_ms, 10_000);
    assert_eq!(
        (cfg.max_rooms_per_client, cfg.max_members_per_room, cfg.max_rooms),
        (32, 1024, 1024)
    );
    assert_eq!(
        (
            cfg.approve_registrations,
            cfg.approval_timeout_ms,
            cfg.intercept_messages
        ),
        (0, 10_000, 0)
    );
    // SAFETY: `cfg` is a full ChatConfig.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read, Config::default(), "the defaults survive the round trip");
}

#[test]
fn new_config_fields_reach_the_server_config() {
    let mut cfg = ChatConfig {
        handshake_timeout_ms: 0,
        max_per_ip: 3,
        rate_limit_frames: 50,
        rate_limit_grace_ms: 0,
        rate_limit_bytes: 1 << 40,
        max_rooms_per_client: 2,
        max_members_per_room: 5,
        max_rooms: 0,
        approve_registrations: 1,
        approval_timeout_ms: 1500,
        intercept_messages: 1,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a full ChatConfig.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    let want = Config {
        handshake_timeout: None,
        max_per_ip: Some(3),
        rate_limit_frames: Some(50),
        rate_limit_grace: Duration::ZERO,
        rate_limit_bytes: Some(1 << 40),
        max_rooms_per_client: 2,
        max_members_per_room: 5,
        max_rooms: 0,
        approve_registrations: true,
        approval_timeout: Duration::from_millis(1500),
        intercept_messages: true,
        ..Config::default()
    };
    assert_eq!(read, want);
    cfg.handshake_timeout_ms = 250;
    cfg.max_per_ip = 0;
    cfg.rate_limit_frames = 0;
    cfg.rate_limit_bytes = 0;
    // SAFETY: as above.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read.handshake_timeout, Some(Duration::from_millis(250)));
    assert_eq!(
        (read.max_per_ip, read.rate_limit_frames, read.rate_limit_bytes),
        (None, None, None),
        "0 turns a limit off"
    );
}

#[test]
fn bad_flags_and_a_zero_approval_timeout_are_config_errors() {
    type Change = fn(&mut ChatConfig);
    let cases: [(&str, Change); 3] = [
        ("approve_registrations", |c| c.approve_registrations = 2),
        ("intercept_messages", |c| c.intercept_messages = u32::MAX),
        ("approval_timeout_ms", |c| c.approval_timeout_ms = 0),
    ];
    for (what, change) in cases {
        let mut cfg = config::default_config();
        cfg.listen_addr = c"127.0.0.1:0".as_ptr();
        change(&mut cfg);
        // SAFETY: `cfg` is a full ChatConfig.
        let s = unsafe { chat_server_new(&cfg) };
        assert!(s.is_null(), "{what}");
        assert_eq!(chat_last_error_code(), CHAT_ERR_CONFIG, "{what}");
        assert!(text(chat_last_error()).unwrap().contains(what), "{what}");
    }
}

#[test]
fn a_config_ending_at_max_events_takes_defaults_for_the_rest() {
    let mut cfg = ChatConfig {
        struct_size: (offset_of!(ChatConfig, max_events) + size_of::<u32>()) as u32,
        listen_addr: c"127.0.0.1:0".as_ptr(),
        max_rooms: 1,
        approve_registrations: 9,
        approval_timeout_ms: 0,
        intercept_messages: 9,
        rate_limit_bytes: 1,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a full ChatConfig, struct_size shorter.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    let want = Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    assert_eq!(read, want, "nothing past max_events was read");
    // Covering half of the new fields: those are read, the rest default.
    cfg.struct_size = offset_of!(ChatConfig, max_rooms) as u32;
    cfg.rate_limit_bytes = 99;
    // SAFETY: as above.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read.rate_limit_bytes, Some(99));
    assert_eq!(read.max_rooms, Config::default().max_rooms);
    assert!(!read.approve_registrations);
}

// ----- rooms -----

#[test]
fn room_send_members_and_remove() {
    let s = server_with(|_| ());
    let (mut a, a_id) = registered(s, "ann");
    let (mut b, b_id) = registered(s, "ben");
    let (mut c, _) = registered(s, "cid");
    assert_eq!(a.recv()["state"], "online");
    assert_eq!(a.recv()["state"], "online");
    assert_eq!(b.recv()["state"], "online");
    join(s, &mut a, a_id, "#Rust");
    join(s, &mut b, b_id, "#rust");
    assert_eq!(a.recv()["state"], "joined");

    // Members, in joining order; the name compares case-insensitively.
    // SAFETY: `s` live; NULL out with cap 0 is allowed.
    let got = unsafe { chat_room_members(s, c"#RUST".as_ptr(), ptr::null_mut(), 0) };
    assert_eq!(got, 2);
    let mut ids = [7u64; 3];
    // SAFETY: `ids` has room for cap = 1 entry.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 1) };
    assert_eq!(got, 2);
    assert_eq!(ids, [a_id, 7, 7], "nothing written past cap");
    // SAFETY: `ids` has room for 3 entries.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 3) };
    assert_eq!(got, 2);
    assert_eq!(ids, [a_id, b_id, 7]);

    // The host's frame reaches the members only, exactly as given.
    let frame = br##"{"type":"room","room":"#Rust","from":"host","text":"hi"}"##;
    // SAFETY: `s` live, the frame is `len` readable bytes.
    let n = unsafe { chat_room_send(s, c"#rust".as_ptr(), frame.as_ptr(), frame.len()) };
    assert_eq!(n, 2);
    // SAFETY: as above.
    assert_eq!(unsafe { chat_broadcast(s, br#"{"type":"x"}"#.as_ptr(), 12) }, 3);
    flush(s);
    let want: Value = serde_json::from_slice(frame).unwrap();
    for member in [&mut a, &mut b] {
        assert_eq!(member.recv(), want);
        assert_eq!(member.recv(), json!({"type":"x"}));
    }
    assert_eq!(
        c.recv(),
        json!({"type":"x"}),
        "a non-member gets only the broadcast"
    );

    // Removing: the client is told, the others see it part, an event follows.
    // SAFETY: `s` live, the name a static string.
    assert_eq!(unsafe { chat_room_remove(s, b_id, c"#RUST".as_ptr()) }, CHAT_OK);
    let parted = next_of(s, CHAT_EVENT_PARTED);
    assert_eq!(
        (parted.client, parted.nick.as_deref(), parted.room.as_deref()),
        (b_id, Some("ben"), Some("#Rust"))
    );
    flush(s);
    assert_eq!(b.recv(), json!({"type":"parted","room":"#Rust"}));
    assert_eq!(
        a.recv(),
        json!({"type":"presence","nick":"ben","room":"#Rust","state":"parted"})
    );
    // SAFETY: as above.
    let again = unsafe { chat_room_remove(s, b_id, c"#rust".as_ptr()) };
    assert_failed(again, CHAT_ERR_NOT_IN_ROOM, "chat_room_remove");
    // SAFETY: as above.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 3) };
    assert_eq!(got, 1);

    // The last member removed: the room is gone.
    // SAFETY: as above.
    assert_eq!(unsafe { chat_room_remove(s, a_id, c"#rust".as_ptr()) }, CHAT_OK);
    // SAFETY: as above.
    let gone = unsafe { chat_room_members(s, c"#rust".as_ptr(), ptr::null_mut(), 0) };
    assert_failed(gone, CHAT_ERR_UNKNOWN_ROOM, "chat_room_members");
    // SAFETY: as above.
    let gone = unsafe { chat_room_send(s, c"#rust".as_ptr(), frame.as_ptr(), frame.len()) };
    assert_failed(gone, CHAT_ERR_UNKNOWN_ROOM, "chat_room_send");
    free(s);
}

#[test]
fn room_calls_name_each_error() {
    let s = server_with(|_| ());
    let (mut a, a_id) = registered(s, "ann");
    let (_b, b_id) = registered(s, "ben");
    join(s, &mut a, a_id, "#r");
    let ok = br#"{"type":"note"}"#;
    let room = c"#r".as_ptr();
    let bad_utf8 = c"\xff#".as_ptr();
    let mut ids = [0u64; 2];

    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated, buffers have the lengths given.
    unsafe {
        assert_failed(
            chat_room_send(ptr::null_mut(), room, ok.as_ptr(), ok.len()),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, ptr::null(), ok.as_ptr(), ok.len()),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, room, ptr::null(), 0),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, bad_utf8, ok.as_ptr(), ok.len()),
            CHAT_ERR_UTF8,
            "chat_room_send",
        );
        for not_object in [&b"[1]"[..], b"\"x\"", b"", b"{\"a\":", b"{} {}"] {
            assert_failed(
                chat_room_send(s, room, not_object.as_ptr(), not_object.len()),
                CHAT_ERR_NOT_JSON_OBJECT,
                "chat_room_send",
            );
        }
        let mut big = br#"{"a":""#.to_vec();
        big.resize(65536, b'x');
        big.extend_from_slice(b"\"}");
        assert_failed(
            chat_room_send(s, room, big.as_ptr(), big.len()),
            CHAT_ERR_TOO_LARGE,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, c"#nowhere".as_ptr(), ok.as_ptr(), ok.len()),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_send",
        );

        assert_failed(
            chat_room_members(ptr::null(), room, ids.as_mut_ptr(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, ptr::null(), ids.as_mut_ptr(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, room, ptr::null_mut(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, bad_utf8, ids.as_mut_ptr(), 2),
            CHAT_ERR_UTF8,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, c"#nowhere".as_ptr(), ids.as_mut_ptr(), 2),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_members",
        );

        assert_failed(
            chat_room_remove(ptr::null_mut(), a_id, room),
            CHAT_ERR_NULL,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, ptr::null()),
            CHAT_ERR_NULL,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, bad_utf8),
            CHAT_ERR_UTF8,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, 999_999, room),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, c"#nowhere".as_ptr()),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, b_id, room),
            CHAT_ERR_NOT_IN_ROOM,
            "chat_room_remove",
        );
    }
    // SAFETY: `s` live, `ids` has 2 entries.
    assert_eq!(unsafe { chat_room_members(s, room, ids.as_mut_ptr(), 2) }, 1);
    assert_eq!(ids[0], a_id, "the failed calls changed nothing");
    free(s);
}

// ----- approval -----

#[test]
fn approve_and_reject_with_user_data() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann","token":"s3cret"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!(
        (asked.nick.as_deref(), asked.token.as_deref(), asked.user_data),
        (Some("ann"), Some("s3cret"), 0)
    );
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_set_user_data(s, asked.client, 41) }, CHAT_OK);
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_approve(s, asked.client) }, CHAT_OK);
    let reg = next_of(s, CHAT_EVENT_REGISTERED);
    assert_eq!((reg.client, reg.user_data), (asked.client, 41));
    flush(s);
    assert_eq!(a.recv()["type"], "welcome");
    // SAFETY: `s` live.
    let twice = unsafe { chat_approve(s, asked.client) };
    assert_failed(twice, CHAT_ERR_NOT_PENDING, "chat_approve");
    // SAFETY: `s` live.
    let late = unsafe { chat_reject(s, asked.client, ptr::null()) };
    assert_failed(late, CHAT_ERR_NOT_PENDING, "chat_reject");

    // A hello without a token, rejected with a message, then without one.
    let mut b = Client::connect(s);
    b.send(json!({"type":"hello","nick":"ben"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!((asked.nick.as_deref(), asked.token), (Some("ben"), None));
    // SAFETY: `s` live, the message a static string.
    let got = unsafe { chat_reject(s, asked.client, c"unknown token".as_ptr()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(
        b.recv(),
        json!({"type":"error","code":"rejected","message":"unknown token"})
    );
    b.send(json!({"type":"hello","nick":"ben","token":"x"}));
    let again = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!((again.client, again.token.as_deref()), (asked.client, Some("x")));
    // SAFETY: `s` live; a NULL message is allowed.
    assert_eq!(unsafe { chat_reject(s, again.client, ptr::null()) }, CHAT_OK);
    flush(s);
    assert_eq!(b.recv(), json!({"type":"error","code":"rejected"}));

    // User data is in every later event, the disconnect included.
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_set_user_data(s, again.client, u64::MAX) }, CHAT_OK);
    drop(b);
    let gone = next_of(s, CHAT_EVENT_DISCONNECTED);
    assert_eq!((gone.client, gone.user_data), (again.client, u64::MAX));
    // SAFETY: `s` live.
    let after = unsafe { chat_set_user_data(s, again.client, 1) };
    assert_failed(after, CHAT_ERR_UNKNOWN_CLIENT, "chat_set_user_data");
    free(s);
}

#[test]
fn approval_calls_name_each_error() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    let id = asked.client;
    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated.
    unsafe {
        assert_failed(chat_approve(ptr::null_mut(), id), CHAT_ERR_NULL, "chat_approve");
        assert_failed(chat_approve(s, 999_999), CHAT_ERR_UNKNOWN_CLIENT, "chat_approve");
        assert_failed(chat_approve(s, 0), CHAT_ERR_UNKNOWN_CLIENT, "chat_approve");
        assert_failed(
            chat_reject(ptr::null_mut(), id, ptr::null()),
            CHAT_ERR_NULL,
            "chat_reject",
        );
        assert_failed(
            chat_reject(s, 999_999, ptr::null()),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_reject",
        );
        assert_failed(chat_reject(s, id, c"\xfe".as_ptr()), CHAT_ERR_UTF8, "chat_reject");
        assert_failed(
            chat_set_user_data(ptr::null_mut(), id, 1),
            CHAT_ERR_NULL,
            "chat_set_user_data",
        );
        assert_failed(
            chat_set_user_data(s, 999_999, 1),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_set_user_data",
        );
        // The failures above left the client waiting.
        assert_eq!(chat_approve(s, id), CHAT_OK);
    }
    flush(s);
    assert_eq!(a.recv()["type"], "welcome");

    // Without approval on, nobody is ever pending.
    let plain = server_with(|_| ());
    let (_c, c_id) = registered(plain, "cid");
    // SAFETY: `plain` live.
    let r = unsafe { chat_approve(plain, c_id) };
    assert_failed(r, CHAT_ERR_NOT_PENDING, "chat_approve");
    free(plain);
    free(s);
}

// ----- interception -----

#[test]
fn release_and_drop_held_messages() {
    let s = server_with(|c| c.intercept_messages = 1);
    let (mut a, a_id) = registered(s, "ann");
    let (mut b, _) = registered(s, "ben");
    assert_eq!(a.recv()["state"], "online");

    a.send(json!({"type":"msg","to":"ben","text":"one"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    assert_eq!((held.client, held.nick.as_deref()), (a_id, Some("ann")));
    assert_ne!(held.ticket, 0);
    assert_eq!(
        held.payload,
        Some(json!({"type":"msg","to":"ben","text":"one"})),
        "the JSON as the client sent it"
    );
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_release(s, held.ticket) }, CHAT_OK);
    flush(s);
    assert_eq!(
        b.recv(),
        json!({"type":"msg","from":"ann","to":"ben","text":"one"})
    );
    // SAFETY: `s` live.
    let twice = unsafe { chat_release(s, held.ticket) };
    assert_failed(twice, CHAT_ERR_UNKNOWN_TICKET, "chat_release");

    // Dropped with the default code and a message, then with the host's own.
    a.send(json!({"type":"all","text":"two"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    // SAFETY: `s` live, the message a static string.
    let got = unsafe { chat_drop(s, held.ticket, ptr::null(), c"not here".as_ptr()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(
        a.recv(),
        json!({"type":"error","code":"dropped","message":"not here"})
    );
    a.send(json!({"type":"all","text":"three"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    // SAFETY: `s` live, the code a static string; a NULL message is allowed.
    let got = unsafe { chat_drop(s, held.ticket, c"moderated".as_ptr(), ptr::null()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(a.recv(), json!({"type":"error","code":"moderated"}));
    // SAFETY: `s` live.
    let twice = unsafe { chat_drop(s, held.ticket, ptr::null(), ptr::null()) };
    assert_failed(twice, CHAT_ERR_UNKNOWN_TICKET, "chat_drop");

    // Errors; the held message survives every failed call.
    a.send(json!({"type":"all","text":"four"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    let t = held.ticket;
    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated.
    unsafe {
        assert_failed(chat_release(ptr::null_mut(), t), CHAT_ERR_NULL, "chat_release");
        assert_failed(chat_release(s, t + 1000), CHAT_ERR_UNKNOWN_TICKET, "chat_release");
        assert_failed(chat_release(s, 0), CHAT_ERR_UNKNOWN_TICKET, "chat_release");
        assert_failed(
            chat_drop(ptr::null_mut(), t, ptr::null(), ptr::null()),
            CHAT_ERR_NULL,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t + 1000, ptr::null(), ptr::null()),
            CHAT_ERR_UNKNOWN_TICKET,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, c"".as_ptr(), ptr::null()),
            CHAT_ERR_INVALID,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, c"\xff".as_ptr(), ptr::null()),
            CHAT_ERR_UTF8,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, ptr::null(), c"\xff".as_ptr()),
            CHAT_ERR_UTF8,
            "chat_drop",
        );
        assert_eq!(chat_release(s, t), CHAT_OK);
    }
    flush(s);
    assert_eq!(b.recv(), json!({"type":"all","from":"ann","text":"four"}));
    free(s);
}

#[test]
fn calls_that_give_new_work_are_refused_once_shutdown_began() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann"}));
    let id = next_of(s, CHAT_EVENT_APPROVAL).client;
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_server_shutdown(s, 1000) }, 0);
    let ok = br#"{"type":"note"}"#;
    // SAFETY: in every call below, `s` is live and strings are static.
    unsafe {
        assert_failed(chat_approve(s, id), CHAT_ERR_SHUTTING_DOWN, "chat_approve");
        assert_failed(
            chat_reject(s, id, ptr::null()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_reject",
        );
        assert_failed(chat_release(s, 1), CHAT_ERR_SHUTTING_DOWN, "chat_release");
        assert_failed(
            chat_drop(s, 1, ptr::null(), ptr::null()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_drop",
        );
        assert_failed(
            chat_room_send(s, c"#r".as_ptr(), ok.as_ptr(), ok.len()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_room_send",
        );
        assert_failed(
            chat_room_remove(s, id, c"#r".as_ptr()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_room_remove",
        );
    }
    free(s);
}
