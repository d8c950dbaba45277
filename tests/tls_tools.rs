//! The TLS test tools (tests/common/tls.rs: the rustls test client, the
//! Python `ssl` client script, `openssl s_client`) against a small frame
//! echo server built on the library's `TlsSession` over real loopback
//! sockets, writing through `sendmsg(MSG_NOSIGNAL)` as the server does. The
//! tools are shown to see what they must (echoed frames in TLS 1.2 and 1.3,
//! close_notify present or missing, a refused certificate), and the session
//! to work with clients nobody here wrote.
//!
//! The echo server understands three payloads: `{"type":"quit"}` (it sends
//! close_notify, then closes), `{"type":"drop"}` (it closes TCP without
//! close_notify), `{"type":"big","n":N}` (it answers one frame of N bytes);
//! it echoes anything else.
mod common;
mod tls_library;

use std::io::{IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver};

use common::tls::{
    client_config, python_tls_client, s_client_command, Pki, TlsEnd, TlsTestClient, ANY_TLS, SERVER_DNS,
    TLS12, TLS13,
};
use common::{Spawned, DEADLINE};
use nix::sys::socket::{sendmsg, MsgFlags};
use rustls::ProtocolVersion;
use serde_json::{json, Value};
use tls_library::{TlsConfig, TlsSession, DEFAULT_WRITE_LIMIT};

/// An echo server for `connections` connections, one thread each; each
/// connection's outcome arrives on `outcomes`.
struct EchoServer {
    addr: SocketAddr,
    outcomes: Receiver<String>,
}

impl EchoServer {
    fn start(pki: &Pki, connections: usize) -> EchoServer {
        EchoServer::serving(&pki.chain_pem, &pki.key_pem, connections)
    }

    fn serving(cert_pem: &[u8], key_pem: &[u8], connections: usize) -> EchoServer {
        let config = TlsConfig::from_pem(cert_pem, key_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((sock, _)) = listener.accept() else { return };
                let (config, tx) = (config.clone(), tx.clone());
                std::thread::spawn(move || {
                    let _ = tx.send(serve(sock, &config));
                });
            }
        });
        EchoServer { addr, outcomes }
    }

    /// The next connection's outcome.
    fn outcome(&self) -> String {
        self.outcomes
            .recv_timeout(DEADLINE)
            .expect("a connection outcome")
    }
}

/// Writes everything the session holds (blocking socket).
fn flush(sock: &TcpStream, session: &mut TlsSession) -> std::io::Result<()> {
    while session.wants_write() {
        session.write_tls_with(|bufs: &[IoSlice<'_>]| {
            sendmsg::<()>(sock.as_raw_fd(), bufs, &[], MsgFlags::MSG_NOSIGNAL, None)
                .map_err(std::io::Error::from)
        })?;
    }
    Ok(())
}

/// Sends one frame through the session, as much as it takes at a time.
fn send_frame(sock: &TcpStream, session: &mut TlsSession, payload: &[u8]) -> std::io::Result<()> {
    let header = (payload.len() as u32).to_be_bytes();
    let total = header.len() + payload.len();
    let mut sent = 0;
    while sent < total {
        let parts: [&[u8]; 2] = if sent < 4 {
            [&header[sent..], payload]
        } else {
            [&[], &payload[sent - 4..]]
        };
        sent += session.send(&[IoSlice::new(parts[0]), IoSlice::new(parts[1])]);
        flush(sock, session)?;
    }
    Ok(())
}

/// One connection: returns what ended it.
fn serve(mut sock: TcpStream, config: &TlsConfig) -> String {
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut session = TlsSession::new(config, DEFAULT_WRITE_LIMIT).unwrap();
    let mut plaintext = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => return "eof".into(),
            Ok(n) => n,
            Err(e) => return format!("read error: {e}"),
        };
        let received = match session.receive(&buf[..n], &mut plaintext) {
            Ok(r) => r,
            Err(failure) => {
                let _ = flush(&sock, &mut session);
                return format!("failed: {failure}");
            }
        };
        while plaintext.len() >= 4 {
            let len = u32::from_be_bytes(plaintext[..4].try_into().unwrap()) as usize;
            if plaintext.len() < 4 + len {
                break;
            }
            let payload: Vec<u8> = plaintext.drain(..4 + len).skip(4).collect();
            let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("quit") => {
                    session.close();
                    let _ = flush(&sock, &mut session);
                    return "quit: close_notify sent".into();
                }
                Some("drop") => return "dropped without close_notify".into(),
                Some("big") => {
                    let n = v["n"].as_u64().unwrap() as usize;
                    let text = json!({"type": "big", "text": "x".repeat(n - 24)}).to_string();
                    assert_eq!(text.len(), n);
                    if send_frame(&sock, &mut session, text.as_bytes()).is_err() {
                        return "write error".into();
                    }
                }
                _ => {
                    if send_frame(&sock, &mut session, &payload).is_err() {
                        return "write error".into();
                    }
                }
            }
        }
        if flush(&sock, &mut session).is_err() {
            return "write error".into();
        }
        if received.peer_closed {
            session.close();
            let _ = flush(&sock, &mut session);
            return "peer sent close_notify; answered".into();
        }
    }
}

