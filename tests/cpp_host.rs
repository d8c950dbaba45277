//! The C++ binding (bindings/cpp/chat.hpp) and its example host
//! (examples/cpp_host.cpp), built with g++ against libchat.a and libchat.so
//! and driven over loopback by real clients.

mod common;
mod cpp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::TestClient;
use cpp::{compile, compile_with, Link, Program};
use serde_json::{json, Value};

fn static_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("examples/cpp_host.cpp", "cpp_host-static", Link::Static))
}

fn shared_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("examples/cpp_host.cpp", "cpp_host-shared", Link::Shared))
}

fn start(bin: &Path) -> (Program, SocketAddr) {
    Program::start_listening(bin, &["127.0.0.1:0"])
}

/// Splits `WORD ID REST` and checks WORD; returns (ID, REST).
fn logged<'a>(line: &'a str, word: &str) -> (u64, &'a str) {
    let rest = line
        .strip_prefix(word)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected a {word:?} line, got {line:?}"));
    let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    (id.parse().unwrap_or_else(|_| panic!("no id in {line:?}")), rest)
}

/// Registers `nick` and checks the host's log and banner; returns the client
/// and its id.
fn join(host: &Program, addr: SocketAddr, nick: &str) -> (TestClient, u64) {
    let mut c = TestClient::hello(addr, nick);
    let line = host.line();
    let (id, peer) = logged(&line, "connected");
    assert_eq!(peer, c.stream.local_addr().unwrap().to_string());
    assert_eq!(host.line(), format!("registered {id} {nick}"));
    assert_eq!(
        c.recv(),
        json!({"type":"banner","text":format!("welcome, {nick}")})
    );
    (c, id)
}

/// Checks a `message ID NICK JSON` line.
fn expect_message(host: &Program, id: u64, nick: &str, want: Value) {
    let line = host.line();
    let (got_id, rest) = logged(&line, "message");
    assert_eq!(got_id, id, "{line}");
    let json = rest
        .strip_prefix(nick)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected {nick} in {line:?}"));
    assert_eq!(serde_json::from_str::<Value>(json).unwrap(), want);
}

/// The whole life of a host: two users, their traffic, the operator console,
/// a kick, stats, and shutdown at stdin EOF.
fn host_session(bin: &Path) {
    let (mut host, addr) = start(bin);
    let (mut alice, alice_id) = join(&host, addr, "alice");
    let (mut bob, bob_id) = join(&host, addr, "bob");
    assert_ne!(alice_id, bob_id);
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"online"})
    );

    alice.send(&json!({"type":"msg","to":"bob","text":"hi bob"}));
    let unicast = json!({"type":"msg","from":"alice","to":"bob","text":"hi bob"});
    assert_eq!(bob.recv(), unicast);
    expect_message(&host, alice_id, "alice", unicast);

    bob.send(&json!({"type":"all","text":"hello all"}));
    let everyone = json!({"type":"all","from":"bob","text":"hello all"});
    assert_eq!(alice.recv(), everyone);
    expect_message(&host, bob_id, "bob", everyone);

    // Quotes, a backslash, a tab, a control character and non-ASCII text
    // must all survive the host's JSON escaping.
    let text = "say \"hi\" \\ there\tnow \u{1} caf\u{e9} \u{2713}";
    host.command(&format!("/say {text}"));
    assert_eq!(host.line(), "said to 2");
    let said = json!({"type":"all","from":"host","text":text});
    assert_eq!(alice.recv(), said);
    assert_eq!(bob.recv(), said);

    host.command("/kick bob");
    assert_eq!(
        bob.expect_closed(),
        vec![json!({"type":"error","code":"kicked","message":"kicked by the operator"})]
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"kicked"})
    );
    assert_eq!(host.line(), format!("disconnected {bob_id} bob kicked"));

    host.command("/stats");
    let line = host.line();
    let stats: HashMap<&str, u64> = line
        .strip_prefix("stats ")
        .unwrap_or_else(|| panic!("expected stats, got {line:?}"))
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    assert_eq!(stats["accepted"], 2, "{line}");
    assert_eq!(stats["registered"], 1, "{line}");
    assert_eq!(stats["kicked"], 1, "{line}");

    host.close_stdin();
    assert_eq!(
        alice.expect_closed(),
        vec![json!({"type":"error","code":"shutdown"})]
    );
    assert_eq!(host.line(), format!("disconnected {alice_id} alice shutdown"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success());
}

#[test]
fn host_linked_statically_runs_a_session() {
    host_session(static_host());
}

#[test]
fn host_linked_dynamically_runs_a_session() {
    host_session(shared_host());
}

/// The same session with AddressSanitizer and UBSan watching the C++ side:
/// event views used after the call that ends them would show up here.
#[test]
fn host_under_sanitizers_runs_a_session() {
    let bin = compile_with(
        "examples/cpp_host.cpp",
        "cpp_host-asan",
        Link::Static,
        &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"],
    );
    host_session(&bin);
}

#[test]
fn sigterm_shuts_the_host_down_gracefully() {
    let (mut host, addr) = start(static_host());
    let (mut carol, carol_id) = join(&host, addr, "carol");
    let killed = Command::new("kill")
        .args(["-TERM", &host.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    assert_eq!(
        carol.expect_closed(),
        vec![json!({"type":"error","code":"shutdown"})]
    );
    assert_eq!(host.line(), format!("disconnected {carol_id} carol shutdown"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success());
}

#[test]
fn wrapper_is_move_only_and_errors_carry_codes() {
    let bin = compile("tests/cpp/wrapper_check.cpp", "wrapper_check", Link::Static);
    let out = Command::new(&bin).output().expect("run wrapper_check");
    assert!(
        out.status.success(),
        "wrapper_check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
