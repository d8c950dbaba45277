//! Real `chat::Server`s as nodes of one cluster on a real redis-server,
//! with real TCP clients: one nick namespace, `welcome.users` and `who`
//! cluster-wide, presence across nodes, unicast, broadcast and rooms
//! across nodes (`joined.members` cluster-wide), acks counting remote
//! recipients, `nick`, `members` and `rooms`, and one sender's order.

mod common;

use std::time::Duration;

use common::cluster_server::{hello, node_config, nodes, presence, ClusterServer};
use common::redis::RedisServer;
use common::TestClient;
use serde_json::{json, Value};

const NODE_TIMEOUT: Duration = Duration::from_millis(600);

#[test]
fn three_nodes_are_one_chat() {
    let redis = RedisServer::start();
    let n = nodes(&redis.url(), "one", 3, NODE_TIMEOUT);

    let (mut alice, w) = hello(n[0].addr, "alice");
    assert_eq!(w, json!({"type":"welcome","nick":"alice","users":["alice"]}));
    let (mut bob, w) = hello(n[1].addr, "bob");
    assert_eq!(w, json!({"type":"welcome","nick":"bob","users":["alice","bob"]}));
    assert_eq!(
        presence(&mut alice, "bob", "online"),
        json!({"type":"presence","nick":"bob","state":"online"})
    );

    // One nick namespace, compared case-insensitively, across nodes.
    let (mut other, w) = hello(n[2].addr, "ALICE");
    assert_eq!(w["code"], "nick_taken", "{w}");
    other.send(&json!({"type": "hello", "nick": "carol"}));
    let w = other.recv();
    assert_eq!(w["users"], json!(["alice", "bob", "carol"]), "{w}");
    let mut carol = other;
    presence(&mut alice, "carol", "online");
    presence(&mut bob, "carol", "online");

    alice.send(&json!({"type": "who"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"users","users":["alice","bob","carol"]})
    );

    // Unicast to another node, acked as handed to Redis.
    alice.send(&json!({"type": "msg", "to": "Carol", "text": "hi", "id": 1}));
    assert_eq!(alice.recv(), json!({"type":"ack","id":1,"queued":1}));
    assert_eq!(
        carol.recv(),
        json!({"type":"msg","from":"alice","to":"carol","text":"hi"})
    );
    alice.send(&json!({"type": "msg", "to": "nobody", "text": "hi"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"error","code":"no_such_user","to":"nobody"})
    );

    // Broadcast: every node, the ack counts everyone but the sender.
    bob.send(&json!({"type": "all", "text": "hello all", "id": 2}));
    assert_eq!(bob.recv(), json!({"type":"ack","id":2,"queued":2}));
    let all = json!({"type":"all","from":"bob","text":"hello all"});
    assert_eq!(alice.recv(), all);
    assert_eq!(carol.recv(), all);

    // A room across nodes: the first spelling stays, members cluster-wide.
    alice.send(&json!({"type": "join", "room": "#Rust"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"joined","room":"#Rust","members":["alice"]})
    );
    bob.send(&json!({"type": "join", "room": "#rust"}));
    assert_eq!(
        bob.recv(),
        json!({"type":"joined","room":"#Rust","members":["alice","bob"]})
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#Rust","state":"joined"})
    );
    carol.send(&json!({"type": "join", "room": "#RUST"}));
    assert_eq!(
        carol.recv(),
        json!({"type":"joined","room":"#Rust","members":["alice","bob","carol"]})
    );
    presence(&mut alice, "carol", "joined");
    presence(&mut bob, "carol", "joined");
    carol.send(&json!({"type": "room", "room": "#rust", "text": "in the room", "id": 3}));
    assert_eq!(carol.recv(), json!({"type":"ack","id":3,"queued":2}));
    let said = json!({"type":"room","room":"#Rust","from":"carol","text":"in the room"});
    assert_eq!(alice.recv(), said);
    assert_eq!(bob.recv(), said);
    bob.send(&json!({"type": "members", "room": "#rust"}));
    assert_eq!(
        bob.recv(),
        json!({"type":"members","room":"#Rust","members":["alice","bob","carol"]})
    );
    alice.send(&json!({"type": "rooms"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"rooms","rooms":[{"room":"#Rust","members":3}]})
    );

    // A rename: taken on another node, then free.
    bob.send(&json!({"type": "nick", "nick": "CAROL"}));
    assert_eq!(bob.recv()["code"], "nick_taken");
    bob.send(&json!({"type": "nick", "nick": "bob2"}));
    assert_eq!(bob.recv(), json!({"type":"nick","nick":"bob2","old":"bob"}));
    let renamed = json!({"type":"presence","nick":"bob2","old":"bob","state":"renamed"});
    assert_eq!(alice.recv(), renamed);
    assert_eq!(carol.recv(), renamed);
    alice.send(&json!({"type": "msg", "to": "bob2", "text": "new name", "id": 4}));
    assert_eq!(alice.recv(), json!({"type":"ack","id":4,"queued":1}));
    assert_eq!(bob.recv()["text"], "new name");

    // A part and a quit are seen on the other nodes.
    carol.send(&json!({"type": "part", "room": "#Rust"}));
    assert_eq!(carol.recv(), json!({"type":"parted","room":"#Rust"}));
    assert_eq!(
        presence(&mut alice, "carol", "parted"),
        json!({"type":"presence","nick":"carol","room":"#Rust","state":"parted"})
    );
    carol.send(&json!({"type": "quit"}));
    assert_eq!(
        presence(&mut bob, "carol", "offline"),
        json!({"type":"presence","nick":"carol","state":"offline","reason":"quit"})
    );
    // The nick is free again, on any node.
    let (_carol2, w) = hello(n[0].addr, "carol");
    assert_eq!(w["type"], "welcome", "{w}");
    let stats = n[0].stats();
    assert!(stats.relayed_out >= 2 && stats.relayed_in >= 2, "{stats:?}");
}

