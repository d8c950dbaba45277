//! The server's TLS listener, over real loopback sockets, with clients
//! nobody here wrote (Python's `ssl`, which is OpenSSL, and `openssl
//! s_client`) next to the rustls test client: TLS 1.2 and 1.3 chat with
//! everyone; every close of the server's own (quit, kick, shutdown,
//! slow_consumer) is the error frame, then close_notify, then the end of
//! TCP; plaintext, garbage, a stalled handshake and a reset mid-handshake
//! are closed and counted while a registered client keeps chatting; a
//! stopped TLS reader is dropped near the queue cap (TLS' own buffer
//! counted) while a fast one gets everything in order; a text larger than
//! a record arrives whole.
//!
//! Certificates and keys that are wrong are tested in `tls_start.rs`.

mod common;
mod support_a;

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat::{Config, EventKind, Reason, TlsPem, Via};
use common::tls::{client_config, python_tls_client, s_client_command, Pki, TlsEnd, TlsTestClient, ANY_TLS};
use common::{ServerThread, Spawned, DEADLINE};
use nix::sys::socket::{self, sockopt, SockaddrIn};
use serde_json::{json, Value};
use support_a::*;

/// A loopback config whose TCP listener speaks TLS with `pki`'s chain.
fn tls_config(pki: &Pki) -> Config {
    Config {
        tls: Some(TlsPem {
            cert_chain: pki.chain_pem.clone(),
            private_key: pki.key_pem.clone(),
        }),
        ..common::loopback_config()
    }
}

/// The Python `ssl` client, connected in TLS `version` and verifying the
/// server against the test CA; returned after its `connected` line.
fn python(addr: SocketAddr, pki: &Pki, version: &str, extra: &[&str]) -> Spawned {
    let mut cmd = python_tls_client();
    cmd.args(["--connect", &addr.to_string(), "--tls", version, "--ca"])
        .arg(pki.path("ca.pem"))
        .args(extra);
    let p = Spawned::start(cmd);
    let first = p.line();
    assert!(first.starts_with(&format!("connected TLSv{version} ")), "{first}");
    p
}

/// The Python client's next line, which must be `frame JSON`.
fn frame_line(p: &Spawned) -> Value {
    let line = p.line();
    let json = line
        .strip_prefix("frame ")
        .unwrap_or_else(|| panic!("not a frame: {line}"));
    serde_json::from_str(json).unwrap()
}

/// Registers the Python client as `nick`; returns its welcome.
fn py_hello(p: &mut Spawned, nick: &str) -> Value {
    p.command(&json!({"type": "hello", "nick": nick}).to_string());
    let welcome = frame_line(p);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    welcome
}

/// Expects what a client dropped for `code` must see last: the error
/// frame, then close_notify, then TCP closed.
fn py_expect_goodbye(mut p: Spawned, code: &str) {
    let mut last = frame_line(&p);
    while last["type"] == "presence" {
        last = frame_line(&p);
    }
    assert_error(&last, code);
    assert_eq!(p.line(), "end close_notify", "after the {code} frame");
    assert_eq!(p.line(), "tcp closed", "after close_notify ({code})");
    assert!(p.wait().success());
}

/// The id of the client that registered as `nick`, from its events; checks
/// it came over TLS.
fn tls_client_id(server: &ServerThread, nick: &str) -> chat::ClientId {
    let nick = nick.to_string();
    let ev = server
        .event_until(move |e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some(&nick));
    assert_eq!(ev.via, Via::Tls);
    ev.client
}

