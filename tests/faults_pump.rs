//! Faults around the pump: `SO_KEEPALIVE` on accepted sockets, a host that
//! stops taking events, a registered client trickling one frame past the
//! idle timeout, and signals interrupting select(). Loopback only, bounded.
//!
//! This file is its own test process: the `SIGUSR1` handler installed by the
//! `EINTR` test stays within it.

mod common;
mod support_a;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat::{Event, EventKind, Reason, Server};
use common::*;
use nix::sys::socket::{self, sockopt, SockaddrIn};
use serde_json::{json, Value};
use support_a::*;

// ----- 3. SO_KEEPALIVE on accepted sockets -----

/// The server side of `client`'s connection, among this process's
/// descriptors: the socket whose local address is the server's and whose
/// peer is the client.
fn server_side_fd(server: SocketAddr, client: &TcpStream) -> RawFd {
    let (SocketAddr::V4(server), SocketAddr::V4(client)) = (server, client.local_addr().unwrap()) else {
        panic!("IPv4 loopback expected")
    };
    let found: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| {
            // getsockname/getpeername on a descriptor number that is not a
            // socket (or was closed meanwhile) just fail.
            let here = socket::getsockname::<SockaddrIn>(fd).map(SocketAddrV4::from);
            let there = socket::getpeername::<SockaddrIn>(fd).map(SocketAddrV4::from);
            here == Ok(server) && there == Ok(client)
        })
        .collect();
    assert_eq!(found.len(), 1, "server side of {client}: {found:?}");
    found[0]
}

#[test]
fn accepted_sockets_have_so_keepalive_and_tcp_nodelay() {
    let server = ServerThread::default();
    let client = TestClient::hello(server.addr, "alice");
    let fd = server_side_fd(server.addr, &client.stream);
    // SAFETY: `fd` is the server's socket for `client`, found just now by
    // its addresses; the server thread keeps it open until `client` leaves,
    // and `client` lives until the end of this test, past this borrow.
    let accepted = unsafe { BorrowedFd::borrow_raw(fd) };
    assert!(socket::getsockopt(&accepted, sockopt::KeepAlive).unwrap());
    assert!(socket::getsockopt(&accepted, sockopt::TcpNoDelay).unwrap());
    // The check can fail: a socket nobody tuned has keepalive off.
    assert!(!socket::getsockopt(&client.stream, sockopt::KeepAlive).unwrap());
}

// ----- 4. a host that stops taking events -----

/// Pumps `server` (taking events into `seen`) until `done(seen)`.
fn pump_taking_events(
    server: &mut Server,
    seen: &mut Vec<Event>,
    what: &str,
    done: impl Fn(&[Event]) -> bool,
) {
    let end = Instant::now() + DEADLINE;
    while !done(seen) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        server
            .poll_once(Some(Duration::from_millis(50)))
            .expect("poll_once");
        seen.extend(server.events());
    }
}

fn registered_count(seen: &[Event]) -> usize {
    seen.iter()
        .filter(|e| matches!(e.kind, EventKind::Registered))
        .count()
}

/// Sender and number of a backlog message (`s1 000042 xxx...`).
fn backlog_seq(text: &str) -> (String, usize) {
    let mut parts = text.split(' ');
    let sender = parts.next().unwrap().to_string();
    (sender, parts.next().unwrap().parse().unwrap())
}

