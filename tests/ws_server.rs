//! The server's WebSocket listener, over real loopback sockets, with
//! clients nobody here wrote (Python `websockets` and `websocket-client`,
//! pinned in tests/ws_clients/requirements.txt and installed if missing)
//! and a TCP client beside them (tests/ws_server/clients.py): one chat
//! both ways; the close code for each client fault and each of the
//! server's own reasons, after its error text message; pings answered; TCP
//! closed by the server after the closing handshake. The example server's
//! flags: `websocket on ADDR`, `--ws-path`, `--ws-origins`, the page at
//! `/` (nothing loaded from elsewhere) and `wss://` with the TLS flags.

mod common;
mod ws_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{BorrowedFd, RawFd};
use std::process::Command;
use std::time::Duration;

use chat::{Config, EventKind, Reason, Via};
use common::tls::Pki;
use common::{fresh_example, loopback_config, ServerThread, Spawned, TestClient, DEADLINE};
use nix::sys::socket::{self, sockopt, SockaddrIn};
use serde_json::{json, Value};
use ws_support::{arg, ensure_python_packages, pinned, python, run_with_deadline};

const REQUIREMENTS: &str = "tests/ws_clients/requirements.txt";
const MAX_MESSAGE: usize = 65536;

fn ensure_clients() {
    let ws = pinned(REQUIREMENTS, "websockets");
    let wc = pinned(REQUIREMENTS, "websocket-client");
    ensure_python_packages(
        REQUIREMENTS,
        &format!(
            "import importlib.metadata as m, websockets, websocket; \
             assert m.version('websockets') == '{ws}' and m.version('websocket-client') == '{wc}'"
        ),
    );
}

fn ws_config() -> Config {
    Config {
        ws_listen_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..loopback_config()
    }
}

fn ws_addr(server: &ServerThread) -> SocketAddr {
    server.with(|s| s.ws_addr()).expect("a WebSocket listener")
}

/// Runs `clients.py chat` against `url`; checks every `ok` line.
fn run_chat_checks(url: &str, tcp: SocketAddr, ca: Option<&std::path::Path>) {
    ensure_clients();
    let mut run = python();
    run.arg(arg("tests/ws_server/clients.py")).args([
        "chat",
        url,
        &tcp.to_string(),
        &MAX_MESSAGE.to_string(),
    ]);
    if let Some(ca) = ca {
        run.arg(ca);
    }
    let out = run_with_deadline(run, Duration::from_secs(120), "the Python clients");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python clients failed against {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "websockets, websocket-client and TCP clients register in one chat",
        "msg and all both ways between WebSocket and TCP",
        "rooms both ways between WebSocket and TCP",
        "the protocol's ping and WebSocket pings are answered",
        "quit closes with 1000, then the server closes TCP",
        "a client's closing handshake: the server answers 1000 and the client leaves as disconnect",
        "the server closes TCP after a client's closing handshake",
        "binary closes with 1003",
        "a message over the limit closes with 1009 from its header alone",
        "a message over the limit closes with 1009 before hello too",
        "fragments over the limit close with 1009",
        "invalid UTF-8 closes with 1007",
        "an unmasked frame closes with 1002",
        "a reserved bit closes with 1002",
        "a stray continuation closes with 1002",
        "websockets binary closes with 1003",
        "websockets oversized closes with 1009",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "{check} not checked:\n{stdout}"
        );
    }
}

#[test]
fn websocket_and_tcp_clients_are_one_chat_and_faults_get_their_close_codes() {
    let server = ServerThread::start(ws_config());
    let url = format!("ws://{}/chat", ws_addr(&server));
    run_chat_checks(&url, server.addr, None);
    // The host saw WebSocket clients as such.
    let alice =
        server.event_until(|e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some("alice"));
    assert_eq!(alice.via, Via::Ws);
    assert_eq!(alice.via.scheme(), "ws://");
    let bob =
        server.event_until(|e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some("bob"));
    assert_eq!(bob.via, Via::Tcp);
    let stats = server.with(|s| s.stats());
    assert_eq!(stats.failed_handshakes, 0, "every upgrade completed");
    assert!(stats.disconnects_for(Reason::ProtocolError) >= 10, "{stats:?}");
}