#[test]
fn the_rustls_test_client_echoes_in_both_versions_and_sees_close_notify() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 4);
    for (versions, expect) in [
        (TLS13, ProtocolVersion::TLSv1_3),
        (TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let mut c =
            TlsTestClient::connect_with(server.addr, client_config(&pki.ca_pem, versions), SERVER_DNS)
                .unwrap();
        assert_eq!(c.version(), expect);
        c.send(&json!({"type": "hello", "nick": "rust"}));
        assert_eq!(c.recv(), json!({"type": "hello", "nick": "rust"}));
        // A frame larger than a record, split across several.
        c.send(&json!({"type": "big", "n": 100_000}));
        let big = c.recv();
        assert_eq!(big["text"].as_str().unwrap().len(), 100_000 - 24);
        c.send(&json!({"type": "quit"}));
        assert_eq!(c.expect_closed(), (vec![], TlsEnd::CloseNotify));
        assert_eq!(server.outcome(), "quit: close_notify sent");
    }
    // Without close_notify the client says so.
    let mut c = TlsTestClient::connect(server.addr, &pki);
    c.send(&json!({"type": "drop"}));
    assert_eq!(c.expect_closed().1, TlsEnd::EofWithoutCloseNotify);
    assert_eq!(server.outcome(), "dropped without close_notify");
    // By IP address, which the certificate names too.
    let mut c =
        TlsTestClient::connect_with(server.addr, client_config(&pki.ca_pem, ANY_TLS), "127.0.0.1").unwrap();
    c.send_close_notify();
    assert_eq!(c.expect_closed().1, TlsEnd::CloseNotify);
    assert_eq!(server.outcome(), "peer sent close_notify; answered");
}

#[test]
fn a_client_trusting_another_ca_refuses_the_server() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let server = EchoServer::start(&pki, 1);
    let err = TlsTestClient::connect_with(server.addr, client_config(&stranger.ca_pem, ANY_TLS), SERVER_DNS)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let outcome = server.outcome();
    assert!(
        outcome.starts_with("failed: TLS handshake failed: received fatal alert"),
        "{outcome}"
    );
}

#[test]
fn plaintext_to_the_tls_port_gets_one_decode_error_alert_then_eof() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 1);
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    raw.write_all(b"\x00\x00\x00\x1c{\"type\":\"hello\",\"nick\":\"al\"}")
        .unwrap();
    let mut got = Vec::new();
    raw.read_to_end(&mut got).unwrap();
    // A fatal (2) decode_error (50) alert record, TLS 1.2 record version.
    assert_eq!(got, [21, 3, 3, 0, 2, 2, 50]);
    let outcome = server.outcome();
    assert!(
        outcome.contains("InvalidContentType") && outcome.contains("DecodeError"),
        "{outcome}"
    );
}

/// The Python client connected in TLS `version`, trusting the test CA;
/// returned after its `connected` line.
fn python(addr: SocketAddr, pki: &Pki, version: &str) -> Spawned {
    let mut cmd = python_tls_client();
    cmd.args(["--connect", &addr.to_string(), "--tls", version, "--ca"])
        .arg(pki.path("ca.pem"));
    let p = Spawned::start(cmd);
    let first = p.line();
    assert!(first.starts_with(&format!("connected TLSv{version} ")), "{first}");
    p
}

/// The script's next line, which must be `frame JSON`.
fn frame_line(p: &Spawned) -> Value {
    let line = p.line();
    let json = line
        .strip_prefix("frame ")
        .unwrap_or_else(|| panic!("not a frame: {line}"));
    serde_json::from_str(json).unwrap()
}