#[test]
fn python_ssl_in_tls_1_2_and_1_3_chats_with_rustls_and_gets_close_notify_after_quit() {
    let pki = Pki::new();
    let server = ServerThread::start(tls_config(&pki));
    let mut rust = TlsTestClient::hello(server.addr, &pki, "rust");
    for version in ["1.2", "1.3"] {
        let nick = format!("py{}", version.replace('.', ""));
        let mut p = python(server.addr, &pki, version, &[]);
        let welcome = py_hello(&mut p, &nick);
        assert_eq!(welcome["users"], json!([nick, "rust"]));
        assert_eq!(rust.recv(), online(&nick));
        p.command(r#"{"type":"all","text":"hi from python"}"#);
        assert_eq!(
            rust.recv(),
            json!({"type": "all", "from": nick, "text": "hi from python"})
        );
        rust.send(&json!({"type": "msg", "to": nick, "text": "hi from rustls"}));
        assert_eq!(
            frame_line(&p),
            json!({"type": "msg", "from": "rust", "to": nick, "text": "hi from rustls"})
        );
        rust.send(&json!({"type": "join", "room": "#tls"}));
        assert_eq!(rust.recv()["type"], "joined");
        p.command(r##"{"type":"join","room":"#tls"}"##);
        assert_eq!(frame_line(&p)["type"], "joined");
        assert_eq!(rust.recv()["state"], "joined");
        rust.send(&json!({"type": "room", "room": "#tls", "text": "in the room"}));
        assert_eq!(
            frame_line(&p),
            json!({"type": "room", "room": "#tls", "from": "rust", "text": "in the room"})
        );
        p.command(r#"{"type":"quit"}"#);
        assert_eq!(p.line(), "end close_notify");
        assert_eq!(p.line(), "tcp closed");
        assert!(p.wait().success());
        assert_eq!(
            rust.recv(),
            json!({"type": "presence", "nick": nick, "room": "#tls", "state": "parted"})
        );
        assert_eq!(rust.recv(), offline(&nick, "quit"));
        let id = tls_client_id(&server, &nick);
        let ev =
            server.event_until(move |e| e.client == id && matches!(e.kind, EventKind::Disconnected { .. }));
        assert!(matches!(
            ev.kind,
            EventKind::Disconnected { reason: Reason::Quit }
        ));
    }
    // The rustls client, too: its quit is answered with close_notify.
    rust.send(&json!({"type": "quit"}));
    assert_eq!(rust.expect_closed(), (vec![], TlsEnd::CloseNotify));
    let mut after = [0u8; 1];
    assert_eq!(
        rust.stream.sock.read(&mut after).unwrap(),
        0,
        "TCP closed after close_notify"
    );
}

#[test]
fn a_kick_sends_the_error_frame_then_close_notify_then_closes() {
    let pki = Pki::new();
    let server = ServerThread::start(tls_config(&pki));
    let mut other = TlsTestClient::hello(server.addr, &pki, "other");
    for version in ["1.2", "1.3"] {
        let nick = format!("kicked{}", version.replace('.', ""));
        let mut p = python(server.addr, &pki, version, &[]);
        py_hello(&mut p, &nick);
        let id = tls_client_id(&server, &nick);
        assert_eq!(other.recv(), online(&nick));
        server.with(move |s| s.kick(id, Some("bye now"))).unwrap();
        py_expect_goodbye(p, "kicked");
        assert_eq!(other.recv(), offline(&nick, "kicked"));
    }
}

#[test]
fn a_shutdown_sends_every_tls_client_the_error_frame_then_close_notify() {
    let pki = Pki::new();
    let server = ServerThread::start(tls_config(&pki));
    let mut clients = Vec::new();
    for version in ["1.2", "1.3"] {
        let mut p = python(server.addr, &pki, version, &[]);
        py_hello(&mut p, &format!("down{}", version.replace('.', "")));
        clients.push(p);
    }
    let mut rust = TlsTestClient::hello(server.addr, &pki, "rust");
    assert!(!server.with(|s| s.shutdown(Duration::from_secs(5))));
    for p in clients {
        py_expect_goodbye(p, "shutdown");
    }
    let (frames, end) = rust.expect_closed();
    assert_error(frames.last().expect("the shutdown frame"), "shutdown");
    assert_eq!(end, TlsEnd::CloseNotify);
}

#[test]
fn openssl_s_client_in_both_versions_registers_talks_and_is_answered_with_close_notify() {
    let pki = Pki::new();
    let server = ServerThread::start(tls_config(&pki));
    let mut rust = TlsTestClient::hello(server.addr, &pki, "rust");
    for version in ["1.2", "1.3"] {
        let nick = format!("ossl{}", version.replace('.', ""));
        let mut cmd = s_client_command(server.addr, &pki, version);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start openssl s_client");
        let mut stdin = child.stdin.take().unwrap();
        // Its stdin is binary frames: hello, a message, quit.
        let mut frames = json_frame(&json!({"type": "hello", "nick": nick}));
        frames.extend(json_frame(
            &json!({"type": "all", "text": format!("from s_client {version}")}),
        ));
        frames.extend(json_frame(&json!({"type": "quit"})));
        stdin.write_all(&frames).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        assert_eq!(rust.recv(), online(&nick));
        assert_eq!(
            rust.recv(),
            json!({"type": "all", "from": nick, "text": format!("from s_client {version}")})
        );
        assert_eq!(rust.recv(), offline(&nick, "quit"));
        // s_client exits once the server closes (-ign_eof: not when its
        // stdin ends).
        drop(stdin);
        let out = rx.recv_timeout(DEADLINE).expect("s_client finished").unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "s_client failed: {stderr}");
        let mut got = frames_of(&out.stdout);
        assert_eq!(got.len(), 1, "only the welcome: {got:?}");
        let welcome = got.remove(0);
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["nick"], nick.as_str());
    }
}

/// The payloads of the length-prefixed frames in `bytes`, as JSON.
fn frames_of(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let n = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(serde_json::from_slice(&bytes[4..4 + n]).expect("a JSON frame"));
        bytes = &bytes[4 + n..];
    }
    assert!(bytes.is_empty(), "a partial frame at the end");
    out
}

