//! Scale: the example server (its own process, so its descriptors stay
//! below FD_SETSIZE) with 1000 registered clients and one broadcast.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[test]
fn a_thousand_clients_receive_one_broadcast() {
    const CLIENTS: usize = 1000;
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0"]).stderr(Stdio::null());
    let (_server, addr) = spawn_listening(cmd);

    let mut clients: Vec<TestClient> = (0..CLIENTS)
        .map(|i| TestClient::hello(addr, &format!("user{i}")))
        .collect();
    clients[0].send(&json!({"type": "all", "text": "to everyone", "id": "b1"}));

    let ack = clients[0].recv_until(|v| v["type"] == "ack");
    assert_eq!(ack, json!({"type": "ack", "id": "b1", "queued": CLIENTS - 1}));
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        let got = c.recv_until(|v| v["type"] == "all");
        assert_eq!(
            got,
            json!({"type": "all", "from": "user0", "text": "to everyone"}),
            "client {i}"
        );
    }
    // Everyone is still there: the last one to join sees all 1000.
    let last = clients.last_mut().unwrap();
    last.send(&json!({"type": "who"}));
    let users = last.recv_until(|v| v["type"] == "users");
    assert_eq!(users["users"].as_array().unwrap().len(), CLIENTS);
}

#[test]
fn connections_past_max_clients_get_server_full() {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0", "--max-clients", "3"])
        .stderr(Stdio::null());
    let (_server, addr) = spawn_listening(cmd);
    let _kept: Vec<TestClient> = (0..3)
        .map(|i| TestClient::hello(addr, &format!("u{i}")))
        .collect();
    let mut extra = TestClient::connect(addr);
    let seen = extra.expect_closed();
    assert_eq!(
        seen,
        vec![
            json!({"type":"error","code":"server_full","message":"the server cannot take more connections"})
        ]
    );
}

#[test]
fn descriptors_past_fd_setsize_are_refused_not_watched() {
    // A host that already holds many descriptors: the server starts with 48
    // more open below its own (inherited from a shell), so its clients'
    // descriptors pass FD_SETSIZE before --max-clients (at most
    // FD_SETSIZE - 16, as the example server allows) is reached: the
    // descriptor limit is what refuses.
    const HELD: usize = 48;
    let max_clients = chat::FD_SETSIZE - 16;
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        "for fd in $(seq 3 50); do eval \"exec $fd</dev/null\"; done; exec \"$@\"",
        "hold-descriptors",
    ])
    .arg(example_bin("chat_server"))
    .args([
        "--listen",
        "127.0.0.1:0",
        "--max-clients",
        &max_clients.to_string(),
    ])
    .stderr(Stdio::null());
    let (_server, addr) = spawn_listening(cmd);
    let mut first = TestClient::hello(addr, "first");
    let mut open = Vec::new();
    let mut refused = 0;
    // The server process has stdio, a listener and a wake pipe below its
    // clients, so fewer than FD_SETSIZE connections fit.
    for _ in 0..chat::FD_SETSIZE + 10 {
        let mut c = TestClient::connect(addr);
        c.send(&json!({"type": "who"}));
        match c.try_recv() {
            Some(v) if v["code"] == "not_registered" => open.push(c),
            Some(v) if v["code"] == "server_full" => {
                assert_eq!(c.try_recv(), None, "closed after server_full");
                refused += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refused >= 10, "at least the last 10 were refused, got {refused}");
    assert!(
        open.len() > chat::FD_SETSIZE - 20 - HELD,
        "only {} admitted",
        open.len()
    );
    assert!(
        open.len() + 1 < max_clients,
        "refused by descriptor, not by --max-clients: {} admitted",
        open.len()
    );
    // And the server kept serving throughout.
    first.send(&json!({"type": "ping", "id": "still here"}));
    assert_eq!(first.recv(), json!({"type": "pong", "id": "still here"}));
}
