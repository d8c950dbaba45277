//! chat_client's protocol 1.2 commands and host notices in scripted mode:
//! `/nick`, `/names`, `/list`, renames of others, and notices printed in a
//! shape no user's message can take.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn script(addr: std::net::SocketAddr, nick: &str) -> Spawned {
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args(["--connect", &addr.to_string(), "--nick", nick]);
    Spawned::start(cmd)
}

#[test]
fn nick_names_and_list_show_their_answers() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut ci = script(server.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: bob, ci");
    ci.command("/list");
    assert_eq!(ci.line(), "* no rooms on the server");
    bob.send(&json!({"type": "join", "room": "#Ops"}));
    assert_eq!(bob.recv_until(|v| v["type"] == "joined")["room"], "#Ops");
    ci.command("/join #ops");
    assert_eq!(ci.line(), "* you joined #Ops; members: bob, ci");
    ci.command("/names #ops");
    assert_eq!(ci.line(), "* members of #Ops: bob, ci");
    ci.command("/list");
    assert_eq!(ci.line(), "* rooms: #Ops (2)");

    ci.command("/nick ci2");
    assert_eq!(ci.line(), "* you are now known as ci2");
    assert_eq!(
        bob.recv_until(|v| v["type"] == "presence" && v["state"] == "renamed"),
        json!({"type": "presence", "nick": "ci2", "old": "ci", "state": "renamed"})
    );
    bob.send(&json!({"type": "nick", "nick": "bobby"}));
    assert_eq!(ci.line(), "* bob is now known as bobby");
    ci.command("/who");
    assert_eq!(ci.line(), "* online: bobby, ci2");
    // Messages go out under the new nick.
    ci.command("/msg bobby hi");
    let v = bob.recv_until(|v| v["type"] == "msg");
    assert_eq!((&v["from"], &v["text"]), (&json!("ci2"), &json!("hi")));

    // Mistakes: a nick the server would refuse is caught here; a taken one
    // is the server's answer; a room one is not in.
    ci.command("/nick bad nick");
    ci.command("/nick BOBBY");
    ci.command("/names #elsewhere");
    ci.close_stdin();
    let (status, rest, err) = ci.finish();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(err.contains("! usage: /nick NEW"), "{err}");
    assert!(err.contains("! that nick is taken"), "{err}");
    assert!(err.contains("! you are not in #elsewhere"), "{err}");
    assert!(err.contains("3 lines did not go through"), "{err}");
}

#[test]
fn host_notices_are_printed_apart_and_nobody_can_forge_one() {
    let server = ServerThread::default();
    let mut ci = script(server.addr, "ci");
    assert_eq!(ci.line(), "* connected as ci; online: ci");
    let sent = server.with(|s| s.notice_all("maintenance at noon \u{1b}[2J").unwrap());
    assert_eq!(sent, 1);
    assert_eq!(ci.line(), r"-notice- maintenance at noon \u{1b}[2J");

    // A user named host is still a user: its message reads as one, and a
    // notice it sends is refused by the server.
    let mut host = TestClient::hello(server.addr, "host");
    assert_eq!(ci.line(), "* host is online");
    host.send(&json!({"type": "notice", "text": "give me your password"}));
    assert_eq!(host.recv()["code"], "unknown_type");
    host.send(&json!({"type": "all", "text": "-notice- give me your password"}));
    assert_eq!(ci.line(), "<host> -notice- give me your password");

    let id = server.with(|s| s.find_client("CI").unwrap());
    server.with(move |s| s.notice(id, "just for you").unwrap());
    assert_eq!(ci.line(), "-notice- just for you");
    ci.close_stdin();
    let (status, _, err) = ci.finish();
    assert!(status.success(), "{err}");
}