/// The bytes of a rustls ClientHello for `localhost`.
fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(&pki.ca_pem, ANY_TLS), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

/// Reads until the server ends the connection; returns what it sent, and
/// whether it ended with a reset rather than a FIN.
fn read_to_end_or_reset(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(e) => panic!("waiting for the server to close: {e}"),
        }
    }
}

fn failed_handshakes(server: &ServerThread) -> u64 {
    server.with(|s| s.stats().failed_handshakes)
}

fn wait_failed_handshakes(server: &ServerThread, n: u64) {
    wait_until(&format!("{n} failed handshakes"), || {
        failed_handshakes(server) >= n
    });
    assert_eq!(failed_handshakes(server), n);
}

#[test]
fn plaintext_garbage_a_stalled_handshake_and_a_reset_are_closed_and_counted_while_others_chat() {
    const HANDSHAKE: Duration = Duration::from_millis(800);
    let pki = Pki::new();
    let server = ServerThread::start(Config {
        handshake_timeout: Some(HANDSHAKE),
        ..tls_config(&pki)
    });
    let mut alice = TlsTestClient::hello(server.addr, &pki, "alice");
    let mut bob = TlsTestClient::hello(server.addr, &pki, "bob");
    assert_eq!(alice.recv(), online("bob"));
    let accepted = server.with(|s| s.stats().accepted);
    let (a, b) = (tls_client_id(&server, "alice"), tls_client_id(&server, "bob"));

    // A plain chat client on the TLS port: one decode_error alert, then EOF.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(&json_frame(&json!({"type": "hello", "nick": "plain"})))
        .unwrap();
    let (got, reset) = read_to_end_or_reset(&mut plain);
    assert_eq!((got.as_slice(), reset), (&[21u8, 3, 3, 0, 2, 2, 50][..], false));
    wait_failed_handshakes(&server, 1);
    chat_works(&mut alice, "alice", &mut bob, "bob");

    // Garbage inside a handshake record: an alert at most, then the end.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage.set_read_timeout(Some(DEADLINE)).unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x08, 0xff, 0, 0, 4, 1, 2, 3, 4])
        .unwrap();
    let (got, _) = read_to_end_or_reset(&mut garbage);
    assert!(got.is_empty() || got[0] == 21, "only an alert: {got:?}");
    wait_failed_handshakes(&server, 2);
    chat_works(&mut bob, "bob", &mut alice, "alice");

    // Half a ClientHello, then nothing: closed at the handshake deadline.
    let hello = client_hello(&pki);
    // The deadline runs from the accept, which follows this instant.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.set_read_timeout(Some(DEADLINE)).unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    // Meanwhile the others chat.
    chat_works(&mut alice, "alice", &mut bob, "bob");
    let (got, _) = read_to_end_or_reset(&mut stalled);
    assert!(got.is_empty(), "nothing is sent to a stalled handshake: {got:?}");
    assert!(
        started.elapsed() >= HANDSHAKE,
        "closed before the handshake deadline ({:?})",
        started.elapsed()
    );
    wait_failed_handshakes(&server, 3);

    // A whole ClientHello, the server's answer read, then a reset.
    let mut reset_one = TcpStream::connect(server.addr).unwrap();
    reset_one.set_read_timeout(Some(DEADLINE)).unwrap();
    reset_one.write_all(&hello).unwrap();
    let mut first = [0u8; 5];
    reset_one.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 22, "a handshake record comes back");
    support_a::reset(reset_one);
    wait_failed_handshakes(&server, 4);
    chat_works(&mut bob, "bob", &mut alice, "alice");

    // A connection that ends before any byte: a handshake that failed too.
    drop(TcpStream::connect(server.addr).unwrap());
    wait_failed_handshakes(&server, 5);

    // Nobody else noticed: no presence, no event but the two clients'.
    chat_works(&mut alice, "alice", &mut bob, "bob");
    let stats = server.with(|s| s.stats());
    assert_eq!(stats.accepted, accepted, "a failed handshake never made a client");
    assert_eq!(stats.clients, 2);
    for ev in server.take_events() {
        assert!(
            ev.client == a || ev.client == b,
            "an event for a failed handshake: {ev:?}"
        );
    }
}

