//! The cluster's Lua scripts against a real redis-server: one winner among
//! concurrent claims of a nick from many connections; rooms across nodes;
//! the reaper freeing an expired node's nicks and publishing `offline`,
//! and doing nothing the second time; a directory rebuilt from a snapshot
//! plus the newer of the events buffered meanwhile equals the real one.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;

use chat::cluster::scripts::{self, Names, Script};
use chat::cluster::{DirEvent, Directory};
use chat::codec::resp::Reply;
use common::redis::{strings, RedisServer, RespClient};

const TTL_MS: &str = "60000";

fn names() -> Names {
    Names::new("test").unwrap()
}

/// Runs a script with `EVAL` (the link uses `EVALSHA`; same source).
fn eval(c: &mut RespClient, script: &Script, args: &[&str]) -> Reply {
    let prefix = names().prefix().to_string();
    let mut all: Vec<&[u8]> = vec![b"EVAL", script.source.as_bytes(), b"0", prefix.as_bytes()];
    all.extend(args.iter().map(|a| a.as_bytes()));
    let reply = c.cmd_bytes(&all);
    assert!(reply.as_error().is_none(), "{}: {reply:?}", script.name);
    reply
}

fn status(reply: &Reply) -> String {
    let first = &reply.as_array().unwrap_or_else(|| panic!("{reply:?}"))[0];
    String::from_utf8(first.as_bytes().unwrap().to_vec()).unwrap()
}

/// A subscriber to the all channel, with a PING barrier: every message
/// published before the barrier was asked for arrives before its pong.
struct Events {
    c: RespClient,
}

impl Events {
    fn subscribe(redis: &RedisServer) -> Events {
        let mut c = redis.client();
        let reply = c.cmd(&["SUBSCRIBE", &names().all_channel()]);
        assert_eq!(reply.as_array().unwrap()[0], Reply::Bulk(b"subscribe".to_vec()));
        Events { c }
    }

    /// Every event published so far, in order.
    fn drain(&mut self) -> Vec<(u64, DirEvent, String)> {
        self.c.send(&[b"PING"]);
        let mut out = Vec::new();
        loop {
            let r = self.c.read();
            let items = strings(&r);
            match items[0].as_str() {
                "pong" => return out,
                "message" => {
                    let (v, e) = DirEvent::parse(items[2].as_bytes()).expect("a directory event");
                    out.push((v, e, items[2].clone()));
                }
                other => panic!("unexpected push {other}"),
            }
        }
    }
}

fn texts(events: &[(u64, DirEvent, String)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, _, t)| {
            t.split_once(' ')
                .unwrap()
                .1
                .split_once(' ')
                .unwrap()
                .1
                .to_string()
        })
        .collect()
}

#[test]
fn concurrent_claims_of_one_nick_have_exactly_one_winner() {
    let redis = RedisServer::start();
    let mut events = Events::subscribe(&redis);
    const NODES: usize = 8;
    const ROUNDS: usize = 25;
    let barrier = Arc::new(Barrier::new(NODES));
    let addr = redis.addr();
    let threads: Vec<_> = (0..NODES)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = RespClient::connect(addr);
                let node = format!("n{i}");
                assert_eq!(
                    status(&eval(&mut c, &scripts::HEARTBEAT, &[&node, TTL_MS])),
                    "new"
                );
                let mut results = Vec::new();
                for round in 0..ROUNDS {
                    // Each node spells the nick its own way: one namespace.
                    let nick = if i % 2 == 0 {
                        format!("Nick{round}")
                    } else {
                        format!("nICK{round}")
                    };
                    barrier.wait();
                    results.push(eval(&mut c, &scripts::CLAIM, &[&node, &nick]));
                }
                (node, results)
            })
        })
        .collect();
    let results: Vec<(String, Vec<Reply>)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut c = redis.client();
    for round in 0..ROUNDS {
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, r)| status(&r[round]) == "ok")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        for (_, r) in &results {
            if status(&r[round]) == "taken" {
                assert_eq!(
                    strings(&Reply::Array(r[round].as_array().unwrap()[1..].to_vec())),
                    [winners[0].clone()]
                );
            }
        }
        let held = c.cmd(&["HGET", &names().key("nicks"), &format!("nick{round}")]);
        let held = String::from_utf8(held.as_bytes().unwrap().to_vec()).unwrap();
        assert!(held.starts_with(&format!("{} ", winners[0])), "{held}");
    }
    let online = events
        .drain()
        .into_iter()
        .filter(|(_, e, _)| matches!(e, DirEvent::Online { .. }))
        .count();
    assert_eq!(online, ROUNDS, "one online per nick");
}