#[test]
fn python_ssl_in_both_versions_sees_close_notify_or_its_absence() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 6);
    for version in ["1.3", "1.2"] {
        // Echo, then quit: close_notify, then EOF.
        let mut p = python(server.addr, &pki, version);
        p.command(r#"{"type":"hello","nick":"py"}"#);
        assert_eq!(frame_line(&p), json!({"type": "hello", "nick": "py"}));
        p.command(r#"{"type":"big","n":70000}"#);
        let big = frame_line(&p);
        assert_eq!(big["text"].as_str().unwrap().len(), 70_000 - 24);
        p.command(r#"{"type":"quit"}"#);
        assert_eq!(p.line(), "end close_notify");
        assert_eq!(server.outcome(), "quit: close_notify sent");
        assert!(p.wait().success());
        // Dropped without close_notify: the script tells.
        let mut p = python(server.addr, &pki, version);
        p.command(r#"{"type":"drop"}"#);
        assert_eq!(p.line(), "end eof_without_close_notify");
        assert_eq!(server.outcome(), "dropped without close_notify");
        assert!(p.wait().success());
        // The client closes first: the server answers with its own.
        let mut p = python(server.addr, &pki, version);
        p.command("!close");
        assert_eq!(p.line(), "end unwrapped");
        assert_eq!(server.outcome(), "peer sent close_notify; answered");
        assert!(p.wait().success());
    }
}

#[test]
fn openssl_s_client_in_both_versions_gets_the_echo() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 2);
    for version in ["1.3", "1.2"] {
        let mut cmd = s_client_command(server.addr, &pki, version);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start openssl s_client");
        let mut stdin = child.stdin.take().unwrap();
        let hello = br#"{"type":"hello","nick":"ossl"}"#;
        let mut frames = (hello.len() as u32).to_be_bytes().to_vec();
        frames.extend_from_slice(hello);
        let quit = br#"{"type":"quit"}"#;
        frames.extend_from_slice(&(quit.len() as u32).to_be_bytes());
        frames.extend_from_slice(quit);
        stdin.write_all(&frames).unwrap();
        // s_client exits once the server closes; a deadline on it all.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = rx.recv_timeout(DEADLINE).expect("s_client finished").unwrap();
        drop(stdin);
        let mut expected = (hello.len() as u32).to_be_bytes().to_vec();
        expected.extend_from_slice(hello);
        assert_eq!(
            out.stdout,
            expected,
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(server.outcome(), "quit: close_notify sent");
    }
}

// The example client's TLS module (examples/common/tls_client.rs), and
// the verifier it shares with the load generator.
#[path = "../examples/common/any_certificate.rs"]
mod any_certificate;
#[path = "../examples/common/tls_client.rs"]
mod tls_client;

use tls_client::{End, TlsConnector, TlsOptions};

fn with_ca(pki: &Pki) -> TlsConnector {
    TlsConnector::new(&TlsOptions {
        ca_file: Some(pki.path("ca.pem")),
        insecure: false,
    })
    .unwrap()
}

fn framed(v: &Value) -> Vec<u8> {
    let payload = v.to_string().into_bytes();
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend(payload);
    out
}

/// Reads with `read_some` until `want` bytes or the end; returns the bytes
/// and the end, if any.
fn read_until(tls: &mut tls_client::TlsClient, want: usize) -> (Vec<u8>, Option<End>) {
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.len() < want {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing before the deadline"
        );
        let incoming = tls.read_some(&mut got).unwrap();
        if incoming.end.is_some() {
            return (got, incoming.end);
        }
    }
    (got, None)
}

#[test]
fn the_example_client_module_talks_blocking_with_a_ca_file_and_closes_cleanly() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 1);
    let sock = TcpStream::connect(server.addr).unwrap();
    let mut tls = with_ca(&pki).connect(sock, "localhost").unwrap();
    assert!(tls.describe().starts_with("TLSv1.3 TLS13_"), "{}", tls.describe());
    let hello = framed(&json!({"type": "hello", "nick": "ex"}));
    tls.write_all(&hello).unwrap();
    assert_eq!(read_until(&mut tls, hello.len()), (hello, None));
    tls.close().unwrap();
    assert_eq!(read_until(&mut tls, usize::MAX), (vec![], Some(End::CloseNotify)));
    assert_eq!(server.outcome(), "peer sent close_notify; answered");
}