/// `clients.py wait` as `nick`, returned after its `registered` line, with
/// the client's address.
fn waiting(url: &str, nick: &str, extra: &[&str]) -> (Spawned, SocketAddr) {
    ensure_clients();
    let mut cmd = python();
    cmd.arg(arg("tests/ws_server/clients.py"))
        .args(["wait", url, nick])
        .args(extra);
    let p = Spawned::start(cmd);
    let line = p.line();
    let port: u16 = line
        .strip_prefix(&format!("registered {nick} "))
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Reads a waiting client's lines to its end: the text messages it got,
/// then checks the close code and reason and that the server closed TCP
/// after the closing handshake.
fn closed_with(p: Spawned, code: u16, reason: &str) -> Vec<Value> {
    closed_ending(p, code, reason, &["tcp closed"])
}

/// [`closed_with`], where the server closes TCP as one of `tcp` says.
fn closed_ending(p: Spawned, code: u16, reason: &str, tcp: &[&str]) -> Vec<Value> {
    let (status, lines, stderr) = p.finish();
    assert!(status.success(), "{lines:?}\n{stderr}");
    let (texts, end): (Vec<&String>, Vec<&String>) = lines.iter().partition(|l| l.starts_with("text "));
    assert_eq!(end.len(), 2, "{lines:?}");
    assert_eq!(end[0], &format!("close {code} {reason}"), "{lines:?}");
    assert!(
        tcp.contains(&end[1].as_str()),
        "{lines:?}: TCP should be one of {tcp:?}"
    );
    texts
        .iter()
        .map(|l| serde_json::from_str(&l["text ".len()..]).unwrap())
        .collect()
}

fn assert_last_error(texts: &[Value], code: &str) {
    let last = texts
        .last()
        .unwrap_or_else(|| panic!("no error text before the close ({code})"));
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], code, "{last}");
}

fn registered_id(server: &ServerThread, nick: &str) -> chat::ClientId {
    let nick = nick.to_string();
    server
        .event_until(move |e| matches!(e.kind, EventKind::Registered) && e.nick.as_deref() == Some(&nick))
        .client
}

#[test]
fn kicked_and_shutdown_close_with_1008_and_1001_after_their_error_text() {
    let server = ServerThread::start(ws_config());
    let url = format!("ws://{}/chat", ws_addr(&server));
    let (p, _) = waiting(&url, "kicked", &[]);
    let id = registered_id(&server, "kicked");
    server.with(move |s| s.kick(id, Some("enough"))).unwrap();
    let texts = closed_with(p, 1008, "kicked");
    assert_last_error(&texts, "kicked");
    assert_eq!(texts.last().unwrap()["message"], "enough");

    let (p, _) = waiting(&url, "down", &[]);
    registered_id(&server, "down");
    assert!(!server.with(|s| s.shutdown(Duration::from_secs(5))));
    // A server going away does not wait for the client's close frame: it
    // closes TCP right after its own. Whether the client's answer still
    // got out before the server's FIN is a race on a busy machine: either
    // way TCP is closed by the server, never left open.
    let texts = closed_ending(p, 1001, "shutdown", &["tcp closed first", "tcp closed"]);
    assert_last_error(&texts, "shutdown");
}

#[test]
fn an_idle_client_closes_with_1008_after_the_timeout_error() {
    let server = ServerThread::start(Config {
        idle_timeout: Some(Duration::from_millis(600)),
        ..ws_config()
    });
    let url = format!("ws://{}/chat", ws_addr(&server));
    // It never answers the server's pings.
    let (p, _) = waiting(&url, "idle", &[]);
    let texts = closed_with(p, 1008, "timeout");
    assert_eq!(texts[0]["type"], "ping", "pinged first: {texts:?}");
    assert_last_error(&texts, "timeout");
}

#[test]
fn a_flood_past_the_rate_limit_closes_with_1008_after_the_protocol_error() {
    let server = ServerThread::start(Config {
        rate_limit_frames: Some(5),
        rate_limit_grace: Duration::from_millis(200),
        ..ws_config()
    });
    let url = format!("ws://{}/chat", ws_addr(&server));
    let (p, _) = waiting(&url, "flood", &["--flood", "300"]);
    let texts = closed_with(p, 1008, "protocol_error");
    assert!(
        texts.iter().any(|t| t["code"] == "rate_limited"),
        "warned first: {texts:?}"
    );
    assert_last_error(&texts, "protocol_error");
}

