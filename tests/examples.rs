//! The example programs driven as a person would: spawned, fed through
//! pipes, read line by line.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn server() -> (Spawned, std::net::SocketAddr) {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0"]).stderr(Stdio::piped());
    spawn_listening(cmd)
}

fn client(addr: std::net::SocketAddr, nick: &str) -> Spawned {
    client_with(addr, nick, &[])
}

fn client_with(addr: std::net::SocketAddr, nick: &str, extra: &[&str]) -> Spawned {
    let child = Command::new(example_bin("chat_client"))
        .args(["--connect", &addr.to_string(), "--nick", nick])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat_client");
    Spawned::new(child)
}

#[test]
fn two_clients_talk_through_the_example_server() {
    let (mut srv, addr) = server();
    let mut bob = client(addr, "bob");
    assert_eq!(bob.line(), "* connected as bob; online: bob");

    // alice is scripted: her input ends after two lines, so she quits.
    let mut alice = client(addr, "alice");
    alice.command("/msg bob hi bob");
    alice.command("hello all");
    alice.close_stdin();
    assert_eq!(alice.line(), "* connected as alice; online: alice, bob");
    assert!(alice.wait().success(), "alice exits 0 at the end of her input");

    assert_eq!(bob.line(), "* alice is online");
    assert_eq!(bob.line(), "<alice (private)> hi bob");
    assert_eq!(bob.line(), "<alice> hello all");
    assert_eq!(bob.line(), "* alice left (quit)");

    // An unknown nick and /who, answered on stderr and stdout. In this
    // order: the server answers a client's frames in order, so once the
    // /who answer is printed the error was read (and printed) before it.
    let mut bob_in = bob.take_stdin();
    bob_in.write_all(b"/msg carol hey\n/who\n").unwrap();
    assert_eq!(bob.line(), "* online: bob");

    // SIGTERM: the server tells bob it is going away and exits cleanly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(srv.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(srv.wait().success(), "server exits 0 on SIGTERM");
    let status = bob.wait();
    assert_eq!(
        status.code(),
        Some(1),
        "bob exits non-zero when the server drops him"
    );
    let bob_err = bob.stderr();
    assert!(bob_err.contains("! no such user: carol"), "{bob_err}");
    assert!(bob_err.contains("the server is shutting down"), "{bob_err}");
    drop(bob_in);

    let log = srv.stderr();
    for needle in [
        "registered as alice",
        "alice left (quit)",
        "bob left (shutdown)",
        "stats:",
    ] {
        assert!(log.contains(needle), "server log lacks {needle:?}:\n{log}");
    }
}

#[test]
fn client_reports_a_taken_nick_and_an_unreachable_server() {
    let server = ServerThread::default();
    let _alice = TestClient::hello(server.addr, "alice");
    let mut dup = client(server.addr, "ALICE");
    assert_eq!(dup.wait().code(), Some(2));
    assert!(dup.stderr().contains("cannot join as ALICE: that nick is taken"));

    // A port nobody listens on: bind one, learn it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut nobody = client(port, "x");
    assert_eq!(nobody.wait().code(), Some(1));
    assert!(nobody.stderr().contains("cannot connect"));
}