#[test]
fn the_reaper_frees_an_expired_nodes_nicks_and_is_idempotent() {
    let redis = RedisServer::start();
    let mut c = redis.client();
    for node in ["a", "b"] {
        assert_eq!(status(&eval(&mut c, &scripts::HEARTBEAT, &[node, TTL_MS])), "new");
    }
    for (node, nick) in [("a", "Alice"), ("a", "bob"), ("b", "carol")] {
        assert_eq!(status(&eval(&mut c, &scripts::CLAIM, &[node, nick])), "ok");
    }
    for (node, nick) in [("a", "Alice"), ("b", "carol")] {
        assert_eq!(
            status(&eval(&mut c, &scripts::JOIN, &[node, nick, "#Rust", "0"])),
            "ok"
        );
    }
    let mut events = Events::subscribe(&redis);
    // Node a's last heartbeat expires at once: it stopped.
    assert_eq!(status(&eval(&mut c, &scripts::HEARTBEAT, &["a", "0"])), "alive");
    assert!(events.drain().is_empty());
    // Node a's own claims are refused now: it must heartbeat first.
    assert_eq!(status(&eval(&mut c, &scripts::CLAIM, &["a", "dave"])), "no_node");

    let reaped = eval(&mut c, &scripts::REAP, &[]);
    assert_eq!(strings(&reaped), ["a"]);
    let seen = events.drain();
    assert_eq!(
        texts(&seen),
        [
            "parted a Alice #Rust",
            "offline a Alice disconnect",
            "offline a bob disconnect",
            "down a disconnect"
        ]
    );
    let versions: Vec<u64> = seen.iter().map(|(v, _, _)| *v).collect();
    assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "{versions:?}");

    // Idempotent: nothing left to reap, nothing published, nothing changed.
    let before = c.cmd(&["GET", &names().key("version")]);
    assert_eq!(strings(&eval(&mut c, &scripts::REAP, &[])), Vec::<String>::new());
    assert!(events.drain().is_empty());
    assert_eq!(c.cmd(&["GET", &names().key("version")]), before);

    let dir = Directory::from_snapshot(&eval(&mut c, &scripts::SNAPSHOT, &[])).unwrap();
    assert_eq!(dir.nicks.keys().collect::<Vec<_>>(), ["carol"]);
    assert_eq!(dir.rooms["#rust"].members.values().collect::<Vec<_>>(), ["carol"]);
    assert_eq!(dir.nodes, BTreeSet::from(["b".to_string()]));
    // The nicks are free again, and the node's leftovers are gone.
    assert_eq!(status(&eval(&mut c, &scripts::CLAIM, &["b", "alice"])), "ok");
    assert_eq!(
        c.cmd(&[
            "EXISTS",
            &names().key("node:a:nicks"),
            &names().key("member:alice")
        ]),
        Reply::Integer(0)
    );
    // A reaped node that comes back is new: it re-announces.
    assert_eq!(status(&eval(&mut c, &scripts::HEARTBEAT, &["a", TTL_MS])), "new");
    assert_eq!(status(&eval(&mut c, &scripts::CLAIM, &["a", "Alice"])), "taken");
}

