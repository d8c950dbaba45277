//! Real `chat::Server`s of one cluster when things fail, with real TCP
//! clients: a node killed (its users offline elsewhere within
//! node_timeout, their nicks free), Redis stopped (local chat goes on,
//! `hello` and `join` get `unavailable`, then it comes back), Redis killed
//! and restarted empty (every node re-announces its users). node_timeout
//! is 600 ms; each wait has a deadline, and the times that matter are
//! printed.

mod common;

use std::time::{Duration, Instant};

use chat::ClusterState;
use common::cluster_server::{hello, nodes, presence};
use common::redis::RedisServer;
use serde_json::json;

const NODE_TIMEOUT: Duration = Duration::from_millis(600);

#[test]
fn a_killed_nodes_users_go_offline_elsewhere_within_node_timeout_and_their_nicks_are_free() {
    let redis = RedisServer::start();
    let mut n = nodes(&redis.url(), "kill", 2, NODE_TIMEOUT);
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (_bob, _) = hello(n[1].addr, "bob");
    presence(&mut alice, "bob", "online");
    alice.send(&json!({"type": "join", "room": "#k"}));
    alice.recv_until(|v| v["type"] == "joined");
    let (mut bob, w) = {
        let b = n.pop().unwrap();
        let killed = Instant::now();
        b.kill();
        let v = presence(&mut alice, "bob", "offline");
        let took = killed.elapsed();
        println!(
            "bob offline on the other node {} ms after the kill",
            took.as_millis()
        );
        assert_eq!(v["reason"], "disconnect", "{v}");
        assert!(took < NODE_TIMEOUT * 3, "took {took:?}");
        hello(n[0].addr, "bob")
    };
    assert_eq!(w["type"], "welcome", "the nick is free again: {w}");
    assert_eq!(n[0].stats().cluster_nodes, 1);
    bob.send(&json!({"type": "who"}));
    assert_eq!(bob.recv(), json!({"type":"users","users":["alice","bob"]}));
}

#[test]
fn while_redis_is_stopped_local_chat_goes_on_and_hello_and_join_are_unavailable() {
    let redis = RedisServer::start();
    let n = nodes(&redis.url(), "stop", 2, NODE_TIMEOUT);
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (mut bob, _) = hello(n[0].addr, "bob");
    let (mut carol, _) = hello(n[1].addr, "carol");
    presence(&mut alice, "bob", "online");
    presence(&mut alice, "carol", "online");

    redis.pause();
    let stopped = Instant::now();
    n[0].until("down", |s| s.cluster == ClusterState::Down);
    println!("down {} ms after SIGSTOP", stopped.elapsed().as_millis());

    alice.send(&json!({"type": "msg", "to": "bob", "text": "still here", "id": 1}));
    assert_eq!(alice.recv(), json!({"type":"ack","id":1,"queued":1}));
    assert_eq!(bob.recv_until(|v| v["type"] == "msg")["text"], "still here");
    let (mut dave, w) = hello(n[0].addr, "dave");
    assert_eq!(w["code"], "unavailable", "{w}");
    alice.send(&json!({"type": "join", "room": "#s"}));
    assert_eq!(
        alice.recv_until(|v| v["type"] == "error"),
        json!({"type":"error","code":"unavailable","room":"#s","message":"the cluster is unreachable: try again"})
    );

    alice.send(&json!({"type": "nick", "nick": "alice2"}));
    assert_eq!(alice.recv_until(|v| v["type"] == "error")["code"], "unavailable");
    // Nothing changed: she is still alice here.
    alice.send(&json!({"type": "who"}));
    assert_eq!(
        alice.recv_until(|v| v["type"] == "users"),
        json!({"type":"users","users":["alice","bob","carol"]})
    );

    redis.resume();
    let continued = Instant::now();
    n[0].until("up again", |s| {
        s.cluster == ClusterState::Up && s.cluster_nodes == 2
    });
    n[1].until("up again", |s| {
        s.cluster == ClusterState::Up && s.cluster_nodes == 2
    });
    println!("up {} ms after SIGCONT", continued.elapsed().as_millis());
    // The connection stayed open: the same hello works now.
    dave.send(&json!({"type": "hello", "nick": "dave"}));
    let w = dave.recv();
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["users"], json!(["alice", "bob", "carol", "dave"]), "{w}");
    // carol's node learns of dave through Redis: once she sees him online
    // (before that her node would answer no_such_user, rightly).
    presence(&mut carol, "dave", "online");
    carol.send(&json!({"type": "msg", "to": "dave", "text": "welcome back", "id": 2}));
    assert_eq!(
        carol.recv_until(|v| v["type"] == "ack"),
        json!({"type":"ack","id":2,"queued":1})
    );
    assert_eq!(dave.recv_until(|v| v["type"] == "msg")["text"], "welcome back");
}

#[test]
fn after_redis_restarts_empty_every_node_re_announces_its_users() {
    let mut redis = RedisServer::start();
    let n = nodes(&redis.url(), "restart", 2, NODE_TIMEOUT);
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (_carol, _) = hello(n[1].addr, "carol");
    presence(&mut alice, "carol", "online");
    let before = n[0].stats().cluster_reconnects;
    redis.restart_empty();
    n[0].until("reconnected", |s| {
        s.cluster_reconnects > before && s.cluster == ClusterState::Up
    });
    n[1].until("up", |s| s.cluster == ClusterState::Up);
    // Redis knows both users again: the nick stays taken cluster-wide.
    n[0].until("both users known", |s| {
        s.cluster_users == 2 && s.cluster_nodes == 2
    });
    let (_, w) = hello(n[0].addr, "carol");
    assert_eq!(w["code"], "nick_taken", "{w}");
    alice.send(&json!({"type": "msg", "to": "carol", "text": "x", "id": 3}));
    assert_eq!(
        alice.recv_until(|v| v["type"] == "ack"),
        json!({"type":"ack","id":3,"queued":1})
    );
}