const MAX_QUEUE: usize = 128 * 1024;
/// Stops the flood if the slow reader is never dropped (about 8 MB).
const GIVE_UP: usize = 8_000;

/// Message `seq`'s text: its number, then padding to about 1 KB.
fn text(seq: usize) -> String {
    format!("{seq:08} {}", "x".repeat(1000))
}

fn seq_of(v: &Value) -> usize {
    v["text"].as_str().expect("a text")[..8]
        .parse()
        .expect("a number")
}

/// What the publisher of a flood saw: how many messages it sent, and how
/// many payload bytes the slow reader's queue had taken when it overflowed.
struct Flood {
    sent: usize,
    taken_by_slow: usize,
    /// How many frames those bytes were: the cap counts each with
    /// `chat::FRAME_OVERHEAD` on top of its payload.
    frames_taken_by_slow: usize,
}

/// Broadcasts numbered messages, each acked, until the ack says one
/// recipient fewer took it (the slow reader overflowed), then a few more
/// and `END`. `recipients` counts the publisher's audience while the slow
/// one is still there.
fn flood(publisher: &mut impl Chat, recipients: u64) -> Flood {
    let mut taken_by_slow = 0;
    let mut frames_taken_by_slow = 0;
    let mut dropped_at = None;
    let mut sent = 0;
    while dropped_at.is_none_or(|at| sent < at + 50) {
        assert!(sent < GIVE_UP, "the slow reader was never dropped");
        let msg = json!({"type": "all", "text": text(sent), "id": sent});
        let ack = publisher.acked(&msg);
        assert_eq!(ack["id"], sent, "{ack}");
        let queued = ack["queued"].as_u64().unwrap();
        if dropped_at.is_none() {
            if queued == recipients {
                taken_by_slow += json!({"type": "all", "from": "pub", "text": text(sent)})
                    .to_string()
                    .len();
                frames_taken_by_slow += 1;
            } else {
                assert_eq!(queued, recipients - 1, "{ack}");
                dropped_at = Some(sent);
            }
        } else {
            assert_eq!(queued, recipients - 1, "{ack}");
        }
        sent += 1;
    }
    publisher.send(&json!({"type": "all", "text": "END"}));
    Flood {
        sent,
        taken_by_slow,
        frames_taken_by_slow,
    }
}

