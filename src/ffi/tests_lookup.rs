//! Unit tests of the C ABI's 1.2 additions, called from Rust the way a C
//! host calls them: `ChatEvent.struct_size`, the lookups, and the log
//! callback (records routed to the server whose call made them).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::Write;
use std::mem::{align_of, offset_of, size_of};
use std::net::{SocketAddr, TcpStream};
use std::ptr;
use std::time::{Duration, Instant};

use super::event::{EVENT_MIN_SIZE, FIELD_ENDS};
use super::*;

const DEADLINE: Duration = Duration::from_secs(10);

fn text(p: *const c_char) -> Option<String> {
    // SAFETY: every pointer read here is NULL or a NUL-terminated string
    // from the library, alive for this test step.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string())
}

fn new_server() -> *mut ChatServer {
    let mut cfg = config::default_config();
    cfg.listen_addr = c"127.0.0.1:0".as_ptr();
    // SAFETY: `cfg` is a full ChatConfig whose address is a static string.
    let s = unsafe { chat_server_new(&cfg) };
    assert!(!s.is_null(), "chat_server_new: {:?}", text(chat_last_error()));
    s
}

fn free(s: *mut ChatServer) {
    // SAFETY: every test frees its own live server once, at its end.
    unsafe { chat_server_free(s) };
}

fn addr_of(s: *mut ChatServer) -> SocketAddr {
    // SAFETY: `s` is live.
    SocketAddr::from(([127, 0, 0, 1], unsafe { chat_server_port(s) }))
}

fn hello(s: *mut ChatServer, nick: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr_of(s)).unwrap();
    let json = format!(r#"{{"type":"hello","nick":"{nick}"}}"#);
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    c.write_all(&frame).unwrap();
    c
}

/// Pumps `s` until an event of `kind` comes; returns its client.
fn wait_for(s: *mut ChatServer, kind: u32) -> u64 {
    let end = Instant::now() + DEADLINE;
    loop {
        let mut ev = ChatEvent::new();
        // SAFETY: `s` is live, `ev` writable.
        if unsafe { chat_server_next_event(s, &mut ev) } == 1 {
            if ev.kind == kind {
                return ev.client;
            }
            continue;
        }
        assert!(Instant::now() < end, "no event {kind} before the deadline");
        // SAFETY: `s` is live.
        assert!(unsafe { chat_server_poll_once(s, 50) } >= 0);
    }
}

#[test]
fn field_ends_cover_the_whole_event() {
    let last = *FIELD_ENDS.iter().max().unwrap();
    assert_eq!(
        last.next_multiple_of(align_of::<ChatEvent>()),
        size_of::<ChatEvent>(),
        "a field was appended to ChatEvent but not to FIELD_ENDS"
    );
    assert_eq!(offset_of!(ChatEvent, struct_size), 0, "struct_size comes first");
    assert_eq!(EVENT_MIN_SIZE, offset_of!(ChatEvent, client) + 8);
}

#[test]
fn a_short_event_struct_gets_only_the_fields_it_covers() {
    let s = new_server();
    let _alice = hello(s, "alice");
    // Covers kind, client and peer; the nick field and on are the host's.
    let sentinel = 0x5a5a_5a5a_5a5a_5a5a_u64 as usize as *const c_char;
    let mut ev = ChatEvent {
        struct_size: (offset_of!(ChatEvent, nick) + 3) as u32,
        nick: sentinel,
        user_data: 77,
        ..ChatEvent::zeroed()
    };
    let end = Instant::now() + DEADLINE;
    // SAFETY: `s` live, `ev` writable.
    while unsafe { chat_server_next_event(s, &mut ev) } != 1 {
        assert!(Instant::now() < end);
        // SAFETY: `s` live.
        unsafe { chat_server_poll_once(s, 50) };
    }
    assert_eq!(ev.kind, CHAT_EVENT_CONNECTED);
    assert_ne!(ev.client, 0);
    assert!(text(ev.peer).unwrap().starts_with("127.0.0.1:"));
    assert_eq!(
        (ev.nick, ev.user_data),
        (sentinel, 77),
        "past struct_size: untouched"
    );
    assert_eq!(
        ev.struct_size as usize,
        offset_of!(ChatEvent, nick) + 3,
        "never written"
    );

    // Too short to hold the client: refused, and the event stays queued.
    for short in [0, 4, 8, EVENT_MIN_SIZE - 1] {
        let mut tiny = ChatEvent {
            struct_size: short as u32,
            kind: 99,
            ..ChatEvent::zeroed()
        };
        // SAFETY: as above.
        assert_eq!(unsafe { chat_server_next_event(s, &mut tiny) }, CHAT_ERR_INVALID);
        assert_eq!(tiny.kind, 99, "nothing written");
        assert!(text(chat_last_error())
            .unwrap()
            .starts_with("chat_server_next_event: "));
    }
    assert_eq!(
        wait_for(s, CHAT_EVENT_REGISTERED),
        ev.client,
        "the next event was kept"
    );
    free(s);
}

