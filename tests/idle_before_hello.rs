//! A connection that never sends `hello` is dropped as `timeout` at the
//! idle timeout when that is shorter than the handshake timeout: in the
//! core (virtual clock), over TCP, and before and after a TLS handshake or
//! a WebSocket upgrade. Each server here has a handshake timeout of a
//! minute, far past the test's own deadline for any wait: a connection
//! closed within that deadline was closed by the idle timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chat::testing::Pipe;
use chat::{Config, EventKind, Reason, TlsPem};
use common::tls::{Pki, TlsTestClient};
use common::*;
use serde_json::{json, Value};

const IDLE: Duration = Duration::from_millis(300);
const HANDSHAKE: Duration = Duration::from_secs(60);

fn config() -> Config {
    Config {
        idle_timeout: Some(IDLE),
        handshake_timeout: Some(HANDSHAKE),
        ..loopback_config()
    }
}

/// Everything the server sends until it closes (within `DEADLINE`, or the
/// read fails the test).
fn read_to_close(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("not closed before the deadline: {e}"),
        }
    }
}

fn timed_out(server: &ServerThread) {
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert!(
        matches!(
            ev.kind,
            EventKind::Disconnected {
                reason: Reason::Timeout
            }
        ),
        "{ev:?}"
    );
}

#[test]
fn in_the_core_a_silent_connection_goes_at_the_idle_timeout_not_the_handshake_timeout() {
    let pipe = Pipe::start(config());
    let mut c = pipe.connect();
    pipe.advance(IDLE - Duration::from_millis(1));
    assert!(!c.server_closed(), "not before the idle timeout");
    pipe.advance(Duration::from_millis(1));
    let seen = c.expect_closed();
    assert_eq!(
        seen.last(),
        Some(&json!({"type": "error", "code": "timeout"})),
        "{seen:?}"
    );
    let ev = pipe.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        EventKind::Disconnected {
            reason: Reason::Timeout
        }
    ));
    // A connection that speaks, but never registers, is not idle: it goes at
    // the handshake timeout.
    let mut talker = pipe.connect();
    for _ in 0..10 {
        pipe.advance(IDLE / 2);
        talker.send(&json!({"type": "ping", "id": 1}));
        assert_eq!(
            talker.recv_until(|v| v["type"] == "error")["code"],
            "not_registered"
        );
    }
    assert!(!talker.server_closed());
}

#[test]
fn over_tcp_a_connection_without_hello_is_dropped_at_the_idle_timeout() {
    let server = ServerThread::start(config());
    let c = TestClient::connect(server.addr);
    let bytes = read_to_close(c.stream);
    let payload: Value = serde_json::from_slice(&bytes[4..]).unwrap();
    assert_eq!(payload, json!({"type": "error", "code": "timeout"}));
    timed_out(&server);
    assert_eq!(server.with(|s| s.stats()).disconnects_for(Reason::Timeout), 1);
}

#[test]
fn a_websocket_connection_that_never_upgrades_or_never_says_hello_is_dropped_at_the_idle_timeout() {
    let server = ServerThread::start(Config {
        ws_listen_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..config()
    });
    let ws = server.with(|s| s.ws_addr().unwrap());
    // Silent before the upgrade: closed, a failed handshake.
    let silent = TcpStream::connect(ws).unwrap();
    read_to_close(silent);
    assert_eq!(server.with(|s| s.stats()).failed_handshakes, 1);
    // Upgraded, then silent: the timeout error, then the close frame.
    let mut upgraded = TcpStream::connect(ws).unwrap();
    upgraded
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let text = String::from_utf8_lossy(&read_to_close(upgraded)).into_owned();
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains(r#"{"type":"error","code":"timeout"}"#), "{text}");
    timed_out(&server);
}

#[test]
fn a_tls_connection_that_never_handshakes_or_never_says_hello_is_dropped_at_the_idle_timeout() {
    let pki = Pki::new();
    let server = ServerThread::start(Config {
        tls: Some(TlsPem {
            cert_chain: pki.chain_pem.clone(),
            private_key: pki.key_pem.clone(),
        }),
        ..config()
    });
    // Silent before the TLS handshake: closed, a failed handshake.
    read_to_close(TcpStream::connect(server.addr).unwrap());
    assert_eq!(server.with(|s| s.stats()).failed_handshakes, 1);
    // Handshaken, then silent: the timeout error, then closed.
    let mut c = TlsTestClient::connect(server.addr, &pki);
    let mut seen = Vec::new();
    while let Some(v) = c.try_recv() {
        seen.push(v);
    }
    assert_eq!(
        seen.last(),
        Some(&json!({"type": "error", "code": "timeout"})),
        "{seen:?}"
    );
    timed_out(&server);
}