#[test]
fn client_answers_pings_and_prints_host_frames() {
    let server = ServerThread::default();
    let mut c = client(server.addr, "carol");
    assert_eq!(c.line(), "* connected as carol; online: carol");
    let id = server
        .event_until(|e| matches!(e.kind, chat::EventKind::Registered))
        .client;
    server.with(move |s| s.send(id, br#"{"type":"ping","id":7}"#).unwrap());
    server.with(move |s| s.send(id, br#"{"type":"banner","text":"line\nbreak"}"#).unwrap());
    assert_eq!(c.line(), "* line\\nbreak", "control characters are escaped");
    // The ping was answered, not printed: the banner was the next line.
    c.close_stdin();
    assert!(c.wait().success());
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        chat::EventKind::Disconnected {
            reason: chat::Reason::Quit
        }
    ));
}

#[test]
fn server_prints_help_and_rejects_bad_flags() {
    let out = Command::new(example_bin("chat_server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--max-clients",
        "--max-frame-bytes",
        "--max-queue-bytes",
        "--idle-timeout-ms",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(example_bin("chat_server"))
        .args(["--max-frame-bytes", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-frame-bytes"), "{err}");
}

#[test]
fn three_users_and_a_room() {
    let (_srv, addr) = server();
    let mut alice = client(addr, "alice");
    assert_eq!(alice.line(), "* connected as alice; online: alice");
    let mut bob = client(addr, "bob");
    assert_eq!(bob.line(), "* connected as bob; online: alice, bob");
    let mut carol = client(addr, "carol");
    assert_eq!(carol.line(), "* connected as carol; online: alice, bob, carol");
    let mut alice_in = alice.take_stdin();
    let mut bob_in = bob.take_stdin();
    let mut carol_in = carol.take_stdin();

    alice_in.write_all(b"/join #rust\n").unwrap();
    assert_eq!(alice.line(), "* bob is online");
    assert_eq!(alice.line(), "* carol is online");
    assert_eq!(alice.line(), "* you joined #rust; members: alice");
    bob_in.write_all(b"/join #Rust\n#rust hello room\n").unwrap();
    assert_eq!(bob.line(), "* carol is online");
    assert_eq!(bob.line(), "* you joined #rust; members: alice, bob");
    assert_eq!(alice.line(), "* bob joined #rust");
    assert_eq!(alice.line(), "[#rust] <bob> hello room");
    bob_in.write_all(b"/rooms\n").unwrap();
    assert_eq!(bob.line(), "* your rooms: #rust");

    // carol is not in the room: she heard nothing of it.
    carol_in.write_all(b"/room #rust can I?\n/who\n").unwrap();
    assert_eq!(carol.line(), "* online: alice, bob, carol");
    alice_in.write_all(b"/part #rust\n").unwrap();
    assert_eq!(alice.line(), "* you left #rust");
    assert_eq!(bob.line(), "* alice parted #rust");
    drop((alice_in, bob_in, carol_in));
    assert!(alice.wait().success());
    assert!(bob.wait().success());
    // Her room line did not go through: a script learns it from the status.
    assert_eq!(carol.wait().code(), Some(3));
    assert!(carol.stderr().contains("you are not in #rust"));
}

#[test]
fn server_prints_stats_on_sigusr1_and_at_exit() {
    let (mut srv, addr) = server();
    let mut probe = common::TestClient::hello(addr, "probe");
    let pid = nix::unistd::Pid::from_raw(srv.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    // A round trip after the signal: the round that answers it has seen
    // the signal, and prints the counters at its end.
    probe.send(&serde_json::json!({"type": "ping", "id": 1}));
    assert_eq!(probe.recv()["type"], "pong");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(srv.wait().success());
    let log = srv.stderr();
    let stats: Vec<&str> = log.lines().filter(|l| l.contains(" stats: ")).collect();
    assert_eq!(stats.len(), 2, "one on SIGUSR1, one at exit:\n{log}");
    assert!(stats[0].contains("clients 1 registered 1"), "{}", stats[0]);
    assert!(stats[1].contains("shutdown=1"), "{}", stats[1]);
}

#[test]
fn client_sends_its_token_and_reports_a_rejection() {
    let cfg = chat::Config {
        approve_registrations: true,
        ..common::loopback_config()
    };
    let server = ServerThread::start(cfg);
    let with_token = client_with(server.addr, "alice", &["--token", "s3cret"]);
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::ApprovalRequested { .. }));
    let chat::EventKind::ApprovalRequested { token } = &ev.kind else {
        unreachable!()
    };
    assert_eq!(token.as_deref(), Some("s3cret"));
    let id = ev.client;
    server.with(move |s| s.approve(id)).unwrap();
    assert_eq!(with_token.line(), "* connected as alice; online: alice");

    let mut without = client_with(server.addr, "mallory", &[]);
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::ApprovalRequested { token: None }));
    let id = ev.client;
    server.with(move |s| s.reject(id, Some("unknown token"))).unwrap();
    assert_eq!(without.wait().code(), Some(2));
    assert!(without.stderr().contains("the server refused you: unknown token"));
}