/// Checks what a fast reader got: every message in order, then `END`.
fn check_fast(mut recv: impl FnMut() -> Value, sent: usize, slow: &str) {
    let mut next = 0;
    let mut saw_slow_leave = false;
    loop {
        let v = recv();
        match v["type"].as_str() {
            Some("all") if v["text"] == "END" => break,
            Some("all") => {
                assert_eq!(seq_of(&v), next, "the fast reader got messages out of order");
                next += 1;
            }
            Some("presence") if v["state"] == "offline" => {
                assert_eq!(v, offline(slow, "slow_consumer"));
                saw_slow_leave = true;
            }
            _ => panic!("the fast reader got {v}"),
        }
    }
    assert_eq!(next, sent, "the fast reader missed messages");
    assert!(saw_slow_leave, "the fast reader did not see the slow one leave");
}

/// Every frame `recv` gives up to the `END` broadcast.
fn until_end(mut recv: impl FnMut() -> Value) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let v = recv();
        let end = v["text"] == "END";
        seen.push(v);
        if end {
            return seen;
        }
    }
}

/// Proves `from` and `to` (TLS or not) are open and registered: a message
/// from one reaches the other.
fn chat_works(from: &mut impl Chat, from_nick: &str, to: &mut impl Chat, to_nick: &str) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let text = format!("check-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    from.send(&json!({"type": "msg", "to": to_nick, "text": text}));
    assert_eq!(
        to.recv(),
        json!({"type": "msg", "from": from_nick, "to": to_nick, "text": text})
    );
}

/// A client of either kind, for the flood.
trait Chat {
    fn send(&mut self, v: &Value);
    fn recv(&mut self) -> Value;

    /// Sends `msg` and returns its ack, skipping presence.
    fn acked(&mut self, msg: &Value) -> Value {
        self.send(msg);
        loop {
            let v = self.recv();
            if v["type"] == "ack" {
                return v;
            }
            assert_eq!(v["type"], "presence", "{v}");
        }
    }
}

impl Chat for TlsTestClient {
    fn send(&mut self, v: &Value) {
        TlsTestClient::send(self, v)
    }
    fn recv(&mut self) -> Value {
        TlsTestClient::recv(self)
    }
}

/// The server's socket for the client at `peer`: the descriptor whose
/// peer address that is.
fn server_side_fd(peer: SocketAddr) -> RawFd {
    let SocketAddr::V4(peer) = peer else {
        panic!("IPv4 loopback expected")
    };
    let found: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| socket::getpeername::<SockaddrIn>(fd).map(SocketAddrV4::from) == Ok(peer))
        .collect();
    assert_eq!(found.len(), 1, "server side of {peer}: {found:?}");
    found[0]
}

