//! Unit tests of the C ABI, calling the exported functions from Rust the way
//! a C host would: raw pointers, codes, the last error.

use std::ffi::{c_char, CStr};
use std::io::{Read, Write};
use std::mem::size_of;
use std::net::{SocketAddr, TcpStream};
use std::ptr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::error::{self, ErrorCode, Failure, ALL_CODES};
use super::*;
use crate::{Config, Error, Reason};

const DEADLINE: Duration = Duration::from_secs(10);

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: every pointer checked here is a NUL-terminated string from the
    // library, alive for the length of the test step.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

fn last_error() -> (i32, String) {
    (chat_last_error_code(), text(chat_last_error()))
}

/// A server on a free loopback port.
fn new_server() -> *mut ChatServer {
    let mut cfg = config::default_config();
    cfg.listen_addr = c"127.0.0.1:0".as_ptr();
    // SAFETY: `cfg` is a full ChatConfig whose address is a static string.
    let s = unsafe { chat_server_new(&cfg) };
    assert!(!s.is_null(), "chat_server_new: {:?}", last_error());
    s
}

fn addr_of(s: *mut ChatServer) -> SocketAddr {
    // SAFETY: `s` is live.
    let port = unsafe { chat_server_port(s) };
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn send_frame(stream: &mut TcpStream, json: &str) {
    let mut buf = (json.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(json.as_bytes());
    stream.write_all(&buf).unwrap();
}

fn recv_frame(stream: &mut TcpStream) -> String {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload).unwrap();
    String::from_utf8(payload).unwrap()
}

/// What a test keeps of one event (the pointers die with the next call).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: u32,
    client: u64,
    peer: String,
    nick: Option<String>,
    payload: Option<String>,
    reason: Option<String>,
    recipients: u32,
}

/// Pumps `s` until an event comes, and copies it out.
fn next_seen(s: *mut ChatServer) -> Seen {
    let end = Instant::now() + DEADLINE;
    loop {
        let mut ev = ChatEvent::new();
        // SAFETY: `s` is live, `ev` is writable.
        let got = unsafe { chat_server_next_event(s, &mut ev) };
        assert!(got >= 0, "next_event: {:?}", last_error());
        if got == 1 {
            let opt = |p: *const c_char| (!p.is_null()).then(|| text(p));
            let payload = (!ev.payload.is_null()).then(|| {
                // SAFETY: a MESSAGE's payload has payload_len bytes and a NUL.
                let bytes = unsafe { std::slice::from_raw_parts(ev.payload, ev.payload_len + 1) };
                assert_eq!(bytes[ev.payload_len], 0, "payload is NUL-terminated");
                String::from_utf8(bytes[..ev.payload_len].to_vec()).unwrap()
            });
            return Seen {
                kind: ev.kind,
                client: ev.client,
                peer: text(ev.peer),
                nick: opt(ev.nick),
                payload,
                reason: opt(ev.reason),
                recipients: ev.recipients,
            };
        }
        assert!(Instant::now() < end, "no event before the deadline");
        // SAFETY: `s` is live.
        assert!(unsafe { chat_server_poll_once(s, 100) } >= 0);
    }
}

#[test]
fn every_code_has_its_own_message() {
    let unknown = text(chat_strerror(-1000));
    assert_eq!(unknown, "unknown error code");
    assert_eq!(text(chat_strerror(CHAT_OK)), "ok");
    assert_eq!(text(chat_strerror(1)), unknown);
    let mut seen = Vec::new();
    for code in ALL_CODES {
        let msg = text(chat_strerror(code.as_int()));
        assert!(!msg.is_empty() && msg != unknown, "{code:?} has no message");
        assert_eq!(msg, code.to_string(), "Display is the strerror text");
        assert!(code.as_int() < 0);
        assert_eq!(ErrorCode::from_int(code.as_int()), Some(code));
        seen.push((code.as_int(), msg));
    }
    let codes: Vec<i32> = seen.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        (-(ALL_CODES.len() as i32)..=-1).rev().collect::<Vec<_>>(),
        "codes are -1, -2, ... with no gap, none reused"
    );
    let mut msgs: Vec<&String> = seen.iter().map(|(_, m)| m).collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), ALL_CODES.len(), "messages are distinct");
}

