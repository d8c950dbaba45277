//! The C++ binding (bindings/cpp/chat.hpp) and its example host
//! (examples/cpp_host.cpp), built with g++ against libchat.a and libchat.so
//! and driven over loopback by real clients.

mod common;
mod cpp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{spawn_listening, start_listening, Spawned, TestClient};
use cpp::{compile, compile_with, Link};
use serde_json::{json, Value};

fn static_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("examples/cpp_host.cpp", "cpp_host-static", Link::Static))
}

fn shared_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compile("examples/cpp_host.cpp", "cpp_host-shared", Link::Shared))
}

fn start(bin: &Path) -> (Spawned, SocketAddr) {
    start_with(bin, &["127.0.0.1:0"])
}

fn start_with(bin: &Path, args: &[&str]) -> (Spawned, SocketAddr) {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    start_listening(cmd)
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
fn join(host: &Spawned, addr: SocketAddr, nick: &str) -> (TestClient, u64) {
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

/// Checks a `message ID NICK JSON member=N` line.
fn expect_message(host: &Spawned, id: u64, nick: &str, member: u64, want: Value) {
    let line = host.line();
    let (got_id, rest) = logged(&line, "message");
    assert_eq!(got_id, id, "{line}");
    // The JSON may hold " member=" itself: the host's suffix is the last.
    let (rest, got_member) = rest
        .rsplit_once(" member=")
        .unwrap_or_else(|| panic!("no member number in {line:?}"));
    assert_eq!(got_member, member.to_string(), "{line}");
    let json = rest
        .strip_prefix(nick)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected {nick} in {line:?}"));
    assert_eq!(serde_json::from_str::<Value>(json).unwrap(), want);
}

/// The whole life of a host: two users, their traffic, the operator console,
/// a kick (the nick in another case), stats, and /quit. Without --tokens, users are
/// numbered as they register (alice 1, bob 2), and their events carry the
/// number from the next one on.
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
    expect_message(&host, alice_id, "alice", 1, unicast);

    bob.send(&json!({"type":"all","text":"hello all"}));
    let everyone = json!({"type":"all","from":"bob","text":"hello all"});
    assert_eq!(alice.recv(), everyone);
    expect_message(&host, bob_id, "bob", 2, everyone);

    // Quotes, a backslash, a tab, a control character and non-ASCII text
    // must all survive the host's JSON escaping.
    let text = "say \"hi\" \\ there\tnow \u{1} caf\u{e9} \u{2713}";
    host.command(&format!("/say {text}"));
    assert_eq!(host.line(), "said to 2");
    // A host notice: a type no client can send, so nobody can forge it.
    let said = json!({"type":"notice","text":text});
    assert_eq!(alice.recv(), said);
    assert_eq!(bob.recv(), said);

    host.command("/kick BOB");
    assert_eq!(
        bob.expect_closed(),
        vec![json!({"type":"error","code":"kicked","message":"kicked by the operator"})]
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"kicked"})
    );
    assert_eq!(host.line(), format!("disconnected {bob_id} bob kicked member=2"));

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

    host.command("/quit");
    assert_eq!(
        alice.expect_closed(),
        vec![json!({"type":"error","code":"shutdown"})]
    );
    assert_eq!(
        host.line(),
        format!("disconnected {alice_id} alice shutdown member=1")
    );
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success());
}

/// How the host's approval line speaks of a hello's token.
fn token_word(token: Option<&str>) -> &'static str {
    if token.is_some() {
        "with-token"
    } else {
        "no-token"
    }
}

/// Sends `hello` as `nick`, with `"token"` unless it is `None`.
fn hello_with(c: &mut TestClient, nick: &str, token: Option<&str>) {
    let mut hello = json!({"type":"hello","nick":nick});
    if let Some(token) = token {
        hello["token"] = json!(token);
    }
    c.send(&hello);
}

/// A new client's `hello` with `token`: checks the host's `connected` and
/// `approval` lines (which say whether there was a token, never what it
/// is); returns the client and its id.
fn ask(host: &Spawned, addr: SocketAddr, nick: &str, token: Option<&str>) -> (TestClient, u64) {
    let mut c = TestClient::connect(addr);
    hello_with(&mut c, nick, token);
    let line = host.line();
    let (id, peer) = logged(&line, "connected");
    assert_eq!(peer, c.stream.local_addr().unwrap().to_string());
    assert_eq!(host.line(), format!("approval {id} {nick} {}", token_word(token)));
    (c, id)
}