/// The server's socket for the client at `peer`.
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
fn a_stopped_websocket_reader_closes_with_1008_after_slow_consumer_and_a_fast_one_gets_everything() {
    const MAX_QUEUE: usize = 128 * 1024;
    let server = ServerThread::start(Config {
        max_queue_bytes: MAX_QUEUE,
        ..ws_config()
    });
    let url = format!("ws://{}/chat", ws_addr(&server));
    let mut publisher = TestClient::hello(server.addr, "pub");
    let mut fast = TestClient::hello(server.addr, "fast");
    let (mut slow, peer) = waiting(&url, "slow", &["--rcvbuf", "4096", "--pause"]);
    assert_eq!(fast.recv()["state"], "online");
    let fd = server_side_fd(peer);
    // SAFETY: `fd` is the server's socket for the slow reader, found just
    // now by its address; the server keeps it open until that client
    // leaves, which it cannot do before the flood below. A small send
    // buffer keeps the kernel's share of the flood small (Linux grows it up
    // to 4 MiB otherwise).
    let server_side = unsafe { BorrowedFd::borrow_raw(fd) };
    socket::setsockopt(&server_side, sockopt::SndBuf, &4096).unwrap();
    let text = |seq: usize| format!("{seq:08} {}", "x".repeat(1000));
    let mut sent = 0;
    let mut dropped = None;
    while dropped.is_none_or(|at| sent < at + 20) {
        assert!(sent < 8000, "the slow reader was never dropped");
        publisher.send(&json!({"type": "all", "text": text(sent), "id": sent}));
        let ack = loop {
            let v = publisher.recv();
            if v["type"] == "ack" {
                break v;
            }
        };
        if dropped.is_none() && ack["queued"] == 1 {
            dropped = Some(sent);
        }
        sent += 1;
    }
    publisher.send(&json!({"type": "all", "text": "END"}));
    let mut next = 0;
    loop {
        let v = fast.recv();
        if v["type"] == "presence" {
            assert_eq!(
                v,
                json!({"type": "presence", "nick": "slow", "state": "offline", "reason": "slow_consumer"})
            );
            continue;
        }
        if v["text"] == "END" {
            break;
        }
        assert_eq!(v["text"], text(next), "the fast reader got messages out of order");
        next += 1;
    }
    assert_eq!(next, sent);
    slow.command("resume");
    let texts = closed_with(slow, 1008, "slow_consumer");
    assert_last_error(&texts, "slow_consumer");
    let got: Vec<&Value> = texts.iter().filter(|t| t["type"] == "all").collect();
    for (i, t) in got.iter().enumerate() {
        assert_eq!(t["text"], text(i), "a gap in what the slow reader got");
    }
    assert!(got.len() < sent);
}

/// Sends `request` and reads until the server closes.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the server closes after its reply");
    String::from_utf8(out).expect("an HTTP reply in UTF-8")
}

fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// The status line an upgrade request gets (reading only that far: a 101
/// leaves the connection open).
fn upgrade_status(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before a status line");
        got.push(byte[0]);
    }
    String::from_utf8(got).unwrap().trim_end().to_string()
}

/// Starts the example server with `args`; returns it, the TCP address and
/// the WebSocket address (its second line).
fn example_server(args: &[&str]) -> (Spawned, SocketAddr, SocketAddr) {
    let mut cmd = Command::new(fresh_example("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"])
        .args(args);
    let p = Spawned::start(cmd);
    let tcp = p.listening_addr();
    let line = p.line();
    let ws: SocketAddr = line
        .strip_prefix("websocket on ")
        .unwrap_or_else(|| panic!("second line: {line:?}"))
        .parse()
        .unwrap();
    assert_ne!(ws.port(), 0, "the real port");
    (p, tcp, ws)
}

#[test]
fn the_example_server_serves_the_page_on_its_path_and_origins() {
    let (_server, _tcp, ws) =
        example_server(&["--ws-path", "/custom", "--ws-origins", "http://good.example,null"]);
    let page = http(ws, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = page.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(
        body.contains("<meta name=\"ws-path\" content=\"/custom\">"),
        "the path is filled in"
    );
    for outside in ["http://", "https://", "//cdn", "@import"] {
        assert!(
            !body.contains(outside),
            "the page refers to {outside}: nothing may load from elsewhere"
        );
    }
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Security-Policy: "))
        .expect("a content security policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");

    assert_eq!(
        upgrade_status(ws, &upgrade("/custom", "")),
        "HTTP/1.1 101 Switching Protocols"
    );
    assert_eq!(
        upgrade_status(ws, &upgrade("/chat", "")),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        upgrade_status(ws, &upgrade("/custom", "Origin: http://evil.example\r\n")),
        "HTTP/1.1 403 Forbidden"
    );
    assert_eq!(
        upgrade_status(ws, &upgrade("/custom", "Origin: http://GOOD.example\r\n")),
        "HTTP/1.1 101 Switching Protocols"
    );
    assert_eq!(
        upgrade_status(ws, &upgrade("/custom", "Origin: null\r\n")),
        "HTTP/1.1 101 Switching Protocols"
    );
}

#[test]
fn with_the_tls_flags_the_websocket_listener_is_wss() {
    let pki = Pki::new();
    let chain = pki.path("chain.pem");
    let key = pki.path("server.key");
    let (_server, tcp, ws) = example_server(&[
        "--tls-cert",
        chain.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    // Plain HTTP on it is a failed TLS handshake: nothing comes back but
    // an alert.
    let reply = {
        let mut s = TcpStream::connect(ws).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    assert!(reply.is_empty() || reply[0] == 21, "only a TLS alert: {reply:?}");
    let url = format!("wss://localhost:{}/chat", ws.port());
    run_chat_checks(&url, tcp, Some(&pki.path("ca.pem")));
}