#[test]
fn a_late_heartbeat_reaps_its_own_node_first() {
    let redis = RedisServer::start();
    let mut c = redis.client();
    eval(&mut c, &scripts::HEARTBEAT, &["a", TTL_MS]);
    eval(&mut c, &scripts::CLAIM, &["a", "alice"]);
    eval(&mut c, &scripts::HEARTBEAT, &["a", "0"]);
    let mut events = Events::subscribe(&redis);
    let hb = eval(&mut c, &scripts::HEARTBEAT, &["a", TTL_MS]);
    assert_eq!(status(&hb), "new");
    assert_eq!(
        strings(&Reply::Array(
            hb.as_array().unwrap()[2].as_array().unwrap().to_vec()
        )),
        ["a"]
    );
    assert_eq!(
        texts(&events.drain()),
        ["offline a alice disconnect", "down a disconnect", "up a"]
    );
}

#[test]
fn rooms_span_nodes_and_release_rename_and_part_publish_what_they_change() {
    let redis = RedisServer::start();
    let mut c = redis.client();
    for node in ["a", "b"] {
        eval(&mut c, &scripts::HEARTBEAT, &[node, TTL_MS]);
    }
    eval(&mut c, &scripts::CLAIM, &["a", "alice"]);
    eval(&mut c, &scripts::CLAIM, &["b", "bob"]);
    eval(&mut c, &scripts::CLAIM, &["b", "eve"]);
    let mut events = Events::subscribe(&redis);
    let joined = eval(&mut c, &scripts::JOIN, &["a", "alice", "#Rust", "2"]);
    assert_eq!(joined.as_array().unwrap()[2], Reply::Integer(1));
    // The room keeps its creator's spelling; a second join changes nothing.
    let again = eval(&mut c, &scripts::JOIN, &["b", "bob", "#rust", "2"]);
    assert_eq!(again.as_array().unwrap()[3], Reply::Bulk(b"#Rust".to_vec()));
    let twice = eval(&mut c, &scripts::JOIN, &["b", "bob", "#RUST", "2"]);
    assert_eq!(twice.as_array().unwrap()[2], Reply::Integer(0));
    assert_eq!(
        status(&eval(&mut c, &scripts::JOIN, &["b", "eve", "#rust", "2"])),
        "room_full"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::JOIN, &["a", "bob", "#rust", "0"])),
        "not_owner"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::RENAME, &["b", "bob", "Alice"])),
        "taken"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::RENAME, &["b", "bob", "Robert"])),
        "ok"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::PART, &["b", "eve", "#rust"])),
        "not_in_room"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::PART, &["b", "robert", "#rust"])),
        "ok"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::RELEASE, &["b", "alice", "quit"])),
        "not_owner"
    );
    assert_eq!(
        status(&eval(&mut c, &scripts::RELEASE, &["a", "ALICE", "quit"])),
        "ok"
    );
    assert_eq!(
        texts(&events.drain()),
        [
            "joined a alice #Rust",
            "joined b bob #Rust",
            "rename b bob Robert",
            "parted b Robert #Rust",
            "parted a alice #Rust",
            "offline a alice quit",
        ]
    );
    let dir = Directory::from_snapshot(&eval(&mut c, &scripts::SNAPSHOT, &[])).unwrap();
    assert!(dir.rooms.is_empty());
    assert_eq!(
        dir.nicks.values().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["eve", "Robert"]
    );
    // A node's goodbye frees everything it holds.
    assert_eq!(
        eval(&mut c, &scripts::LEAVE, &["b", "shutdown"]),
        Reply::Integer(2)
    );
    assert_eq!(
        texts(&events.drain()),
        [
            "offline b eve shutdown",
            "offline b Robert shutdown",
            "down b shutdown"
        ]
    );
}