#[test]
fn library_errors_map_to_their_codes() {
    let io = || std::io::Error::other("x");
    let cases = [
        (
            Error::Bind {
                addr: "127.0.0.1:1".parse().unwrap(),
                source: io(),
            },
            CHAT_ERR_BIND,
        ),
        (
            Error::FdTooHigh {
                fd: 2000,
                limit: 1024,
            },
            CHAT_ERR_FD_SETSIZE,
        ),
        (Error::InvalidConfig("x".into()), CHAT_ERR_CONFIG),
        (Error::UnknownClient(7), CHAT_ERR_UNKNOWN_CLIENT),
        (Error::NotJsonObject("x".into()), CHAT_ERR_NOT_JSON_OBJECT),
        (Error::PayloadTooLarge { len: 2, max: 1 }, CHAT_ERR_TOO_LARGE),
        (Error::ShuttingDown, CHAT_ERR_SHUTTING_DOWN),
        (Error::Io(io()), CHAT_ERR_IO),
    ];
    for (e, code) in cases {
        assert_eq!(error::code_of(&e).as_int(), code, "{e}");
    }
}

#[test]
fn a_panic_becomes_chat_err_panic_with_the_last_error_set() {
    let r = error::boundary("chat_test", error::as_int, || -> Result<i32, Failure> {
        panic!("boom");
    });
    assert_eq!(r, CHAT_ERR_PANIC);
    let (code, msg) = last_error();
    assert_eq!(code, CHAT_ERR_PANIC);
    assert!(msg.starts_with("chat_test: panic: boom"), "{msg}");
}

#[test]
fn success_leaves_the_last_error_and_failure_replaces_it() {
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { chat_server_wakeup(ptr::null_mut()) }, CHAT_ERR_NULL);
    assert_eq!(
        last_error(),
        (CHAT_ERR_NULL, "chat_server_wakeup: the server is NULL".into())
    );
    assert!(!chat_version().is_null());
    assert_eq!(chat_last_error_code(), CHAT_ERR_NULL);
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { chat_server_timeout_ms(ptr::null()) }, -1);
    assert_eq!(chat_last_error_code(), CHAT_ERR_NULL);
    let other_thread = std::thread::spawn(|| chat_last_error_code()).join().unwrap();
    assert_eq!(other_thread, CHAT_OK, "the last error is per thread");
}

#[test]
fn version_matches_the_package() {
    assert_eq!(text(chat_version()), env!("CARGO_PKG_VERSION"));
}

#[test]
fn reasons_are_the_protocol_words() {
    for r in Reason::ALL {
        assert_eq!(event::reason_text(r).to_str().unwrap(), r.as_str());
    }
}

