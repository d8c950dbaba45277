//! The C ABI from C: examples/c_host.c built with gcc against include/chat.h
//! and libchat.a, libchat.so, and libchat.a with ASan+UBSan, each driven over
//! loopback by real clients; and tests/c/misuse.c, which calls every
//! function wrongly and checks the named error codes.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{artifact_dir, built_library, spawn_listening, start_listening, Spawned, TestClient};
use serde_json::{json, Value};

/// How a C program is linked.
#[derive(Clone, Copy, Debug)]
enum Link {
    /// libchat.a, then -lpthread -ldl -lm.
    Static,
    /// libchat.so, found at run time through -rpath.
    Shared,
    /// libchat.a, with the C side built under ASan and UBSan.
    Sanitized,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `source` (relative to the crate) into the target dir; panics
/// with gcc's output if it does not compile cleanly.
fn compile(source: &str, name: &str, link: Link) -> PathBuf {
    let out_dir = artifact_dir().join("c_abi");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(name);
    // cargo test leaves both libraries side by side (see built_library).
    let libs = built_library("libchat.so").parent().unwrap().to_path_buf();
    let mut cmd = Command::new("gcc");
    cmd.current_dir(crate_dir())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-Iinclude")
        .arg(source)
        .arg("-o")
        .arg(&out);
    match link {
        Link::Static => {
            cmd.arg(libs.join("libchat.a")).args(["-lpthread", "-ldl", "-lm"]);
        }
        Link::Shared => {
            cmd.arg(format!("-L{}", libs.display()))
                .arg("-lchat")
                .arg(format!("-Wl,-rpath,{}", libs.display()))
                // DT_RPATH, not RUNPATH: it wins over LD_LIBRARY_PATH, which
                // cargo sets to include <target>/debug, where an older
                // `cargo build` may have left a stale libchat.so.
                .arg("-Wl,--disable-new-dtags");
        }
        Link::Sanitized => {
            cmd.args([
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer",
            ])
            .arg(libs.join("libchat.a"))
            .args(["-lpthread", "-ldl", "-lm"]);
        }
    }
    let result = cmd.output().expect("run gcc");
    assert!(
        result.status.success(),
        "gcc {source} ({link:?}) failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

fn host_bin(link: Link) -> &'static Path {
    static STATIC: OnceLock<PathBuf> = OnceLock::new();
    static SHARED: OnceLock<PathBuf> = OnceLock::new();
    static SANITIZED: OnceLock<PathBuf> = OnceLock::new();
    let (cell, name) = match link {
        Link::Static => (&STATIC, "c_host-static"),
        Link::Shared => (&SHARED, "c_host-shared"),
        Link::Sanitized => (&SANITIZED, "c_host-asan"),
    };
    cell.get_or_init(|| compile("examples/c_host.c", name, link))
}

/// A C program under test, with the sanitizers' options set (for the
/// builds that have them): run it with [`Spawned::start`].
fn c_program(bin: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        // Sanitizer reports go to stderr and fail the run with a non-zero
        // exit; the leak checker included.
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=86")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    cmd
}

/// Starts a C host on a free port; returns it and its address.
fn start_host(bin: &Path) -> (Spawned, SocketAddr) {
    start_listening(c_program(bin, &["127.0.0.1:0"]))
}

/// Splits `WORD ID REST`, checking WORD; returns (ID, REST).
fn logged(line: &str, word: &str) -> (u64, String) {
    let rest = line
        .strip_prefix(word)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected a {word:?} line, got {line:?}"));
    let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let id = id.parse().unwrap_or_else(|_| panic!("no id in {line:?}"));
    (id, rest.to_string())
}

/// Registers `nick`, the host's `number`-th user: checks the host's two log
/// lines and the banner.
fn join(host: &Spawned, addr: SocketAddr, nick: &str, number: u64) -> (TestClient, u64) {
    let mut c = TestClient::hello(addr, nick);
    let (id, peer) = logged(&host.line(), "connected");
    assert_eq!(peer, c.stream.local_addr().unwrap().to_string());
    assert_eq!(
        host.line(),
        format!("registered {id} {nick} registration={number}")
    );
    assert_eq!(
        c.recv(),
        json!({"type":"banner","text":format!("welcome, {nick}")})
    );
    (c, id)
}

/// Checks a `message ID NICK JSON` line against what the recipient got.
fn expect_message(host: &Spawned, id: u64, nick: &str, want: &Value) {
    let line = host.line();
    let (got_id, rest) = logged(&line, "message");
    assert_eq!(got_id, id, "{line}");
    let json = rest
        .strip_prefix(nick)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected {nick} in {line:?}"));
    assert_eq!(&serde_json::from_str::<Value>(json).unwrap(), want, "{line}");
}

/// A host's whole life: two users and their traffic, a room, the console
/// (say, room, stats, kick in another case than the nick's), then /quit.
fn host_session(link: Link) {
    let (mut host, addr) = start_host(host_bin(link));
    let (mut alice, alice_id) = join(&host, addr, "alice", 1);
    let (mut bob, bob_id) = join(&host, addr, "bob", 2);
    assert_ne!(alice_id, bob_id);
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"online"})
    );

    alice.send(&json!({"type":"msg","to":"bob","text":"hi bob"}));
    let unicast = bob.recv();
    assert_eq!(
        unicast,
        json!({"type":"msg","from":"alice","to":"bob","text":"hi bob"})
    );
    expect_message(&host, alice_id, "alice", &unicast);

    bob.send(&json!({"type":"all","text":"hello all"}));
    let broadcast = alice.recv();
    assert_eq!(broadcast, json!({"type":"all","from":"bob","text":"hello all"}));
    expect_message(&host, bob_id, "bob", &broadcast);

    // /say is a host notice (no client can send one, so none can forge
    // it), the text JSON-escaped by the library.
    let said = r#"from C: "quoted" \ and ünïcode"#;
    host.command(&format!("/say {said}"));
    let want = json!({"type":"notice","text":said});
    assert_eq!(alice.recv(), want);
    assert_eq!(bob.recv(), want);

    // A room: joins logged, /room reaches its members only, a part logged.
    for (c, id, nick) in [(&mut alice, alice_id, "alice"), (&mut bob, bob_id, "bob")] {
        c.send(&json!({"type":"join","room":"#lobby"}));
        assert_eq!(c.recv()["type"], "joined");
        assert_eq!(host.line(), format!("joined {id} {nick} #lobby"));
    }
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#lobby","state":"joined"})
    );
    let mut carol = TestClient::hello(addr, "carol");
    let (carol_id, _) = logged(&host.line(), "connected");
    assert_eq!(host.line(), format!("registered {carol_id} carol registration=3"));
    assert_eq!(carol.recv()["type"], "banner");
    for c in [&mut alice, &mut bob] {
        assert_eq!(
            c.recv(),
            json!({"type":"presence","nick":"carol","state":"online"})
        );
    }
    let text = r#"to the "lobby" \ only"#;
    host.command(&format!("/room #lobby {text}"));
    let want = json!({"type":"room","room":"#lobby","from":"host","text":text});
    assert_eq!(alice.recv(), want);
    assert_eq!(bob.recv(), want);
    carol.send(&json!({"type":"ping","id":"carol"}));
    // Carol is in no room: the pong is the first thing she gets.
    assert_eq!(carol.recv(), json!({"type":"pong","id":"carol"}));
    // An unknown room is reported on stderr (checked at the end).
    host.command("/room #nowhere hello?");
    carol.send(&json!({"type":"quit"}));
    assert_eq!(carol.expect_closed(), Vec::<Value>::new());
    assert_eq!(host.line(), format!("disconnected {carol_id} carol quit"));
    for c in [&mut alice, &mut bob] {
        assert_eq!(
            c.recv(),
            json!({"type":"presence","nick":"carol","state":"offline","reason":"quit"})
        );
    }
    bob.send(&json!({"type":"part","room":"#lobby"}));
    assert_eq!(bob.recv(), json!({"type":"parted","room":"#lobby"}));
    assert_eq!(host.line(), format!("parted {bob_id} bob #lobby"));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#lobby","state":"parted"})
    );

    host.command("/stats");
    let stats = host.line();
    assert!(
        stats.starts_with("stats clients=2 registered=2 accepted=3 "),
        "{stats}"
    );

    // The library finds the nick in any case: no table of the host's own.
    host.command("/kick BOB");
    let kicked = bob.recv();
    assert_eq!(
        (&kicked["type"], &kicked["code"]),
        (&json!("error"), &json!("kicked")),
        "{kicked}"
    );
    assert_eq!(bob.expect_closed(), Vec::<Value>::new());
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"kicked"})
    );
    assert_eq!(host.line(), format!("disconnected {bob_id} bob kicked"));

    host.command("/kick nobody");
    host.command("/quit");
    assert_eq!(alice.recv(), json!({"type":"error","code":"shutdown"}));
    assert_eq!(alice.expect_closed(), Vec::<Value>::new());
    let (status, rest, stderr) = host.finish();
    // Alice is still in #lobby: leaving parts it first.
    assert_eq!(
        rest,
        [
            format!("parted {alice_id} alice #lobby"),
            format!("disconnected {alice_id} alice shutdown"),
            "stopped".to_string()
        ],
        "stderr: {stderr}"
    );
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        errors.len(),
        2,
        "errors for /room #nowhere and /kick nobody:\n{stderr}"
    );
    assert!(
        errors[0].starts_with("c_host: chat_room_send: ") && errors[0].contains("room"),
        "{stderr}"
    );
    assert_eq!(errors[1], "c_host: /kick: no user nobody", "{stderr}");
}