/// A hello with a listed token: approved, numbered `member` before its
/// registered event, welcomed and greeted.
fn admitted(host: &Spawned, addr: SocketAddr, nick: &str, token: &str, member: u64) -> (TestClient, u64) {
    let (mut c, id) = ask(host, addr, nick, Some(token));
    assert_eq!(host.line(), format!("registered {id} {nick} member={member}"));
    assert_eq!(c.recv()["type"], "welcome");
    assert_eq!(
        c.recv(),
        json!({"type":"banner","text":format!("welcome, {nick}")})
    );
    (c, id)
}

/// `cpp_host --tokens`: listed tokens get in, others are rejected (and may
/// try again); members are numbered through user data, which every later
/// event line shows; joins and parts are logged; `/room` reaches the
/// members only, `/members` lists them, `/remove` takes one out.
fn tokens_session(bin: &Path) {
    let (mut host, addr) = start_with(bin, &["--tokens", "good1,,good2", "127.0.0.1:0"]);
    let (mut ann, ann_id) = admitted(&host, addr, "ann", "good1", 1);

    let rejected = json!({"type":"error","code":"rejected","message":"unknown token"});
    let (mut mal, mal_id) = ask(&host, addr, "mal", Some("bad"));
    assert_eq!(host.line(), format!("rejected {mal_id} mal"));
    assert_eq!(mal.recv(), rejected);
    for token in [None, Some("")] {
        hello_with(&mut mal, "mal", token);
        assert_eq!(
            host.line(),
            format!("approval {mal_id} mal {}", token_word(token))
        );
        assert_eq!(host.line(), format!("rejected {mal_id} mal"));
        assert_eq!(mal.recv(), rejected);
    }

    // Member numbers are the host's, not client ids: bea is the third
    // connection but the second member.
    let (mut bea, bea_id) = admitted(&host, addr, "bea", "good2", 2);
    assert_ne!(bea_id, 2);
    let (mut cy, cy_id) = admitted(&host, addr, "cy", "good1", 3);
    let online = |nick: &str| json!({"type":"presence","nick":nick,"state":"online"});
    assert_eq!(ann.recv(), online("bea"));
    assert_eq!(ann.recv(), online("cy"));
    assert_eq!(bea.recv(), online("cy"));

    ann.send(&json!({"type":"join","room":"#den"}));
    assert_eq!(host.line(), format!("joined {ann_id} ann #den member=1"));
    assert_eq!(
        ann.recv(),
        json!({"type":"joined","room":"#den","members":["ann"]})
    );
    bea.send(&json!({"type":"join","room":"#den"}));
    assert_eq!(host.line(), format!("joined {bea_id} bea #den member=2"));
    assert_eq!(
        bea.recv(),
        json!({"type":"joined","room":"#den","members":["ann","bea"]})
    );
    assert_eq!(
        ann.recv(),
        json!({"type":"presence","nick":"bea","room":"#den","state":"joined"})
    );

    host.command("/members #den");
    assert_eq!(host.line(), format!("members #den {ann_id} {bea_id}"));
    host.command("/room #den hello \"den\"");
    assert_eq!(host.line(), "said to 2 in #den");
    let to_room = json!({"type":"room","room":"#den","from":"host","text":"hello \"den\""});
    assert_eq!(ann.recv(), to_room);
    assert_eq!(bea.recv(), to_room);
    // cy's next frame is the broadcast: the room frame never reached it.
    host.command("/say all of you");
    assert_eq!(host.line(), "said to 3");
    let said = |text: &str| json!({"type":"notice","text":text});
    for c in [&mut ann, &mut bea, &mut cy] {
        assert_eq!(c.recv(), said("all of you"));
    }

    bea.send(&json!({"type":"room","room":"#den","text":"hi ann"}));
    let from_bea = json!({"type":"room","room":"#den","from":"bea","text":"hi ann"});
    assert_eq!(ann.recv(), from_bea);
    expect_message(&host, bea_id, "bea", 2, from_bea);
    bea.send(&json!({"type":"part","room":"#den"}));
    assert_eq!(host.line(), format!("parted {bea_id} bea #den member=2"));
    assert_eq!(bea.recv(), json!({"type":"parted","room":"#den"}));
    assert_eq!(
        ann.recv(),
        json!({"type":"presence","nick":"bea","room":"#den","state":"parted"})
    );

    // The host takes the last member out: the room is gone, so /room and
    // /members print nothing (their errors go to stderr), as the next
    // stdout line shows.
    host.command("/remove Ann #den");
    assert_eq!(host.line(), format!("parted {ann_id} ann #den member=1"));
    assert_eq!(ann.recv(), json!({"type":"parted","room":"#den"}));
    host.command("/room #den anyone?");
    host.command("/members #den");
    host.command("/say after");
    assert_eq!(host.line(), "said to 3");
    for c in [&mut ann, &mut bea, &mut cy] {
        assert_eq!(c.recv(), said("after"));
    }

    // User data reaches the last event of a client; one never let in has none.
    ann.send(&json!({"type":"quit"}));
    ann.expect_closed();
    assert_eq!(host.line(), format!("disconnected {ann_id} ann quit member=1"));
    drop(mal);
    assert_eq!(host.line(), format!("disconnected {mal_id} - disconnect"));

    host.command("/quit");
    let mut last = vec![host.line(), host.line()];
    last.sort();
    let mut want = vec![
        format!("disconnected {bea_id} bea shutdown member=2"),
        format!("disconnected {cy_id} cy shutdown member=3"),
    ];
    want.sort();
    assert_eq!(last, want);
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

fn sanitized_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        compile_with(
            "examples/cpp_host.cpp",
            "cpp_host-asan",
            Link::Static,
            &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"],
        )
    })
}

