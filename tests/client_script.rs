//! chat_client with piped input: the scripted mode. Plain lines out (no
//! escape sequences, no prompt), and an exit status a script can trust.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn script(addr: &str, nick: &str, extra: &[&str]) -> Spawned {
    let mut cmd = Command::new(example_bin("chat_client"));
    cmd.args(["--connect", addr, "--nick", nick]).args(extra);
    Spawned::start(cmd)
}

/// Runs a script to its end: (status, stdout lines, stderr).
fn run(addr: SocketAddr, nick: &str, input: &str, extra: &[&str]) -> (ExitStatus, Vec<String>, String) {
    let mut c = script(&addr.to_string(), nick, extra);
    let mut stdin = c.take_stdin();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    c.finish()
}

#[test]
fn a_script_that_went_through_exits_0() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let (status, out, err) = run(server.addr, "ci", "/msg bob build finished\nall green\n", &[]);
    assert!(status.success(), "{err}");
    assert_eq!(out, ["* connected as ci; online: bob, ci"]);
    assert_eq!(err, "");
    let v = bob.recv_until(|v| v["type"] == "msg");
    assert_eq!(v["text"], "build finished");
    let v = bob.recv_until(|v| v["type"] == "all");
    assert_eq!(v["text"], "all green");
}

#[test]
fn a_failed_delivery_exits_3() {
    let server = ServerThread::default();
    let (status, _, err) = run(server.addr, "ci", "/msg carol are you there\n", &[]);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("! no such user: carol"), "{err}");
    assert!(err.contains("chat_client: 1 line did not go through"), "{err}");

    let (status, _, err) = run(server.addr, "ci", "#rust hello\n/part #rust\n", &[]);
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(err.matches("! you are not in #rust").count(), 2, "{err}");
    assert!(err.contains("2 lines did not go through"), "{err}");

    // A mistake in the script itself counts too.
    let (status, _, err) = run(server.addr, "ci", "/msg bob\n", &[]);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("usage: /msg NICK TEXT"), "{err}");
}

#[test]
fn a_lost_connection_exits_1_and_says_so_once() {
    // A server that welcomes, then hangs up while the script still runs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut hello).unwrap();
        let welcome = json!({"type": "welcome", "nick": "ci", "users": ["ci"]}).to_string();
        s.write_all(&(welcome.len() as u32).to_be_bytes()).unwrap();
        s.write_all(welcome.as_bytes()).unwrap();
    });
    let c = script(&addr.to_string(), "ci", &[]);
    assert_eq!(c.line(), "* connected as ci; online: ci");
    fake.join().unwrap();
    let (status, rest, err) = c.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        err,
        "chat_client: disconnected: the server closed the connection\n"
    );

    // The server going away says why, once.
    let server = ServerThread::default();
    let c = script(&server.addr.to_string(), "ci", &[]);
    assert_eq!(c.line(), "* connected as ci; online: ci");
    drop(server);
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err, "chat_client: disconnected: the server is shutting down\n");
}

#[test]
fn a_closed_stdout_is_not_a_lost_connection() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    // Nobody reads what the client prints: its first line meets EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(example_bin("chat_client"))
        .args(["--connect", &server.addr.to_string(), "--nick", "ci"])
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Sent once the client is registered, so after its welcome line.
    stdin.write_all(b"/msg bob still here\n").unwrap();
    drop(stdin);
    let v = bob.recv_until(|v| v["type"] == "msg");
    assert_eq!(v["text"], "still here");
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the client did not exit");
        // Polling a child's exit: std has no wait with a timeout.
        std::thread::park_timeout(Duration::from_millis(10));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(err, "");
}

#[test]
fn quiet_prints_messages_but_no_status_lines() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut c = script(&server.addr.to_string(), "ci", &["--quiet"]);
    bob.recv_until(|v| v["type"] == "presence" && v["nick"] == "ci");
    bob.send(&json!({"type": "msg", "to": "ci", "text": "ping me back"}));
    assert_eq!(c.line(), "<bob (private)> ping me back");
    c.close_stdin();
    let (status, rest, err) = c.finish();
    assert!(status.success(), "{err}");
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn connect_resolves_names_and_takes_ipv6() {
    let server = ServerThread::default();
    let port = server.addr.port();
    let mut c = script(&format!("localhost:{port}"), "byname", &[]);
    assert_eq!(c.line(), "* connected as byname; online: byname");
    c.close_stdin();
    assert!(c.wait().success());

    let v6 = ServerThread::start(chat::Config {
        listen_addr: "[::1]:0".parse().unwrap(),
        ..loopback_config()
    });
    let mut c = script(&v6.addr.to_string(), "six", &[]);
    assert_eq!(c.line(), "* connected as six; online: six");
    c.close_stdin();
    assert!(c.wait().success());

    let (status, _, err) = script("no-port-here", "x", &[]).finish();
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("is not HOST:PORT"), "{err}");
}

#[test]
fn a_silent_or_missing_server_exits_1_with_a_reason() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = script(
        &silent.local_addr().unwrap().to_string(),
        "x",
        &["--timeout-ms", "200"],
    );
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.contains("is not answering (connected, but no reply to hello"),
        "{err}"
    );

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (status, _, err) = script(&port.to_string(), "x", &[]).finish();
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("cannot connect to") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("os error"), "no Rust words: {err}");
}

/// A listener whose accept queue is full: a further connect gets no answer
/// at all (its SYN is dropped), as from a host that is down. Returns the
/// listener, the connection filling its queue, and its address.
fn unanswering_listener() -> (std::os::fd::OwnedFd, std::net::TcpStream, SocketAddr) {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    socket::listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let bound: SockaddrIn = socket::getsockname(fd.as_raw_fd()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let filler = std::net::TcpStream::connect(addr).unwrap();
    (fd, filler, addr)
}

#[test]
fn a_connection_that_never_completes_is_not_answering() {
    let (_listener, _filler, addr) = unanswering_listener();
    let (status, out, err) = script(&addr.to_string(), "x", &["--timeout-ms", "300"]).finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.contains(&format!(
            "the server at {addr} is not answering (no connection in 0.3 s"
        )),
        "{err}"
    );
}

#[test]
fn a_script_must_name_its_nick() {
    let server = ServerThread::default();
    let mut cmd = Command::new(example_bin("chat_client"));
    cmd.args(["--connect", &server.addr.to_string()]);
    let (status, _, err) = Spawned::start(cmd).finish();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("--nick is needed"), "{err}");
}

#[test]
fn help_and_version_describe_the_client() {
    let out = Command::new(example_bin("chat_client"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "chat_client 0.1.0\n");
    let out = Command::new(example_bin("chat_client"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Talk to a chat server from a terminal"), "{help}");
    assert!(
        !help.contains("embeddable"),
        "not the library's description: {help}"
    );
    for default in [
        "[default: 127.0.0.1:7878]",
        "[default: 10000]",
        "[default: 300000]",
    ] {
        assert!(help.contains(default), "--help lacks {default}: {help}");
    }
    for flag in [
        "--connect",
        "--nick",
        "--token",
        "--quiet",
        "--timeout-ms",
        "--reconnect-ms",
        "--tls",
        "--ca",
        "--insecure",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn scripted_output_has_no_escape_sequences() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let c = script(&server.addr.to_string(), "ci", &[]);
    assert_eq!(c.line(), "* connected as ci; online: bob, ci");
    bob.send(&json!({"type": "all", "text": "\u{1b}[31mred\u{1b}[0m hey ci"}));
    assert_eq!(c.line(), r"<bob> \u{1b}[31mred\u{1b}[0m hey ci");
}