#[test]
fn a_stopped_tls_reader_is_dropped_near_the_cap_while_a_fast_one_gets_everything_in_order() {
    let pki = Pki::new();
    let server = ServerThread::start(Config {
        max_queue_bytes: MAX_QUEUE,
        ..tls_config(&pki)
    });
    let mut publisher = TlsTestClient::hello(server.addr, &pki, "pub");
    let mut fast = TlsTestClient::hello(server.addr, &pki, "fast");
    let mut slow = python(server.addr, &pki, "1.3", &["--rcvbuf", "4096"]);
    py_hello(&mut slow, "slow");
    slow.command("!pause");
    // The kernel's share of what the stopped reader takes is its receive
    // buffer and the server's send buffer, which Linux grows up to 4 MiB
    // (tcp_wmem): fixed small here, what the server holds shows.
    let peer = server
        .event_until(|e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some("slow"))
        .peer;
    let fd = server_side_fd(peer);
    // SAFETY: `fd` is the server's socket for the slow reader, found just
    // now by its address; the server keeps it open until that client
    // leaves, which it cannot do before the flood below.
    let server_side = unsafe { BorrowedFd::borrow_raw(fd) };
    socket::setsockopt(&server_side, sockopt::SndBuf, &4096).unwrap();
    assert_eq!(fast.recv(), online("slow"));
    let reader = std::thread::spawn(move || until_end(|| fast.recv()));
    let tls = flood(&mut publisher, 2);
    let mut seen = reader.join().unwrap().into_iter();
    check_fast(|| seen.next().unwrap(), tls.sent, "slow");
    // Taken before the drop: what the server held for it (its queue and
    // its TLS session, counted together against the cap), plus the two
    // small kernel buffers. Were the session's 64 KiB not counted, this
    // would be that much over.
    let taken = tls.taken_by_slow;
    eprintln!("taken by the stopped reader before its drop: {taken} bytes (cap {MAX_QUEUE})");
    // The cap counts FRAME_OVERHEAD per frame on top of the payload, so the
    // payload bytes alone reach it less that overhead per frame.
    let counted = taken + tls.frames_taken_by_slow * chat::FRAME_OVERHEAD;
    assert!(
        counted + 1100 >= MAX_QUEUE,
        "dropped before the cap: {taken} payload bytes in {} frames ({counted} as the cap counts)",
        tls.frames_taken_by_slow
    );
    assert!(
        taken <= MAX_QUEUE + 24 * 1024,
        "dropped far past the cap: {taken} bytes"
    );
    // The stopped reader reads again: a gap-free prefix, then its error
    // frame, close_notify and the end of TCP.
    slow.command("!resume");
    let mut next = 0;
    loop {
        let v = frame_line(&slow);
        if v["type"] == "error" {
            assert_error(&v, "slow_consumer");
            break;
        }
        assert_eq!(v["type"], "all", "{v}");
        assert_eq!(seq_of(&v), next, "a gap in what the slow reader got");
        next += 1;
    }
    assert!(next < tls.sent);
    assert_eq!(slow.line(), "end close_notify");
    assert_eq!(slow.line(), "tcp closed");
}

#[test]
fn a_text_larger_than_a_record_arrives_whole_both_ways() {
    let pki = Pki::new();
    let server = ServerThread::start(tls_config(&pki));
    let mut rust = TlsTestClient::hello(server.addr, &pki, "rust");
    let mut p = python(server.addr, &pki, "1.3", &[]);
    py_hello(&mut p, "py");
    assert_eq!(rust.recv(), online("py"));
    // Near the 64 KiB frame limit: four records or more each way.
    let big: String = (0..60_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    rust.send(&json!({"type": "msg", "to": "py", "text": big}));
    assert_eq!(
        frame_line(&p),
        json!({"type": "msg", "from": "rust", "to": "py", "text": big})
    );
    p.command(&json!({"type": "msg", "to": "rust", "text": big}).to_string());
    assert_eq!(
        rust.recv(),
        json!({"type": "msg", "from": "py", "to": "rust", "text": big})
    );
    // Sent one byte at a time, records split anywhere: the same.
    let frame = json_frame(&json!({"type": "msg", "to": "py", "text": "split"}));
    for b in frame {
        rust.send_raw(&[b]);
    }
    assert_eq!(
        frame_line(&p),
        json!({"type": "msg", "from": "rust", "to": "py", "text": "split"})
    );
}