#[test]
fn one_senders_frames_reach_a_remote_recipient_in_order() {
    let redis = RedisServer::start();
    // Three nodes: the sender on the first, the recipient on the last.
    let n = nodes(&redis.url(), "order", 3, NODE_TIMEOUT);
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (mut bob, _) = hello(n[2].addr, "bob");
    presence(&mut alice, "bob", "online");
    for c in [&mut alice, &mut bob] {
        c.send(&json!({"type": "join", "room": "#o"}));
        c.recv_until(|v| v["type"] == "joined");
    }
    presence(&mut alice, "bob", "joined");
    const N: usize = 2000;
    for i in 0..N {
        let text = i.to_string();
        let frame = match i % 3 {
            0 => json!({"type": "msg", "to": "bob", "text": text}),
            1 => json!({"type": "all", "text": text}),
            _ => json!({"type": "room", "room": "#o", "text": text}),
        };
        alice.send(&frame);
    }
    for i in 0..N {
        let v = bob.recv();
        let kind = ["msg", "all", "room"][i % 3];
        assert_eq!(
            (v["type"].as_str(), v["text"].as_str()),
            (Some(kind), Some(&*i.to_string())),
            "{v}"
        );
    }
}

#[test]
fn concurrent_hellos_for_one_nick_on_three_nodes_have_one_winner() {
    let redis = RedisServer::start();
    let n = nodes(&redis.url(), "race", 3, NODE_TIMEOUT);
    for round in 0..20 {
        let nick = format!("racer{round}");
        let mut clients: Vec<TestClient> = n.iter().map(|node| TestClient::connect(node.addr)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            // Different spellings: one namespace, case-insensitive.
            let spelled = if i == 1 { nick.to_uppercase() } else { nick.clone() };
            c.send(&json!({"type": "hello", "nick": spelled}));
        }
        let answers: Vec<Value> = clients.iter_mut().map(|c| c.recv()).collect();
        let won = answers.iter().filter(|w| w["type"] == "welcome").count();
        let taken = answers.iter().filter(|w| w["code"] == "nick_taken").count();
        assert_eq!((won, taken), (1, 2), "{answers:?}");
    }
}

#[test]
fn a_rooms_member_limit_counts_every_node() {
    let redis = RedisServer::start();
    let n: Vec<ClusterServer> = (0..2)
        .map(|_| {
            let mut cfg = node_config(&redis.url(), "full", NODE_TIMEOUT);
            cfg.max_members_per_room = 2;
            ClusterServer::start(cfg)
        })
        .collect();
    for node in &n {
        node.until_up(2);
    }
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (mut bob, _) = hello(n[1].addr, "bob");
    let (mut carol, _) = hello(n[1].addr, "carol");
    for c in [&mut alice, &mut bob] {
        c.send(&json!({"type": "join", "room": "#two"}));
        c.recv_until(|v| v["type"] == "joined");
    }
    // One member on each node: the room is full for a third on either.
    carol.send(&json!({"type": "join", "room": "#two"}));
    assert_eq!(
        carol.recv_until(|v| v["type"] == "error"),
        json!({"type":"error","code":"room_full","room":"#two"})
    );
    bob.send(&json!({"type": "part", "room": "#two"}));
    bob.recv_until(|v| v["type"] == "parted");
    carol.send(&json!({"type": "join", "room": "#two"}));
    assert_eq!(
        carol.recv_until(|v| v["type"] == "joined"),
        json!({"type":"joined","room":"#two","members":["alice","carol"]})
    );
}

#[test]
fn a_node_that_shuts_down_says_so_at_once() {
    let redis = RedisServer::start();
    let mut n = nodes(&redis.url(), "bye", 2, Duration::from_secs(30));
    let (mut alice, _) = hello(n[0].addr, "alice");
    let (mut bob, _) = hello(n[1].addr, "bob");
    presence(&mut alice, "bob", "online");
    // Dropping it shuts it down gracefully (node_timeout is 30 s here: the
    // news cannot come from reaping).
    drop(n.pop());
    assert_eq!(bob.recv_until(|v| v["type"] == "error")["code"], "shutdown");
    assert_eq!(
        presence(&mut alice, "bob", "offline"),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"shutdown"})
    );
    n[0].until("one node left", |s| s.cluster_nodes == 1 && s.cluster_users == 1);
}