#[test]
fn c_host_linked_statically() {
    host_session(Link::Static);
}

#[test]
fn c_host_linked_dynamically() {
    host_session(Link::Shared);
}

#[test]
fn c_host_under_address_and_undefined_behaviour_sanitizers() {
    host_session(Link::Sanitized);
}

#[test]
fn c_host_shuts_down_on_sigterm() {
    let (host, addr) = start_host(host_bin(Link::Static));
    let (mut alice, alice_id) = join(&host, addr, "alice", 1);
    let pid = nix::unistd::Pid::from_raw(host.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(alice.recv(), json!({"type":"error","code":"shutdown"}));
    assert_eq!(alice.expect_closed(), Vec::<Value>::new());
    let (status, rest, stderr) = host.finish();
    assert_eq!(
        rest,
        [
            format!("disconnected {alice_id} alice shutdown"),
            "stopped".to_string()
        ]
    );
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
}

/// Started without a stdin, as a service manager starts it: the end of
/// stdin turns the console off and nothing else. The host keeps serving, it
/// never reads stdin again, and it waits once per thing that happens rather
/// than spinning (counted with strace, not timed); SIGTERM still ends it
/// gracefully. With --log-level debug the library's records come on stderr.
#[test]
fn c_host_serves_without_a_stdin() {
    let mut cmd = c_program(host_bin(Link::Static), &["--log-level", "debug", "127.0.0.1:0"]);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let (host, addr) = spawn_listening(cmd);
    let (mut alice, alice_id) = join(&host, addr, "alice", 1);
    let (mut bob, bob_id) = join(&host, addr, "bob", 2);
    assert_eq!(alice.recv()["type"], "presence");
    bob.send(&json!({"type":"msg","to":"alice","text":"still here?"}));
    assert_eq!(alice.recv()["text"], "still here?");
    assert_eq!(logged(&host.line(), "message").0, bob_id);
    common::strace::assert_idle(host.child.id(), "c_host");

    let pid = nix::unistd::Pid::from_raw(host.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(alice.recv(), json!({"type":"error","code":"shutdown"}));
    let (status, rest, stderr) = host.finish();
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("c_host: end of stdin: the console is off"),
        "{stderr}"
    );
    let connected = format!(
        "chat: debug: client {alice_id} connected from {}",
        alice.stream.local_addr().unwrap()
    );
    assert!(
        stderr.lines().any(|l| l == connected),
        "{connected:?} not in:\n{stderr}"
    );
    for line in stderr.lines() {
        assert!(
            line.starts_with("chat: ") || line.starts_with("c_host: "),
            "{line:?}"
        );
    }
}

#[test]
fn c_host_answers_help() {
    let out = c_program(host_bin(Link::Static), &["--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("usage: "), "{text}");
    for word in ["--log-level", "/kick NICK", "/quit", "SIGTERM", "127.0.0.1:7878"] {
        assert!(text.contains(word), "{word} not in --help:\n{text}");
    }
    let bad = c_program(host_bin(Link::Static), &["--frobnicate"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("usage: "));
}

#[test]
fn misuse_gets_named_error_codes() {
    let bin = compile("tests/c/misuse.c", "misuse", Link::Static);
    let mut p = Spawned::start(c_program(&bin, &[]));
    p.close_stdin();
    let (status, lines, stderr) = p.finish();
    let out = lines.join("\n");
    assert!(status.success(), "misuse failed ({status}):\n{out}\n{stderr}");
    assert!(out.contains(" 0 failed"), "{out}");
}