/// The same session with AddressSanitizer and UBSan watching the C++ side:
/// event views used after the call that ends them would show up here.
#[test]
fn host_under_sanitizers_runs_a_session() {
    host_session(sanitized_host());
}

#[test]
fn host_with_tokens_runs_a_session_with_rooms() {
    tokens_session(static_host());
}

/// The approval and rooms session under ASan and UBSan: each event handler
/// there calls the server (set_user_data, approve, reject) after reading the
/// event, which is where a view kept too long would be used.
#[test]
fn host_with_tokens_under_sanitizers() {
    tokens_session(sanitized_host());
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
    assert_eq!(
        host.line(),
        format!("disconnected {carol_id} carol shutdown member=1")
    );
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success());
}

#[test]
fn wrapper_rooms_and_authority_calls_throw_their_codes() {
    let bin = compile("tests/cpp/authority_check.cpp", "authority_check", Link::Static);
    let out = Command::new(&bin).output().expect("run authority_check");
    assert!(
        out.status.success(),
        "authority_check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
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

#[test]
fn wrapper_lookups_and_log_callbacks() {
    run_lookup_check(compile(
        "tests/cpp/lookup_check.cpp",
        "lookup_check",
        Link::Static,
    ));
}

/// The same under ASan and UBSan: the lambda the C side holds must outlive
/// every call that may log, across moves and replacements.
#[test]
fn wrapper_lookups_and_log_callbacks_under_sanitizers() {
    run_lookup_check(compile_with(
        "tests/cpp/lookup_check.cpp",
        "lookup_check-asan",
        Link::Static,
        &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"],
    ));
}

fn run_lookup_check(bin: PathBuf) {
    let out = Command::new(&bin).output().expect("run lookup_check");
    assert!(
        out.status.success(),
        "lookup_check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

/// Started without a stdin, as a service manager starts it: the console is
/// off and the host keeps serving, never reading stdin again and waiting
/// once per thing that happens (counted with strace, not timed). With
/// --log-level trace the library's records are on stderr, and no token is
/// anywhere in what the host or the library writes.
#[test]
fn host_serves_without_a_stdin_and_never_shows_a_token() {
    let secret = "s3cret-t0ken";
    let mut cmd = Command::new(static_host());
    cmd.args(["--log-level", "trace", "--tokens", secret, "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let (host, addr) = spawn_listening(cmd);
    let (mut ann, ann_id) = admitted(&host, addr, "ann", secret, 1);
    let (mut mal, mal_id) = ask(&host, addr, "mal", Some("wrong-guess"));
    assert_eq!(host.line(), format!("rejected {mal_id} mal"));
    assert_eq!(mal.recv()["code"], "rejected");
    ann.send(&json!({"type":"all","text":"anyone?"}));
    expect_message(
        &host,
        ann_id,
        "ann",
        1,
        json!({"type":"all","from":"ann","text":"anyone?"}),
    );
    common::strace::assert_idle(host.child.id(), "cpp_host");

    let killed = Command::new("kill")
        .args(["-TERM", &host.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let (status, rest, stderr) = host.finish();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    assert!(
        stderr.contains("cpp_host: end of stdin: the console is off"),
        "{stderr}"
    );
    let connected = format!("chat: debug: client {ann_id} connected from ");
    assert!(stderr.contains(&connected), "{connected:?} not in:\n{stderr}");
    for text in [stderr.as_str(), &rest.join("\n")] {
        assert!(
            !text.contains(secret) && !text.contains("wrong-guess"),
            "a token was shown:\n{text}"
        );
    }
}

#[test]
fn host_answers_help() {
    let out = Command::new(static_host()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("usage: "), "{text}");
    for word in [
        "--tokens",
        "--log-level",
        "/kick NICK",
        "/quit",
        "SIGTERM",
        "127.0.0.1:7878",
    ] {
        assert!(text.contains(word), "{word} not in --help:\n{text}");
    }
    let bad = Command::new(static_host()).arg("--frobnicate").output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}