#[test]
fn lookups_find_clients_by_nick_in_any_case() {
    let s = new_server();
    let alice = hello(s, "Alice");
    let id = wait_for(s, CHAT_EVENT_REGISTERED);
    for nick in [c"Alice", c"alice", c"ALICE"] {
        // SAFETY: `s` live, `nick` a C string.
        assert_eq!(unsafe { chat_find_client(s, nick.as_ptr()) }, id as i64);
    }
    // SAFETY: as above.
    assert_eq!(
        unsafe { chat_find_client(s, c"bob".as_ptr()) },
        i64::from(CHAT_ERR_UNKNOWN_CLIENT)
    );
    assert_eq!(chat_last_error_code(), CHAT_ERR_UNKNOWN_CLIENT);
    // SAFETY: NULL is allowed.
    assert_eq!(
        unsafe { chat_find_client(s, ptr::null()) },
        i64::from(CHAT_ERR_NULL)
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { chat_find_client(ptr::null(), c"a".as_ptr()) },
        i64::from(CHAT_ERR_NULL)
    );
    // SAFETY: a C string that is not UTF-8.
    assert_eq!(
        unsafe { chat_find_client(s, c"\xff".as_ptr()) },
        i64::from(CHAT_ERR_UTF8)
    );

    // SAFETY: `s` live.
    assert_eq!(text(unsafe { chat_client_nick(s, id) }).as_deref(), Some("Alice"));
    let peer = alice.local_addr().unwrap().to_string();
    // SAFETY: `s` live.
    assert_eq!(text(unsafe { chat_client_peer(s, id) }), Some(peer));
    let local = addr_of(s).to_string();
    // SAFETY: `s` live.
    assert_eq!(text(unsafe { chat_server_local_addr(s) }), Some(local));
    // SAFETY: `s` live.
    assert_eq!(
        unsafe { chat_server_ws_addr(s) },
        ptr::null(),
        "no WebSocket listener"
    );

    for f in [chat_client_nick, chat_client_peer] {
        // SAFETY: `s` live; 999 is no client.
        assert_eq!(unsafe { f(s, 999) }, ptr::null());
        assert_eq!(chat_last_error_code(), CHAT_ERR_UNKNOWN_CLIENT);
        // SAFETY: NULL is allowed.
        assert_eq!(unsafe { f(ptr::null(), id) }, ptr::null());
        assert_eq!(chat_last_error_code(), CHAT_ERR_NULL);
    }

    // A client that has not sent hello has an address and no nick, which
    // is no error: the last error stays what it was.
    let _quiet = TcpStream::connect(addr_of(s)).unwrap();
    let quiet = wait_for(s, CHAT_EVENT_CONNECTED);
    // SAFETY: `s` live.
    unsafe { chat_server_wakeup(ptr::null_mut()) };
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_client_nick(s, quiet) }, ptr::null());
    assert_eq!(chat_last_error_code(), CHAT_ERR_NULL, "left alone");
    // SAFETY: `s` live.
    assert!(text(unsafe { chat_client_peer(s, quiet) }).is_some());

    // Gone: its nick is free, its id unknown.
    drop(alice);
    assert_eq!(wait_for(s, CHAT_EVENT_DISCONNECTED), id);
    // SAFETY: `s` live.
    assert!(unsafe { chat_find_client(s, c"alice".as_ptr()) } < 0);
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_client_nick(s, id) }, ptr::null());
    assert_eq!(chat_last_error_code(), CHAT_ERR_UNKNOWN_CLIENT);
    free(s);
}

/// What a test's callback saw: (level, message) per record, and the code
/// of a call it tried on a server from inside.
#[derive(Default)]
struct Seen {
    records: RefCell<Vec<(c_int, String)>>,
    reentry: RefCell<Option<(u16, c_int)>>,
    server: RefCell<Option<*mut ChatServer>>,
}