#[test]
fn a_host_that_stops_taking_events_stops_the_reading_and_nothing_is_lost() {
    const MAX_EVENTS: usize = 8;
    const READ_BUDGET: usize = 16 * 1024;
    const SENDERS: usize = 2;
    const PER_SENDER: usize = 500;
    const PAD: usize = 1000;
    let mut server = Server::new(config_with(|c| {
        c.max_events = MAX_EVENTS;
        c.read_budget = READ_BUDGET;
    }))
    .unwrap();
    let addr = server.local_addr();
    let text = |sender: usize, seq: usize| format!("s{sender} {seq:06} {}", "x".repeat(PAD));
    let frame_len = json_frame(&json!({"type": "all", "text": text(0, 0)})).len();

    let receiver = std::thread::spawn(move || {
        let mut c = TestClient::hello(addr, "rx");
        let mut got = Vec::new();
        while got.len() < SENDERS * PER_SENDER {
            let v = c.recv();
            if v["type"] == "all" {
                got.push(backlog_seq(v["text"].as_str().unwrap()));
            }
        }
        got
    });
    let mut seen = Vec::new();
    pump_taking_events(&mut server, &mut seen, "rx to register", |s| {
        registered_count(s) == 1
    });
    let written = Arc::new(AtomicUsize::new(0));
    let (start_tx, start_rx) = mpsc::channel::<()>();
    let start_rx = Arc::new(Mutex::new(start_rx));
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let written = written.clone();
            let start = start_rx.clone();
            std::thread::spawn(move || {
                let mut c = TestClient::hello(addr, &format!("s{i}"));
                start.lock().unwrap().recv().unwrap();
                // The whole backlog in one write: about 500 KB, which the
                // kernel's loopback buffers take without the server reading
                // (they take megabytes), so this returns.
                let all: Vec<u8> = (0..PER_SENDER)
                    .flat_map(|seq| json_frame(&json!({"type": "all", "text": text(i, seq)})))
                    .collect();
                c.send_raw(&all);
                written.fetch_add(1, Ordering::SeqCst);
                c // kept open until the test ends
            })
        })
        .collect();
    pump_taking_events(&mut server, &mut seen, "the senders to register", |s| {
        registered_count(s) == 1 + SENDERS
    });

    let base = server.stats().frames_in;
    // The host stops taking events. The server reads until MAX_EVENTS
    // wait, then stops: at most one read's frames per client over it.
    for _ in 0..SENDERS {
        start_tx.send(()).unwrap();
    }
    let bound = MAX_EVENTS - 1 + SENDERS * (READ_BUDGET / frame_len + 1);
    let end = Instant::now() + DEADLINE;
    while written.load(Ordering::SeqCst) < SENDERS || server.pending_events() < MAX_EVENTS {
        assert!(Instant::now() < end, "the backlog was never written");
        server
            .poll_once(Some(Duration::from_millis(50)))
            .expect("poll_once");
        assert!(
            server.pending_events() <= bound,
            "{} events waiting",
            server.pending_events()
        );
    }
    // Every byte is written and waiting in the server's sockets: rounds that
    // wait for nothing would read it if the server still watched them.
    let stalled = (
        server.pending_events(),
        server.stats().frames_in,
        server.stats().bytes_in,
    );
    for _ in 0..20 {
        server.poll_once(Some(Duration::ZERO)).expect("poll_once");
    }
    assert_eq!(
        (
            server.pending_events(),
            server.stats().frames_in,
            server.stats().bytes_in
        ),
        stalled,
        "the server read on while the host took no events"
    );
    let total = SENDERS * PER_SENDER;
    assert!(
        stalled.1 - base < total as u64,
        "the server had read everything: {stalled:?}"
    );
    println!(
        "max_events {MAX_EVENTS}: stalled with {} events waiting (bound {bound}), {} of {} frames read",
        stalled.0,
        stalled.1 - base,
        total
    );

    // The host drains: every message is routed and every event arrives, in
    // the order the receiver got the messages (the order they were routed).
    let before = seen.len();
    pump_taking_events(&mut server, &mut seen, "every message event", |s| {
        s.iter()
            .filter(|e| matches!(e.kind, EventKind::Message(_)))
            .count()
            == total
    });
    let routed: Vec<(String, usize)> = seen[before..]
        .iter()
        .map(|e| match &e.kind {
            EventKind::Message(m) => {
                let v: Value = serde_json::from_str(m.json()).unwrap();
                let (sender, seq) = backlog_seq(v["text"].as_str().unwrap());
                assert_eq!(e.nick.as_deref(), Some(sender.as_str()));
                (sender, seq)
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    for i in 0..SENDERS {
        let mine: Vec<usize> = routed
            .iter()
            .filter(|(s, _)| *s == format!("s{i}"))
            .map(|&(_, n)| n)
            .collect();
        assert_eq!(mine, (0..PER_SENDER).collect::<Vec<_>>(), "s{i}'s messages");
    }
    assert_eq!(
        receiver.join().unwrap(),
        routed,
        "the receiver's order differs from the events'"
    );
    for s in senders {
        drop(s.join().unwrap());
    }
}

// ----- 5. a registered client trickling one frame -----

#[test]
fn a_registered_client_trickling_one_frame_stays_connected_past_the_idle_timeout() {
    // Long enough that a loaded machine never stalls the trickle for a
    // whole timeout (which would drop it: bytes are its only activity).
    let idle = Duration::from_secs(1);
    let server = ServerThread::start(config_with(|c| c.idle_timeout = Some(idle)));
    let witness = TestClient::hello(server.addr, "witness");
    let trickler = TestClient::hello(server.addr, "trickler");
    let silent = TestClient::hello(server.addr, "silent");
    // The witness answers pings and reports presence.
    let (presence_tx, presence) = mpsc::channel();
    let mut witness_reader = TestClient {
        stream: witness.stream.try_clone().unwrap(),
    };
    let witness_thread = std::thread::spawn(move || {
        while let Some(v) = witness_reader.try_recv() {
            if v["type"] == "ping" {
                witness_reader.send(&json!({"type": "pong", "id": v["id"]}));
            } else if v["state"] == "online" {
                continue;
            } else if presence_tx.send(v).is_err() {
                break;
            }
        }
    });
    // What the trickler is sent, on a channel: its pace comes from waiting
    // on it.
    let (frames_tx, frames) = mpsc::channel();
    let mut trickler_reader = TestClient {
        stream: trickler.stream.try_clone().unwrap(),
    };
    let trickler_thread = std::thread::spawn(move || {
        while let Some(v) = trickler_reader.try_recv() {
            if v["state"] == "online" {
                continue;
            }
            if frames_tx.send(v).is_err() {
                break;
            }
        }
    });

    let id = "y".repeat(2000);
    let frame = json_frame(&json!({"type": "ping", "id": id}));
    let mut stream = &trickler.stream;
    let started = Instant::now();
    let mut sent = 0;
    let mut silent_gone = false;
    let mut pinged = 0;
    // Wall-clock time must pass: the point is a trickle that lasts longer
    // than the idle timeout (three of them), one byte per 50 ms wait.
    while !(silent_gone && started.elapsed() > 3 * idle) {
        assert!(sent < frame.len() - 1, "ran out of bytes to trickle");
        stream.write_all(&frame[sent..sent + 1]).unwrap();
        sent += 1;
        match frames.recv_timeout(Duration::from_millis(50)) {
            // Bytes count as activity, so no ping is due while it trickles;
            // one could come only if this loop stalled for half the idle
            // timeout (a loaded machine), and it could not be answered
            // mid-frame anyway.
            Ok(v) if v["type"] == "ping" => pinged += 1,
            Ok(v) => assert_eq!(v, offline("silent", "timeout"), "the trickler got {v}"),
            Err(_) => {}
        }
        while let Ok(v) = presence.try_recv() {
            assert_eq!(v, offline("silent", "timeout"), "the witness got {v}");
            silent_gone = true;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the silent client was never dropped"
        );
    }
    // The rest at once: the frame is whole and answered.
    stream.write_all(&frame[sent..]).unwrap();
    let pong = frames.recv_timeout(DEADLINE).unwrap();
    assert_eq!(pong, json!({"type": "pong", "id": id}));
    let stats = server.with(|s| s.stats());
    assert_eq!(
        stats.disconnects_for(Reason::Timeout),
        1,
        "only the silent client"
    );
    assert_eq!(stats.registered, 2);
    println!(
        "trickle: {sent} bytes over {:?} with idle_timeout {idle:?}, still registered, pinged {pinged} times",
        started.elapsed()
    );
    drop(silent);
    trickler.stream.shutdown(Shutdown::Both).unwrap();
    witness.stream.shutdown(Shutdown::Both).unwrap();
    trickler_thread.join().unwrap();
    witness_thread.join().unwrap();
}

// ----- 6. EINTR: signals interrupting the pump -----

/// SIGUSR1 deliveries seen by [`count_signal`].
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// Signals sent while the pumping thread was seen blocked in `select()`.
static SENT_IN_SELECT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// The calling thread's kernel id, from `/proc/thread-self` (`PID/task/TID`).
fn own_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().to_string()
}

/// Whether thread `tid` of this process is blocked in `select()` now
/// (glibc's select is the pselect6 system call, or select on x86_64).
fn blocked_in_select(tid: &str) -> bool {
    let Ok(call) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let nr: Option<libc::c_long> = call.split(' ').next().and_then(|n| n.parse().ok());
    #[cfg(target_arch = "x86_64")]
    let selects = [libc::SYS_pselect6, libc::SYS_select];
    #[cfg(not(target_arch = "x86_64"))]
    let selects = [libc::SYS_pselect6];
    nr.is_some_and(|nr| selects.contains(&nr))
}

/// Sends SIGUSR1 to one thread, one at a time (each handled before the
/// next), until stopped; stops and joins on drop, so that no signal is sent
/// to a thread that has finished. Before each signal it waits a little for
/// the thread to block in `select()`, the call a signal is most likely to
/// interrupt, and counts the signals sent while it was.
struct Signaller {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Signaller {
    fn start(target: libc::pthread_t, tid: String) -> Signaller {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                // Not a failure if it stays busy: it is signalled anyway.
                let give_up = Instant::now() + Duration::from_millis(20);
                while !blocked_in_select(&tid) && Instant::now() < give_up {
                    std::thread::yield_now();
                }
                if blocked_in_select(&tid) {
                    SENT_IN_SELECT.fetch_add(1, Ordering::SeqCst);
                }
                let before = SIGNALS.load(Ordering::SeqCst);
                // SAFETY: `target` is alive: the thread that started this
                // one owns the Signaller, whose drop joins this thread first.
                let rc = unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                assert_eq!(rc, 0, "pthread_kill");
                wait_until("the signal to be handled", || {
                    SIGNALS.load(Ordering::SeqCst) > before
                });
            }
        });
        Signaller {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn signals_interrupting_the_pump_are_no_error_and_lose_nothing() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    const AT_LEAST_MESSAGES: usize = 2000;
    /// Signals sent while the pump blocked in select().
    const AT_LEAST_IN_SELECT: usize = 1000;
    const WINDOW: usize = 64;
    // No SA_RESTART: an interrupted select() (and any other blocking call)
    // fails with EINTR instead of resuming.
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic (async-signal-safe),
    // and nothing else in this test process uses SIGUSR1. It stays
    // installed: putting SIG_DFL back could kill the process if a signal
    // were still on its way.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();

    let mut server = Server::new(loopback_config()).unwrap();
    let addr = server.local_addr();
    let waker = server.waker();
    let done = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let (bob_ready_tx, bob_ready) = mpsc::channel();

    let bob = {
        let (done, received, waker) = (done.clone(), received.clone(), waker.clone());
        std::thread::spawn(move || {
            let mut bob = TestClient::hello(addr, "bob");
            bob_ready_tx.send(()).unwrap();
            loop {
                let v = bob.recv();
                match v["type"].as_str() {
                    Some("msg") if v["text"] == "END" => break,
                    Some("msg") => {
                        let n = received.load(Ordering::SeqCst);
                        assert_eq!(v["text"], n.to_string(), "bob got messages out of order");
                        received.store(n + 1, Ordering::SeqCst);
                    }
                    _ => assert_eq!(v["type"], "presence", "bob got {v}"),
                }
            }
            done.store(true, Ordering::SeqCst);
            waker.wake().unwrap();
        })
    };
    let alice = {
        let received = received.clone();
        std::thread::spawn(move || {
            bob_ready.recv().unwrap();
            let mut alice = TestClient::hello(addr, "alice");
            let mut sent = 0;
            while sent < AT_LEAST_MESSAGES || SENT_IN_SELECT.load(Ordering::SeqCst) < AT_LEAST_IN_SELECT {
                assert!(sent < 1_000_000, "too few signals arrived");
                // Bob is never more than WINDOW messages behind.
                wait_until("bob to keep up", || {
                    sent - received.load(Ordering::SeqCst) < WINDOW
                });
                alice.send(&json!({"type": "msg", "to": "bob", "text": sent.to_string()}));
                sent += 1;
            }
            // The pong says the server has routed everything before it; END
            // comes after, because once bob has it the pump stops.
            alice.send(&json!({"type": "ping", "id": "last"}));
            loop {
                let v = alice.recv();
                if v["type"] == "presence" {
                    continue;
                }
                assert_eq!(v, json!({"type": "pong", "id": "last"}));
                break;
            }
            alice.send(&json!({"type": "msg", "to": "bob", "text": "END"}));
            sent
        })
    };

    let signals_before = SIGNALS.load(Ordering::SeqCst);
    // SAFETY: pthread_self has no preconditions. (nix's wrapper needs its
    // `pthread` feature, which this crate does not enable.)
    let me = unsafe { libc::pthread_self() };
    let signaller = Signaller::start(me, own_tid());
    let end = Instant::now() + DEADLINE * 3;
    let mut rounds = 0u64;
    while !done.load(Ordering::SeqCst) {
        assert!(Instant::now() < end, "the chat did not finish");
        // No timeout: the round blocks in select() until a socket, the waker
        // or a signal ends it.
        server.poll_once(None).expect("poll_once with signals arriving");
        server.events().for_each(drop);
        rounds += 1;
    }
    drop(signaller);
    let sent = alice.join().expect("alice");
    bob.join().expect("bob");
    assert_eq!(received.load(Ordering::SeqCst), sent, "bob missed messages");
    let signals = SIGNALS.load(Ordering::SeqCst) - signals_before;
    let in_select = SENT_IN_SELECT.load(Ordering::SeqCst);
    assert!(
        in_select >= AT_LEAST_IN_SELECT,
        "{in_select} signals hit select()"
    );
    println!(
        "EINTR: {sent} messages delivered in order across {signals} signals \
         ({in_select} sent while select() blocked), {rounds} rounds"
    );
}