#[test]
fn the_example_client_module_runs_nonblocking_in_a_poll_loop() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 1);
    let sock = TcpStream::connect(server.addr).unwrap();
    let mut tls = with_ca(&pki).connect(sock, "127.0.0.1").unwrap();
    tls.socket().set_nonblocking(true).unwrap();
    // Ten 100 KB frames queued at once: far more than one write takes.
    let big = framed(&json!({"type": "echo", "text": "y".repeat(100_000)}));
    for _ in 0..10 {
        tls.queue(&big);
    }
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut rounds = 0;
    while got.len() < 10 * big.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "echo incomplete: {} bytes",
            got.len()
        );
        rounds += 1;
        tls.flush().unwrap();
        let mut flags = PollFlags::POLLIN;
        if tls.wants_write() {
            flags |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(tls.socket().as_fd(), flags)];
        poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
        if fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
            let incoming = tls.read_some(&mut got).unwrap();
            assert_eq!(incoming.end, None);
        }
    }
    assert!(rounds > 1, "the loop really waited on the socket");
    assert_eq!(got, big.repeat(10));
    tls.queue(&framed(&json!({"type": "quit"})));
    while !tls.flush().unwrap() {}
    tls.socket().set_nonblocking(false).unwrap();
    assert_eq!(read_until(&mut tls, usize::MAX).1, Some(End::CloseNotify));
    assert_eq!(server.outcome(), "quit: close_notify sent");
}

#[test]
fn the_example_client_module_refuses_what_it_cannot_verify_and_says_what_to_do() {
    let pki = Pki::new();
    let server = EchoServer::start(&pki, 4);
    // The system's roots do not include the test CA.
    common::tls::ensure_system_roots();
    let system = TlsConnector::new(&TlsOptions::default()).unwrap();
    let err = system
        .connect(TcpStream::connect(server.addr).unwrap(), "localhost")
        .err()
        .unwrap();
    assert!(
        err.0.contains("not signed by the system's CA certificates")
            && err.0.contains("--ca FILE")
            && err.0.contains("--insecure"),
        "{err}"
    );
    // A name the certificate does not list.
    let err = with_ca(&pki)
        .connect(TcpStream::connect(server.addr).unwrap(), "chat.example.com")
        .err()
        .unwrap();
    assert!(
        err.0.contains("is not valid for the name \"chat.example.com\""),
        "{err}"
    );
    // A server presenting a CA certificate as its own (a self-signed
    // certificate made without CA:FALSE).
    let ca_key = std::fs::read(pki.path("ca.key")).unwrap();
    let ca_as_leaf = EchoServer::serving(&pki.ca_pem, &ca_key, 1);
    let err = with_ca(&pki)
        .connect(TcpStream::connect(ca_as_leaf.addr).unwrap(), "localhost")
        .err()
        .unwrap();
    assert!(
        err.0.contains("is a CA certificate used as a server certificate"),
        "{err}"
    );
    // --insecure connects anyway, and the session works.
    let insecure = TlsConnector::new(&TlsOptions {
        ca_file: None,
        insecure: true,
    })
    .unwrap();
    let mut tls = insecure
        .connect(TcpStream::connect(server.addr).unwrap(), "localhost")
        .unwrap();
    let ping = framed(&json!({"type": "ping"}));
    tls.write_all(&ping).unwrap();
    assert_eq!(read_until(&mut tls, ping.len()).0, ping);
    drop(tls);
    let mut outcomes: Vec<String> = (0..3).map(|_| server.outcome()).collect();
    outcomes.sort();
    assert_eq!(outcomes[0], "eof", "{outcomes:?}");
    assert!(
        outcomes[1..].iter().all(|o| o.contains("received fatal alert")),
        "{outcomes:?}"
    );
}

#[test]
fn the_example_client_module_names_a_plain_port_and_bad_ca_files() {
    let pki = Pki::new();
    // A plain chat port answers a ClientHello with an error frame.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = plain.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&framed(&json!({"type": "error", "code": "frame_too_large"})));
    });
    let err = with_ca(&pki)
        .connect(TcpStream::connect(addr).unwrap(), "localhost")
        .err()
        .unwrap();
    assert!(err.0.contains("did not answer in TLS"), "{err}");
    // CA files that hold no CA.
    let missing = TlsConnector::new(&TlsOptions {
        ca_file: Some(pki.path("no-such.pem")),
        insecure: false,
    })
    .err()
    .unwrap();
    assert!(missing.0.starts_with("cannot read the CA file"), "{missing}");
    let key_only = TlsConnector::new(&TlsOptions {
        ca_file: Some(pki.path("server.key")),
        insecure: false,
    })
    .err()
    .unwrap();
    assert!(key_only.0.contains("holds no certificate"), "{key_only}");
}
