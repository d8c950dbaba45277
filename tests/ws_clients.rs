//! The WebSocket codec and handshake over real loopback sockets, through
//! the echo example (chat settings: path `/chat`, text only, 64 KiB
//! messages): two independent Python clients (`websockets`,
//! `websocket-client`, pinned and installed here if missing) check round
//! trips, fragments, pings, the closing handshake and every close code;
//! raw sockets check the HTTP side (the page, errors, Origin, bytes sent
//! right after the request head).

mod common;
mod ws_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use ws_support::{arg, ensure_python_packages, pinned, python, run_with_deadline, ws_echo_bin};

const REQUIREMENTS: &str = "tests/ws_clients/requirements.txt";
const MAX_MESSAGE: usize = 65536;

fn start_echo(extra: &[&str]) -> (common::Spawned, SocketAddr) {
    let mut cmd = Command::new(ws_echo_bin());
    cmd.args(["--listen", "127.0.0.1:0"]).args(extra);
    common::spawn_listening(cmd)
}

/// Sends `request` and reads until the server closes.
fn http(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the server closes after its reply");
    out
}

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client text frame.
fn client_text(text: &str) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    assert!(text.len() < 126);
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn python_clients_see_every_rule() {
    let ws = pinned(REQUIREMENTS, "websockets");
    let wc = pinned(REQUIREMENTS, "websocket-client");
    ensure_python_packages(
        REQUIREMENTS,
        &format!(
            "import importlib.metadata as m, websockets, websocket; \
             assert m.version('websockets') == '{ws}' and m.version('websocket-client') == '{wc}'"
        ),
    );
    let (echo, addr) = start_echo(&[]);
    let mut run = python();
    run.arg(arg("tests/ws_clients/clients.py"))
        .arg(format!("ws://{addr}/chat"))
        .arg(MAX_MESSAGE.to_string());
    let out = run_with_deadline(run, Duration::from_secs(120), "the Python clients");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "websockets text round trip",
        "websockets fragmented message",
        "websockets ping",
        "websockets closing handshake",
        "websockets binary closes with 1003",
        "websockets oversized closes with 1009",
        "websockets oversized fragments close with 1009",
        "websocket-client fragments around a ping",
        "websocket-client closing handshake",
        "websocket-client invalid UTF-8 closes with 1007",
        "websocket-client invalid UTF-8 across fragments closes with 1007 before the end",
        "websocket-client reserved bit closes with 1002",
        "websocket-client unmasked frame closes with 1002",
        "websocket-client stray continuation closes with 1002",
        "websocket-client oversized ping closes with 1002",
        "websocket-client binary closes with 1003",
        "websocket-client vanished",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "{check} not checked:\n{stdout}"
        );
    }
    // The server told each ending apart: a closing handshake, a peer that
    // vanished, and its own failures with their codes.
    let mut want = vec![
        "closing handshake done",
        "peer vanished",
        "failed 1003",
        "failed 1009",
        "failed 1007",
        "failed 1002",
    ];
    while !want.is_empty() {
        let line = echo.line();
        want.retain(|w| !line.contains(w));
    }
}

#[test]
fn bytes_right_after_the_request_head_are_frames() {
    let (_echo, addr) = start_echo(&[]);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    // The request and two frames in one write.
    let mut bytes = upgrade_request("").into_bytes();
    bytes.extend(client_text("first"));
    bytes.extend(client_text("second"));
    s.write_all(&bytes).unwrap();
    let expected_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let mut want = expected_head.as_bytes().to_vec();
    want.extend_from_slice(b"\x81\x05first\x81\x06second");
    let mut got = vec![0; want.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
}

#[test]
fn the_page_and_http_errors_over_a_socket() {
    let (_echo, addr) = start_echo(&["--origins", "http://good.example"]);
    let page = http(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8(page).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"));
    assert!(head.contains("\r\nCache-Control: no-cache\r\n"));
    assert!(
        body.contains("<meta name=\"ws-path\" content=\"/chat\">"),
        "the path is filled in"
    );
    assert!(body.trim_end().ends_with("</html>"));

    let status = |bytes: &[u8]| {
        String::from_utf8_lossy(&http(addr, bytes))
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        status(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"),
        "HTTP/1.1 426 Upgrade Required"
    );
    assert_eq!(
        status(b"\x16\x03\x01 not http\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    let evil = upgrade_request("Origin: http://evil.example\r\n");
    assert_eq!(status(evil.as_bytes()), "HTTP/1.1 403 Forbidden");
    let old = upgrade_request("").replace("Version: 13", "Version: 8");
    let reply = String::from_utf8(http(addr, old.as_bytes())).unwrap();
    assert!(reply.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{reply}");
    assert!(reply.contains("\r\nSec-WebSocket-Version: 13\r\n"));

    // The allowed origin upgrades.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    s.write_all(upgrade_request("Origin: http://good.example\r\n").as_bytes())
        .unwrap();
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 101");
}