// SAFETY: an unsafe fn for the log callback type: the library calls it
// with the `user` a test gave and a NUL-terminated line.
unsafe extern "C" fn collect(user: *mut c_void, level: c_int, message: *const c_char) {
    // SAFETY: every test passes a `&Seen` that outlives its server.
    let seen = unsafe { &*user.cast::<Seen>() };
    let message = text(message).unwrap();
    seen.records.borrow_mut().push((level, message));
    if let Some(s) = *seen.server.borrow() {
        // SAFETY: `s` is live; the call must be refused, not run.
        let port = unsafe { chat_server_port(s) };
        *seen.reentry.borrow_mut() = Some((port, chat_last_error_code()));
    }
}

fn set_log(s: *mut ChatServer, level: c_int, seen: Option<&Seen>) -> c_int {
    let (f, user): (ChatLogFn, *mut c_void) = match seen {
        Some(seen) => (Some(collect), ptr::from_ref(seen).cast_mut().cast()),
        None => (None, ptr::null_mut()),
    };
    // SAFETY: `s` is live; `collect` takes the `&Seen` given as `user`.
    unsafe { chat_server_set_log(s, level, f, user) }
}

#[test]
fn log_records_go_to_the_server_whose_call_made_them() {
    let (a, b) = (new_server(), new_server());
    let (seen_a, seen_b) = (Seen::default(), Seen::default());
    assert_eq!(set_log(a, CHAT_LOG_DEBUG, Some(&seen_a)), CHAT_OK);
    assert_eq!(set_log(b, CHAT_LOG_INFO, Some(&seen_b)), CHAT_OK);
    let first = seen_a.records.borrow()[0].clone();
    assert_eq!(first.0, CHAT_LOG_INFO);
    assert!(first.1.contains(&addr_of(a).to_string()), "{first:?}");
    assert_eq!(seen_b.records.borrow().len(), 1, "b's own first record only");

    // A connection to a is a debug record of a's; b, at info, gets none.
    let c = TcpStream::connect(addr_of(a)).unwrap();
    let id = wait_for(a, CHAT_EVENT_CONNECTED);
    let want = format!("client {id} connected from {}", c.local_addr().unwrap());
    assert!(
        seen_a
            .records
            .borrow()
            .iter()
            .any(|(l, m)| *l == CHAT_LOG_DEBUG && *m == want),
        "{:?}",
        seen_a.records.borrow()
    );
    // SAFETY: `b` live.
    unsafe { chat_server_poll_once(b, 0) };
    assert_eq!(seen_b.records.borrow().len(), 1, "nothing of a's reaches b");

    // A call on the server from inside its callback is refused.
    *seen_a.server.borrow_mut() = Some(a);
    drop(c);
    assert_eq!(wait_for(a, CHAT_EVENT_DISCONNECTED), id);
    assert_eq!(*seen_a.reentry.borrow(), Some((0, CHAT_ERR_INVALID)));
    *seen_a.server.borrow_mut() = None;

    // Unset: nothing more arrives.
    assert_eq!(set_log(a, CHAT_LOG_OFF, Some(&seen_a)), CHAT_OK);
    let before = seen_a.records.borrow().len();
    let _c = TcpStream::connect(addr_of(a)).unwrap();
    wait_for(a, CHAT_EVENT_CONNECTED);
    assert_eq!(seen_a.records.borrow().len(), before);
    assert_eq!(set_log(a, CHAT_LOG_TRACE, None), CHAT_OK, "NULL turns it off too");

    assert_eq!(set_log(a, 6, Some(&seen_a)), CHAT_ERR_INVALID);
    assert_eq!(set_log(a, -1, Some(&seen_a)), CHAT_ERR_INVALID);
    assert_eq!(set_log(ptr::null_mut(), 3, Some(&seen_a)), CHAT_ERR_NULL);
    free(a);
    free(b);
}

#[test]
fn records_below_the_level_asked_for_are_not_seen() {
    let s = new_server();
    let seen = Seen::default();
    assert_eq!(set_log(s, CHAT_LOG_WARN, Some(&seen)), CHAT_OK);
    assert!(seen.records.borrow().is_empty(), "the listening record is info");
    let _c = TcpStream::connect(addr_of(s)).unwrap();
    wait_for(s, CHAT_EVENT_CONNECTED);
    assert!(seen.records.borrow().is_empty(), "connections are debug");
    free(s);
}