#[test]
fn default_config_is_the_rust_default() {
    let mut cfg = ChatConfig {
        struct_size: 0,
        listen_addr: ptr::null(),
        max_clients: 1,
        max_frame_bytes: 1,
        max_queue_bytes: 1,
        idle_timeout_ms: 1,
        max_events: 1,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a writable ChatConfig.
    unsafe { chat_config_default(&mut cfg) };
    assert_eq!(cfg.struct_size as usize, size_of::<ChatConfig>());
    assert_eq!(
        text(cfg.listen_addr),
        config::DEFAULT_LISTEN_ADDR.to_str().unwrap()
    );
    // SAFETY: `cfg` is a full ChatConfig.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read, Config::default());
}

#[test]
fn config_fields_past_struct_size_are_not_read() {
    let mut cfg = ChatConfig {
        struct_size: std::mem::offset_of!(ChatConfig, max_clients) as u32,
        listen_addr: c"127.0.0.1:9".as_ptr(),
        max_clients: 0,
        max_frame_bytes: 0,
        max_queue_bytes: 0,
        idle_timeout_ms: 0,
        max_events: 0,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a full ChatConfig, struct_size shorter.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    let want = Config {
        listen_addr: "127.0.0.1:9".parse().unwrap(),
        ..Config::default()
    };
    assert_eq!(read, want);
    cfg.struct_size = 4;
    // SAFETY: as above.
    assert_eq!(unsafe { chat_server_new(&cfg) }, ptr::null_mut());
    assert_eq!(chat_last_error_code(), CHAT_ERR_INVALID);
}

#[test]
fn stats_fields_past_struct_size_are_not_written() {
    let s = new_server();
    let sentinel = 0xdead_beef;
    let mut st = ChatStats {
        struct_size: (std::mem::offset_of!(ChatStats, clients) + 8) as u32,
        clients: sentinel,
        registered: sentinel,
        disconnects_shutdown: sentinel,
        ..ChatStats::default()
    };
    // SAFETY: `s` is live, `st` writable.
    assert_eq!(unsafe { chat_server_stats(s, &mut st) }, CHAT_OK);
    assert_eq!(st.clients, 0);
    assert_eq!((st.registered, st.disconnects_shutdown), (sentinel, sentinel));
    st.struct_size = size_of::<ChatStats>() as u32;
    // SAFETY: as above.
    assert_eq!(unsafe { chat_server_stats(s, &mut st) }, CHAT_OK);
    assert_eq!((st.registered, st.disconnects_shutdown), (0, 0));
    st.struct_size = 8;
    // SAFETY: as above.
    assert_eq!(unsafe { chat_server_stats(s, &mut st) }, CHAT_ERR_INVALID);
    // SAFETY: `s` is live and not used again.
    unsafe { chat_server_free(s) };
}

#[test]
fn events_carry_their_fields_as_documented() {
    let s = new_server();
    let addr = addr_of(s);
    let mut a = TcpStream::connect(addr).unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    let peer = a.local_addr().unwrap().to_string();
    send_frame(&mut a, r#"{"type":"hello","nick":"alice"}"#);

    let connected = next_seen(s);
    assert_eq!(connected.kind, CHAT_EVENT_CONNECTED);
    assert_ne!(connected.client, 0);
    assert_eq!(connected.peer, peer);
    assert_eq!(
        (connected.nick, connected.payload, connected.reason),
        (None, None, None)
    );
    let id = connected.client;

    let registered = next_seen(s);
    assert_eq!(
        (registered.kind, registered.client, registered.nick.as_deref()),
        (CHAT_EVENT_REGISTERED, id, Some("alice"))
    );
    assert!(recv_frame(&mut a).contains("welcome"));

    send_frame(&mut a, r#"{"type":"all","text":"hi"}"#);
    let msg = next_seen(s);
    assert_eq!(
        (msg.kind, msg.nick.as_deref(), msg.recipients),
        (CHAT_EVENT_MESSAGE, Some("alice"), 0)
    );
    let payload: serde_json::Value = serde_json::from_str(msg.payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"type":"all","from":"alice","text":"hi"})
    );
    assert_eq!(msg.reason, None);

    let host_frame = br#"{"type":"note","n":1}"#;
    let (frame, len) = (host_frame.as_ptr(), host_frame.len());
    // SAFETY: `s` live, the frame is `len` readable bytes.
    assert_eq!(unsafe { chat_send(s, id, frame, len) }, CHAT_OK);
    // SAFETY: as above.
    assert_eq!(unsafe { chat_broadcast(s, frame, len) }, 1);
    // SAFETY: `s` live.
    assert!(unsafe { chat_server_poll_once(s, 0) } >= 0);
    assert_eq!(recv_frame(&mut a).as_bytes(), host_frame);
    assert_eq!(recv_frame(&mut a).as_bytes(), host_frame);

    drop(a);
    let gone = next_seen(s);
    assert_eq!(
        (
            gone.kind,
            gone.client,
            gone.nick.as_deref(),
            gone.reason.as_deref()
        ),
        (CHAT_EVENT_DISCONNECTED, id, Some("alice"), Some("disconnect"))
    );
    assert_eq!((gone.payload, gone.recipients), (None, 0));
    // SAFETY: `s` is live and not used again.
    unsafe { chat_server_free(s) };
}

#[test]
fn next_event_zeroes_its_output_even_when_nothing_waits() {
    let s = new_server();
    let mut ev = ChatEvent {
        kind: 9,
        client: 9,
        payload_len: 9,
        recipients: 9,
        ..ChatEvent::new()
    };
    // SAFETY: `s` live, `ev` writable.
    assert_eq!(unsafe { chat_server_next_event(s, &mut ev) }, 0);
    assert_eq!((ev.kind, ev.client, ev.payload_len, ev.recipients), (0, 0, 0, 0));
    // SAFETY: `s` is live and not used again.
    unsafe { chat_server_free(s) };
}

#[test]
fn fds_reports_the_full_count_and_fills_only_cap() {
    let s = new_server();
    // SAFETY: `s` live; NULL out with cap 0 is allowed.
    let n = unsafe { chat_server_fds(s, ptr::null_mut(), 0) };
    assert!(n >= 2, "listener and wake pipe, got {n}");
    let mut fds = vec![ChatPollFd { fd: -7, events: -7 }; n as usize + 1];
    // SAFETY: `fds` has room for cap = 1 entry.
    assert_eq!(unsafe { chat_server_fds(s, fds.as_mut_ptr(), 1) }, n);
    assert_ne!(fds[0].fd, -7);
    assert_eq!(fds[1].fd, -7, "nothing written past cap");
    // SAFETY: `fds` has room for n + 1 entries.
    assert_eq!(unsafe { chat_server_fds(s, fds.as_mut_ptr(), fds.len()) }, n);
    assert!(fds[..n as usize]
        .iter()
        .all(|f| f.fd >= 0 && f.events == CHAT_POLL_READ));
    // SAFETY: `s` live, NULL `out` with cap > 0.
    assert_eq!(unsafe { chat_server_fds(s, ptr::null_mut(), 4) }, CHAT_ERR_NULL);
    // SAFETY: `s` live.
    let timeout = unsafe { chat_server_timeout_ms(s) };
    assert_eq!(timeout, -1, "an idle server times nothing");
    // SAFETY: `s` is live and not used again.
    unsafe { chat_server_free(s) };
}

/// A handle moved to another thread, as a C host would share it.
struct SendPtr(*mut ChatServer);
// SAFETY: the tests share a handle across threads only as the header allows:
// one thread pumps, the other calls chat_server_wakeup.
unsafe impl Send for SendPtr {}

#[test]
fn wakeup_from_another_thread_ends_a_blocked_poll() {
    let s = new_server();
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let pumped = SendPtr(s);
    let pumper = std::thread::spawn(move || {
        let pumped = pumped;
        started_tx.send(()).unwrap();
        // SAFETY: this thread is the only one pumping; the main thread only
        // calls chat_server_wakeup and frees after the join.
        let r = unsafe { chat_server_poll_once(pumped.0, -1) };
        done_tx.send(r).unwrap();
    });
    started.recv_timeout(DEADLINE).unwrap();
    // Many wakeups while the other thread is (or is about to be) inside
    // select(): each must be harmless, and one is enough to end the wait.
    for _ in 0..1000 {
        // SAFETY: `s` is live until after the join below.
        assert_eq!(unsafe { chat_server_wakeup(s) }, CHAT_OK);
    }
    let r = done
        .recv_timeout(DEADLINE)
        .expect("poll_once(-1) returned after chat_server_wakeup");
    assert!(r >= 0);
    pumper.join().unwrap();
    // SAFETY: the pumper has ended; `s` is not used again.
    unsafe { chat_server_free(s) };
}

#[test]
fn free_of_null_does_nothing() {
    // SAFETY: NULL is allowed.
    unsafe { chat_server_free(ptr::null_mut()) };
}
