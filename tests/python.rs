//! The Python binding, run from `cargo test`: its unittest suite, and
//! examples/python_host.py driven over loopback by TestClient (plain, and
//! moderating with `--bad-words`). Both need `python3` and the cdylib this
//! `cargo test` built.
mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{built_library, spawn_listening, start_listening, Spawned, TestClient};
use serde_json::{json, Value};

/// The whole unittest suite (1000 servers in the leak test, a C compiler
/// run for the layout check) is bounded by this.
const SUITE_DEADLINE: Duration = Duration::from_secs(120);

/// `python3` in the crate root, using this build's library and leaving no
/// bytecode in the source tree.
fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CHAT_LIB", built_library("libchat.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Reads a pipe to its end on a thread, so the caller can wait with a deadline.
fn read_all_async(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

#[test]
fn python_unittest_suite_passes() {
    let mut child = python()
        .args(["-m", "unittest", "discover", "-s", "bindings/python/tests", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let stdout = read_all_async(child.stdout.take().unwrap());
    let stderr = read_all_async(child.stderr.take().unwrap());
    let end = Instant::now() + SUITE_DEADLINE;
    let mut wait_for =
        |rx: &Receiver<String>| match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(text) => text,
            Err(_) => {
                let _ = child.kill();
                panic!("the Python suite did not finish within {SUITE_DEADLINE:?}");
            }
        };
    let out = wait_for(&stdout);
    let err = wait_for(&stderr);
    // Both pipes closed: the process is exiting.
    let status = child.wait().unwrap();
    assert!(status.success(), "python unittest failed ({status}):\n{out}{err}");
    assert!(err.contains("OK"), "no OK from unittest:\n{out}{err}");
}

/// Starts examples/python_host.py with `args` on a free port; returns it
/// and its address.
fn start_host(args: &[&str]) -> (Spawned, SocketAddr) {
    let mut cmd = python();
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python_host.py"))
        .args(args)
        .arg("127.0.0.1:0");
    start_listening(cmd)
}

/// The host's next line, split into `n` space-separated fields (the last
/// takes the rest); panics unless it starts with `word`.
fn fields(host: &Spawned, word: &str, n: usize) -> Vec<String> {
    let line = host.line();
    let fields: Vec<String> = line.splitn(n, ' ').map(str::to_string).collect();
    assert!(
        fields.len() == n && fields[0] == word,
        "expected `{word} ...`, got {line:?}"
    );
    fields
}

/// `connected ID PEER` for this client; returns ID.
fn expect_connected(host: &Spawned, client: &TestClient) -> String {
    let f = fields(host, "connected", 3);
    assert_eq!(f[2], client.stream.local_addr().unwrap().to_string());
    f[1].clone()
}

/// `WORD ID NICK JSON visitor=N` (`message`, `blocked`) for this JSON.
fn expect_json_line(host: &Spawned, word: &str, id: &str, nick: &str, payload: &Value, visitor: u32) {
    let f = fields(host, word, 4);
    assert_eq!((f[1].as_str(), f[2].as_str()), (id, nick));
    let suffix = format!(" visitor={visitor}");
    let json = f[3]
        .strip_suffix(&suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} at the end of {:?}", f[3]));
    let logged: Value = serde_json::from_str(json).expect("JSON in the line");
    assert_eq!(&logged, payload);
}

fn expect_message(host: &Spawned, id: &str, nick: &str, payload: &Value, visitor: u32) {
    expect_json_line(host, "message", id, nick, payload, visitor);
}

/// Registers `nick` (the host's `visitor`-th connection): its banner, and
/// the host's `connected` and `registered` lines. Returns the client and
/// its id.
fn register(host: &Spawned, addr: SocketAddr, nick: &str, visitor: u32) -> (TestClient, String) {
    let mut c = TestClient::hello(addr, nick);
    assert_eq!(
        c.recv(),
        json!({"type":"banner","text":format!("welcome, {nick}")})
    );
    let id = expect_connected(host, &c);
    assert_eq!(host.line(), format!("registered {id} {nick} visitor={visitor}"));
    (c, id)
}

/// Sends a ping and expects its pong as the very next frame: nothing was
/// queued for `c` before the server read the ping.
fn expect_nothing_queued(c: &mut TestClient, tag: u32) {
    c.send(&json!({"type":"ping","id":tag}));
    assert_eq!(c.recv(), json!({"type":"pong","id":tag}));
}

#[test]
fn python_host_serves_two_users() {
    let (mut host, addr) = start_host(&[]);

    let (mut alice, a) = register(&host, addr, "alice", 1);
    let (mut bob, b) = register(&host, addr, "bob", 2);
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"online"})
    );
    assert_ne!(a, b);

    alice.send(&json!({"type":"msg","to":"bob","text":"hi bob"}));
    let unicast = json!({"type":"msg","from":"alice","to":"bob","text":"hi bob"});
    assert_eq!(bob.recv(), unicast);
    expect_message(&host, &a, "alice", &unicast, 1);

    bob.send(&json!({"type":"all","text":"hello all"}));
    let all = json!({"type":"all","from":"bob","text":"hello all"});
    assert_eq!(alice.recv(), all);
    expect_message(&host, &b, "bob", &all, 2);

    host.command("/say hello everyone");
    // A host notice: a type no client can send, so nobody can forge it.
    let said = json!({"type":"notice","text":"hello everyone"});
    assert_eq!(alice.recv(), said);
    assert_eq!(bob.recv(), said);

    // Any case: the library looks the nick up.
    host.command("/kick BOB");
    let last = bob
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("kicked")),
        "{last}"
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"kicked"})
    );
    assert_eq!(host.line(), format!("disconnected {b} bob kicked visitor=2"));

    host.command("/quit");
    let last = alice
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("shutdown")),
        "{last}"
    );
    assert_eq!(host.line(), format!("disconnected {a} alice shutdown visitor=1"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success(), "python_host exits 0");
}