#[test]
fn a_snapshot_plus_newer_buffered_events_is_the_directory() {
    let redis = RedisServer::start();
    let addr = redis.addr();
    let mut c = redis.client();
    for node in ["a", "b", "c"] {
        eval(&mut c, &scripts::HEARTBEAT, &[node, TTL_MS]);
    }
    for i in 0..20 {
        eval(
            &mut c,
            &scripts::CLAIM,
            &[["a", "b", "c"][i % 3], &format!("early{i}")],
        );
    }
    // Subscribe first; a writer changes things before, during and after
    // the snapshot (barriers mark the phases).
    let mut events = Events::subscribe(&redis);
    let phases = Arc::new(Barrier::new(2));
    let writer_phases = phases.clone();
    let writer = thread::spawn(move || {
        let mut c = RespClient::connect(addr);
        for i in 0..300 {
            if i == 100 || i == 200 {
                writer_phases.wait();
            }
            // Blocks of ten steps, one per nick (nick k on node k % 3):
            // claim, join, join another room, part the first, release.
            let (block, k) = (i / 10, i % 10);
            let (node, nick) = (["a", "b", "c"][k % 3], format!("u{k}"));
            let room = |b: usize| format!("#r{}", (b / 5 + k) % 4);
            let other = |b: usize| format!("#R{}", (b / 5 + k + 1) % 4);
            match block % 5 {
                0 => eval(&mut c, &scripts::CLAIM, &[node, &nick]),
                1 => eval(&mut c, &scripts::JOIN, &[node, &nick, &room(block), "0"]),
                2 => eval(&mut c, &scripts::JOIN, &[node, &nick, &other(block), "0"]),
                3 => eval(&mut c, &scripts::PART, &[node, &nick, &room(block)]),
                _ => eval(&mut c, &scripts::RELEASE, &[node, &nick, "quit"]),
            };
        }
    });
    phases.wait();
    let mut snap_client = redis.client();
    let snapshot = eval(&mut snap_client, &scripts::SNAPSHOT, &[]);
    phases.wait();
    writer.join().unwrap();
    let mut dir = Directory::from_snapshot(&snapshot).unwrap();
    let buffered = events.drain();
    let applied = buffered.iter().filter(|(v, e, _)| dir.apply(*v, e)).count();
    let stale = buffered.len() - applied;
    eprintln!(
        "{} events buffered: {stale} already in the snapshot, {applied} newer",
        buffered.len()
    );
    assert!(stale > 0 && applied > 0, "{stale} stale, {applied} applied");
    let truth = Directory::from_snapshot(&eval(&mut c, &scripts::SNAPSHOT, &[])).unwrap();
    assert_eq!(dir, truth);
    // Re-applying old events changes nothing.
    for (v, e, _) in &buffered {
        assert!(!dir.apply(*v, e));
    }
    assert_eq!(dir, truth);
}

#[test]
fn nodes_reaping_at_once_free_a_dead_node_exactly_once() {
    let redis = RedisServer::start();
    let mut c = redis.client();
    eval(&mut c, &scripts::HEARTBEAT, &["dead", TTL_MS]);
    for nick in ["x1", "x2", "x3"] {
        eval(&mut c, &scripts::CLAIM, &["dead", nick]);
    }
    eval(&mut c, &scripts::HEARTBEAT, &["dead", "0"]);
    let mut events = Events::subscribe(&redis);
    const REAPERS: usize = 6;
    let barrier = Arc::new(Barrier::new(REAPERS));
    let addr = redis.addr();
    let reapers: Vec<_> = (0..REAPERS)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = RespClient::connect(addr);
                barrier.wait();
                // Half reap alone, half through their heartbeat.
                if i % 2 == 0 {
                    strings(&eval(&mut c, &scripts::REAP, &[]))
                } else {
                    let hb = eval(&mut c, &scripts::HEARTBEAT, &[&format!("live{i}"), TTL_MS]);
                    strings(&hb.as_array().unwrap()[2])
                }
            })
        })
        .collect();
    let reaped: Vec<Vec<String>> = reapers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(reaped.iter().filter(|r| *r == &["dead"]).count(), 1, "{reaped:?}");
    assert_eq!(
        reaped.iter().filter(|r| r.is_empty()).count(),
        REAPERS - 1,
        "{reaped:?}"
    );
    let offline: Vec<String> = texts(&events.drain())
        .into_iter()
        .filter(|t| !t.starts_with("up "))
        .collect();
    assert_eq!(
        offline,
        [
            "offline dead x1 disconnect",
            "offline dead x2 disconnect",
            "offline dead x3 disconnect",
            "down dead disconnect"
        ]
    );
}
