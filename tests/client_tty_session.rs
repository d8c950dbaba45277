//! chat_client on a terminal (a pseudo-terminal read back through a
//! terminal emulator) with protocol 1.2: a drop and the reconnect, seen as
//! a person sees it; a line typed while offline; notices in their own
//! style; `/nick`, `/names`, `/list`.

mod common;
#[path = "client_support/proxy.rs"]
mod proxy;
mod pty;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use proxy::Proxy;
use pty::{key, row_text, Pty};
use serde_json::json;

fn client(addr: SocketAddr, nick: &str) -> Pty {
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args(["--connect", &addr.to_string(), "--nick", nick])
        .env_remove("NO_COLOR");
    let pty = Pty::spawn(cmd);
    pty.wait_text(&format!("connected as {nick}"));
    pty
}

/// The `all` texts `c` receives until one from `from`.
fn next_all_from(c: &mut TestClient, from: &str) -> String {
    let v = c.recv_until(|v| v["type"] == "all" && v["from"] == from);
    v["text"].as_str().unwrap().to_string()
}

#[test]
fn a_drop_shows_reconnecting_and_the_session_goes_on() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut alice = client(proxy.addr, "alice");
    bob.send(&json!({"type": "all", "text": "before the drop"}));
    alice.wait_text("<bob> before the drop");
    alice.send(b"half typ");
    alice.wait_input("alice> half typ", 15);

    // Nothing listens where new connections go: the reconnect fails and
    // backs off, visibly; the typed line stays.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.retarget(closed.local_addr().unwrap());
    drop(closed);
    proxy.cut_all();
    alice.wait_text("the server closed the connection; reconnecting (Ctrl-C quits)");
    alice.wait_text("reconnect failed: the server closed the connection; next try in");
    alice.wait_input("alice (offline)> half typ", 25);
    // Sent while offline: it waits, and goes once the session is back.
    alice.send(b"ed\r");
    alice.wait_text("not connected: sent once the session is back");
    bob.send(&json!({"type": "all", "text": "while you were away"}));

    proxy.retarget(server.addr);
    alice.wait_text("reconnected: session resumed as alice; online: alice, bob");
    alice.wait_text("<bob> while you were away");
    assert_eq!(next_all_from(&mut bob, "alice"), "half typed");
    alice.wait_text("<alice> half typed");
    alice.wait_input("alice>", 7);
    let screen = alice.screen();
    assert_eq!(screen.matches("<bob> before the drop").count(), 1, "{screen}");
    assert_eq!(screen.matches("<bob> while you were away").count(), 1, "{screen}");
    assert_eq!(screen.matches("<alice> half typed").count(), 1, "{screen}");

    // Ctrl-C still quits (the server hears a quit).
    alice.send(key::CTRL_C);
    assert!(alice.wait().success());
    assert!(alice.is_cooked());
    let v = bob.recv_until(|v| v["type"] == "presence" && v["state"] == "offline");
    assert_eq!(v["reason"], "quit");
}

#[test]
fn ctrl_d_quits_while_reconnecting() {
    let server = ServerThread::default();
    let proxy = Proxy::to(server.addr);
    let mut alice = client(proxy.addr, "alice");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.retarget(closed.local_addr().unwrap());
    drop(closed);
    proxy.cut_all();
    alice.wait_text("reconnect failed");
    alice.send(key::CTRL_D);
    assert!(alice.wait().success());
    assert!(alice.is_cooked());
}

#[test]
fn notices_have_their_own_look_and_commands_show_answers() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut alice = client(server.addr, "alice");
    alice.wait_input("alice>", 7);

    server.with(|s| s.notice_all("the server restarts at noon").unwrap());
    let row = alice.wait_text("-notice- the server restarts at noon");
    assert!(!row.contains("<host>"));
    // Drawn in reverse video, a look no user's message has.
    let styled = alice.with_screen(|s| {
        (0..pty::ROWS).find_map(|r| {
            let text = row_text(s, r);
            let col = text.find("-notice-")? as u16;
            let cell = s.cell(r, col)?;
            Some(cell.inverse())
        })
    });
    assert_eq!(styled, Some(true));
    bob.send(&json!({"type": "all", "text": "-notice- fake"}));
    alice.wait_text("<bob> -notice- fake");

    alice.send(b"/join #den\r");
    alice.wait_text("you joined #den; members: alice");
    alice.send(b"/names #den\r");
    alice.wait_text("members of #den: alice");
    alice.send(b"/list\r");
    alice.wait_text("rooms: #den (1)");
    alice.send(b"/nick alicia\r");
    alice.wait_text("you are now known as alicia");
    alice.wait_input("alicia>", 8);
    let v = bob.recv_until(|v| v["type"] == "presence" && v["state"] == "renamed");
    assert_eq!((&v["old"], &v["nick"]), (&json!("alice"), &json!("alicia")));
    bob.send(&json!({"type": "nick", "nick": "robert"}));
    alice.wait_text("bob is now known as robert");
    // Completion knows the new nick.
    alice.send(b"ro");
    alice.send(key::TAB);
    alice.wait_input("alicia> robert:", 16);
}
