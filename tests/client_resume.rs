//! chat_client's resumable sessions over a real server, with a proxy the
//! test controls cutting the connection: the client reconnects by itself,
//! resumes, and its transcript has every message once, in order, both
//! ways; a server that no longer knows the session (or lost frames) gets a
//! new session under the same nick; a session taken over ends the client.

mod common;
#[path = "client_support/proxy.rs"]
mod proxy;

use std::io::Write;
use std::process::Command;

use common::*;
use proxy::{Cut, Proxy};
use serde_json::json;

fn script(addr: std::net::SocketAddr, nick: &str) -> Spawned {
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args(["--connect", &addr.to_string(), "--nick", nick]);
    Spawned::start(cmd)
}

/// Stdout lines until one equal to `last` (included); panics at the
/// deadline or at the end of stdout.
fn lines_until(c: &Spawned, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = c.line();
        let done = line == last;
        seen.push(line);
        if done {
            return seen;
        }
        assert!(seen.len() < 10_000, "{last:?} never came: {seen:?}");
    }
}

/// The `all` texts `c` receives from `from` until `last` (included).
fn texts_until(c: &mut TestClient, from: &str, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let v = c.recv_until(|v| v["type"] == "all" && v["from"] == from);
        let text = v["text"].as_str().unwrap().to_string();
        let done = text == last;
        seen.push(text);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_drop_with_frames_in_flight_both_ways_loses_and_repeats_nothing() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    // The first connection: the welcome and 11 frames reach the client,
    // then half of the 13th; cut once the proxy has read 14 (frames the
    // server wrote that never arrived).
    proxy.plan(Cut {
        forward: 12,
        half: true,
        after_reading: 14,
    });
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut ci = script(proxy.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: bob, ci");
    bob.recv_until(|v| v["type"] == "presence" && v["nick"] == "ci");

    // Both ways at once: ci's lines (acked to it) and bob's messages.
    let mut stdin = ci.take_stdin();
    let mine: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    stdin.write_all((mine.join("\n") + "\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let bobs: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for text in &bobs {
        bob.send(&json!({"type": "all", "text": text}));
    }

    let out = lines_until(&ci, "<bob> m39");
    proxy.wait("the cut and a second connection", |accepted, cuts, _| {
        accepted >= 2 && cuts >= 1
    });
    let said: Vec<&str> = out.iter().filter_map(|l| l.strip_prefix("<bob> ")).collect();
    assert_eq!(said, bobs, "every message once, in order: {out:#?}");
    assert!(
        out.iter()
            .any(|l| l.starts_with("* ") && l.ends_with("; reconnecting")),
        "{out:#?}"
    );
    assert!(
        out.iter()
            .any(|l| l == "* reconnected: session resumed as ci; online: bob, ci"),
        "{out:#?}"
    );
    assert_eq!(texts_until(&mut bob, "ci", "c29"), mine, "bob got each line once");

    drop(stdin);
    let (status, rest, err) = ci.finish();
    assert!(status.success(), "{err}");
    assert!(rest.iter().all(|l| !l.starts_with('<')), "{rest:?}");
    assert_eq!(err, "");
}

#[test]
fn lines_the_server_never_read_are_sent_again_once_after_the_resume() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    // The hello and c0 reach the server; c1..c9 vanish on the way.
    proxy.swallow_after(2);
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut ci = script(proxy.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: bob, ci");
    let mine: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    for line in &mine {
        ci.command(line);
    }
    proxy.wait_swallowed(9);
    assert_eq!(texts_until(&mut bob, "ci", "c0"), ["c0"]);
    proxy.cut_all();
    assert_eq!(
        lines_until(&ci, "* reconnected: session resumed as ci; online: bob, ci").len(),
        3,
        "the drop, the attempt, the resume"
    );
    assert_eq!(
        texts_until(&mut bob, "ci", "c9"),
        mine[1..],
        "each once, in order"
    );
    ci.command("after");
    assert_eq!(texts_until(&mut bob, "ci", "after"), ["after"]);
    ci.close_stdin();
    let (status, rest, err) = ci.finish();
    assert!(status.success(), "every line acked in the end: {err}");
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_server_that_forgot_the_session_gets_a_new_one_with_the_same_nick() {
    let first = ServerThread::default();
    let second = ServerThread::default();
    let proxy = Proxy::to(first.addr);
    let mut ci = script(proxy.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: ci");
    ci.command("/join #ops");
    assert_eq!(ci.line(), "* you joined #ops; members: ci");

    // As if the server restarted: the next connection reaches one that
    // never heard of the session.
    let mut ann = TestClient::hello(second.addr, "ann");
    ann.send(&json!({"type": "join", "room": "#ops"}));
    assert_eq!(ann.recv()["type"], "joined");
    proxy.retarget(second.addr);
    proxy.cut_all();
    let out = lines_until(&ci, "* connected as ci; online: ann, ci");
    assert!(out[0].ends_with("; reconnecting"), "{out:?}");
    // The rooms it was in are joined again.
    assert_eq!(ci.line(), "* joining #ops again");
    assert_eq!(ci.line(), "* you joined #ops; members: ann, ci");
    assert_eq!(
        ann.recv_until(|v| v["type"] == "presence" && v["room"] == "#ops"),
        json!({"type": "presence", "nick": "ci", "room": "#ops", "state": "joined"})
    );
    ci.command("#ops back again");
    let v = ann.recv_until(|v| v["type"] == "room");
    assert_eq!(v["text"], "back again");

    ci.close_stdin();
    let (status, _, err) = ci.finish();
    assert!(status.success(), "{err}");
    assert!(
        err.contains(
            "! could not resume the session: the server no longer knows this session \
             (it ended, or the server restarted); starting a new one as ci"
        ),
        "{err}"
    );
}

#[test]
fn a_gap_is_said_plainly_and_a_new_session_begins() {
    // Nothing kept past the last frame written: a resume that needs more
    // gets `gap`.
    let server = ServerThread::start(chat::Config {
        resume_retain_bytes: 1,
        ..loopback_config()
    });
    let proxy = Proxy::to(server.addr);
    proxy.plan(Cut {
        forward: 3,
        half: false,
        after_reading: 30,
    });
    let mut bob = TestClient::hello(server.addr, "bob");
    let ci = script(proxy.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: bob, ci");
    bob.recv_until(|v| v["type"] == "presence" && v["nick"] == "ci");
    for i in 0..40 {
        bob.send(&json!({"type": "all", "text": format!("m{i}")}));
    }
    assert_eq!(ci.line(), "<bob> m0");
    assert_eq!(ci.line(), "<bob> m1");
    let out = lines_until(&ci, "* connected as ci; online: bob, ci");
    assert!(out.iter().all(|l| !l.starts_with('<')), "{out:?}");
    // Others saw the old session end, and the new one come.
    bob.recv_until(|v| v["type"] == "presence" && v["state"] == "offline");
    bob.recv_until(|v| v["type"] == "presence" && v["state"] == "online");
    bob.send(&json!({"type": "all", "text": "after"}));
    assert_eq!(ci.line(), "<bob> after");
    drop(server);
    let (status, _, err) = ci.finish();
    assert_eq!(status.code(), Some(1), "the server went away: {err}");
    assert!(
        err.contains(
            "! could not resume the session: the server no longer holds everything sent meanwhile (gap)"
        ),
        "{err}"
    );
}

#[test]
fn a_session_taken_over_ends_without_reconnecting() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    let ci = script(proxy.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: ci");
    proxy.wait("a session token", |_, _, tokens| !tokens.is_empty());
    let token = proxy.tokens()[0].clone();
    let mut other = TestClient::connect(server.addr);
    other.send(&json!({"type": "hello", "nick": "ci", "resume": {"session": token, "received": 0}}));
    let w = other.recv();
    assert_eq!(
        (&w["type"], &w["resumed"]),
        (&json!("welcome"), &json!(true)),
        "{w}"
    );
    let (status, rest, err) = ci.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        err,
        "chat_client: disconnected: another connection took this session over (replaced)\n"
    );
    proxy.wait("no second connection", |accepted, _, _| accepted == 1);
}

#[test]
fn reconnecting_gives_up_after_reconnect_ms() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args([
        "--connect",
        &proxy.addr.to_string(),
        "--nick",
        "ci",
        "--reconnect-ms",
        "1200",
    ]);
    let c = Spawned::start(cmd);
    assert_eq!(c.line(), "* connected as ci; online: ci");
    // Nothing listens where the proxy now points.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.retarget(closed.local_addr().unwrap());
    drop(closed);
    proxy.cut_all();
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out[0].ends_with("; reconnecting"), "{out:?}");
    assert!(
        out.iter().any(|l| l.starts_with("* reconnect failed: ")),
        "{out:?}"
    );
    assert!(err.contains("could not reconnect within 1.2 s"), "{err}");
}