#[test]
fn python_host_stops_on_sigterm() {
    let (mut host, addr) = start_host(&[]);
    let (mut carol, c) = register(&host, addr, "carol", 1);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let last = carol
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(last["code"], "shutdown", "{last}");
    assert_eq!(host.line(), format!("disconnected {c} carol shutdown visitor=1"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success(), "python_host exits 0 on SIGTERM");
}

#[test]
fn python_host_moderates_bad_words() {
    let (mut host, addr) = start_host(&["--bad-words", "darn,Heck"]);
    let (mut alice, a) = register(&host, addr, "alice", 1);
    let (mut bob, b) = register(&host, addr, "bob", 2);
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"online"})
    );

    for (c, id, nick, visitor) in [(&mut alice, &a, "alice", 1), (&mut bob, &b, "bob", 2)] {
        c.send(&json!({"type":"join","room":"#lobby"}));
        assert_eq!(c.recv()["type"], "joined");
        assert_eq!(
            host.line(),
            format!("joined {id} {nick} #lobby visitor={visitor}")
        );
    }
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#lobby","state":"joined"})
    );

    // Clean: released, routed, logged as a message. "heckle" is not "heck".
    alice.send(&json!({"type":"room","room":"#lobby","text":"no heckle here","id":1}));
    let clean = json!({"type":"room","room":"#lobby","from":"alice","text":"no heckle here"});
    assert_eq!(bob.recv(), clean);
    assert_eq!(alice.recv(), json!({"type":"ack","id":1,"queued":1}));
    expect_message(&host, &a, "alice", &clean, 1);

    // Dirty, in any case and kind of message: the sender is told, the
    // others get nothing.
    let blocked = json!({"type":"error","code":"moderated","message":"message blocked: bad word"});
    let dirty = [
        json!({"type":"room","room":"#lobby","text":"what the HECK"}),
        json!({"type":"msg","to":"bob","text":"Darn it."}),
        json!({"type":"all","text":"heck, darn"}),
    ];
    for (i, frame) in dirty.iter().enumerate() {
        alice.send(frame);
        assert_eq!(alice.recv(), blocked);
        expect_json_line(&host, "blocked", &a, "alice", frame, 1);
        // The drop came before alice's error, so a release would have
        // queued the message to bob before his pong.
        expect_nothing_queued(&mut bob, i as u32);
    }

    bob.send(&json!({"type":"all","text":"all clean"}));
    let all = json!({"type":"all","from":"bob","text":"all clean"});
    assert_eq!(alice.recv(), all);
    expect_message(&host, &b, "bob", &all, 2);

    bob.send(&json!({"type":"part","room":"#lobby"}));
    assert_eq!(bob.recv(), json!({"type":"parted","room":"#lobby"}));
    assert_eq!(host.line(), format!("parted {b} bob #lobby visitor=2"));
    bob.send(&json!({"type":"quit"}));
    assert_eq!(bob.expect_closed(), Vec::<Value>::new());
    assert_eq!(host.line(), format!("disconnected {b} bob quit visitor=2"));

    // Leaving the server parts the rooms first.
    alice.send(&json!({"type":"quit"}));
    alice.expect_closed();
    assert_eq!(host.line(), format!("parted {a} alice #lobby visitor=1"));
    assert_eq!(host.line(), format!("disconnected {a} alice quit visitor=1"));

    host.command("/quit");
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success(), "python_host exits 0");
}

/// Started without a stdin, as a service manager starts it: the console is
/// off and the host keeps serving, never reading stdin again and waiting
/// once per thing that happens rather than spinning (counted with strace,
/// not timed); SIGTERM still ends it. With --log-level debug the library's
/// records come through Python's logging on stderr.
#[test]
fn python_host_serves_without_a_stdin() {
    let mut cmd = python();
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python_host.py"))
        .args(["--log-level", "debug", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let (host, addr) = spawn_listening(cmd);
    let (mut alice, a) = register(&host, addr, "alice", 1);
    let (mut bob, b) = register(&host, addr, "bob", 2);
    assert_eq!(alice.recv()["type"], "presence");
    bob.send(&json!({"type":"msg","to":"alice","text":"still here?"}));
    let got = alice.recv();
    assert_eq!(got["text"], "still here?");
    expect_message(&host, &b, "bob", &got, 2);
    common::strace::assert_idle(host.child.id(), "python_host");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(alice.expect_closed().pop().unwrap()["code"], "shutdown");
    let (status, rest, stderr) = host.finish();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    assert!(
        stderr.contains("python_host: end of stdin: the console is off"),
        "{stderr}"
    );
    let connected = format!(
        "chat: debug: client {a} connected from {}",
        alice.stream.local_addr().unwrap()
    );
    assert!(
        stderr.lines().any(|l| l == connected),
        "{connected:?} not in:\n{stderr}"
    );
}

#[test]
fn python_host_answers_help() {
    let out = python()
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python_host.py"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("usage: "), "{text}");
    for word in [
        "--bad-words",
        "--log-level",
        "/kick NICK",
        "/quit",
        "SIGTERM",
        "127.0.0.1:7878",
    ] {
        assert!(text.contains(word), "{word} not in --help:\n{text}");
    }
}
