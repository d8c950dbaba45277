//! Backplanes on a real redis-server when things fail: a node killed (its
//! backplane dropped, no goodbye), Redis stopped (SIGSTOP) and continued,
//! Redis killed and restarted empty (every node re-announces; a nick two
//! nodes hold afterwards is resolved), a black-holing proxy between one
//! node and Redis, a node whose host stops pumping it for longer than
//! Redis keeps a subscriber, and what waits during an outage (bounded).
//! node_timeout is 600 ms; each wait has a deadline, and the times that
//! matter are printed.

mod common;

use std::time::{Duration, Instant};

use chat::cluster::{BackplaneEvent, ClaimOutcome, Presence, RelayError};
use chat::codec::resp::Reply;
use common::backplane::{Cluster, Node};
use common::redis::{BlackHole, RedisServer};

const NODE_TIMEOUT: Duration = Duration::from_millis(600);

/// What the design promises for finding a dead node: its heartbeat's
/// expiry, then the next heartbeat of a survivor (a third of it); plus a
/// second for a loaded machine's scheduling.
fn reap_bound() -> Duration {
    NODE_TIMEOUT + NODE_TIMEOUT / 3 + Duration::from_secs(1)
}

fn up_with(redis: &RedisServer, users: &[(usize, &str)], n: usize) -> Cluster {
    let mut c = Cluster::new(&redis.url(), "t", n, NODE_TIMEOUT);
    c.until_up();
    for &(i, nick) in users {
        assert_eq!(c.claim(i, nick), ClaimOutcome::Claimed, "{nick}");
    }
    let mut all: Vec<&str> = users.iter().map(|(_, u)| *u).collect();
    all.sort_unstable();
    c.until_users(&all);
    c
}

fn msg(from: &str, to: &str) -> Vec<u8> {
    format!(r#"{{"type":"msg","from":"{from}","to":"{to}","text":"x"}}"#).into_bytes()
}

#[test]
fn a_killed_node_has_its_users_offline_and_their_nicks_free_within_node_timeout() {
    let redis = RedisServer::start();
    let mut c = up_with(&redis, &[(0, "alice"), (1, "bob"), (2, "carol"), (2, "dave")], 3);
    c.join(0, "alice", "#r");
    c.join(2, "carol", "#r");
    c.until("carol in #r on n0", |c| {
        c.nodes[0].bp.room_members("#r") == ["alice", "carol"]
    });
    // Killed: its sockets close, it says nothing.
    drop(c.nodes.remove(2));
    let killed = Instant::now();
    let gone = |n: &Node| {
        n.core
            .count(|e| matches!(e, BackplaneEvent::NodeDown { node, nicks, .. } if node == "n2" && nicks == &["carol", "dave"]))
            == 1
    };
    c.until_within("n2 down on both survivors", reap_bound(), |c| {
        c.nodes.iter().all(gone)
    });
    eprintln!(
        "n2's users offline after {:?} (node_timeout {NODE_TIMEOUT:?})",
        killed.elapsed()
    );
    let p = c.nodes[0].core.presence();
    let tail: Vec<&Presence> = p[p.len() - 3..].to_vec();
    assert_eq!(
        tail,
        [
            &Presence::Parted {
                nick: "carol".into(),
                room: "#r".into()
            },
            &Presence::Offline {
                nick: "carol".into(),
                reason: "disconnect".into()
            },
            &Presence::Offline {
                nick: "dave".into(),
                reason: "disconnect".into()
            },
        ]
    );
    assert_eq!(c.nodes[1].bp.users(), ["alice", "bob"]);
    assert_eq!(c.nodes[0].bp.room_members("#r"), ["alice"]);
    assert_eq!(c.claim(1, "Carol"), ClaimOutcome::Claimed);
    // Exactly one survivor reaped it.
    assert_eq!(c.nodes.iter().map(|n| n.bp.stats().reaped).sum::<u64>(), 1);
}

#[test]
fn a_stopped_redis_makes_the_cluster_unavailable_until_it_continues() {
    let redis = RedisServer::start();
    let mut c = up_with(&redis, &[(0, "alice"), (1, "bob")], 2);
    redis.pause();
    let stopped = Instant::now();
    c.until("both down", |c| c.nodes.iter().all(|n| !n.bp.is_up()));
    eprintln!("both nodes down {:?} after SIGSTOP", stopped.elapsed());
    assert!(c
        .nodes
        .iter()
        .all(|n| n.core.count(|e| *e == BackplaneEvent::Down) == 1));
    // hello and join need the cluster: answered at once.
    let t = c.nodes[0].claim("carol");
    assert_eq!(c.nodes[0].core.claims[&t], ClaimOutcome::Unavailable);
    // Local chat goes on; a relay waits for Redis, counted for nobody.
    assert_eq!(
        c.nodes[0]
            .bp
            .send_to("alice", "bob", &msg("alice", "bob"), Instant::now()),
        Ok(0)
    );
    // Stopped for longer than node_timeout: when Redis runs again, the first
    // heartbeat reaps every node, each answers `new` and re-announces.
    c.until_within("twice node_timeout", NODE_TIMEOUT * 3, |_| {
        stopped.elapsed() > NODE_TIMEOUT * 2
    });
    redis.resume();
    let continued = Instant::now();
    c.until_up();
    eprintln!("up again {:?} after SIGCONT", continued.elapsed());
    // Redis reaped both (the heartbeats written before the stop ran when
    // it continued, on connections already given up): each node claimed
    // its users again, from the heartbeat's answer or from the snapshot.
    c.until_users(&["alice", "bob"]);
    c.until("Redis holds both again", |_| {
        redis_nicks(&redis) == ["n0 alice", "n1 bob"]
    });
    // Cross-node delivery works again, and the namespace is whole.
    let before = c.nodes[1].core.frames.len();
    assert_eq!(
        c.nodes[0]
            .bp
            .send_to("alice", "bob", &msg("alice", "bob"), Instant::now()),
        Ok(1)
    );
    c.until("the msg after recovery", |c| {
        c.nodes[1].core.frames.len() > before
    });
    assert!(matches!(c.claim(1, "ALICE"), ClaimOutcome::Taken { node } if node == "n0"));
    assert_eq!(c.claim(1, "carol"), ClaimOutcome::Claimed);
}

/// The nicks Redis holds: folded nick → "NODE NICK".
fn redis_nicks(redis: &RedisServer) -> Vec<String> {
    let reply = redis.client().cmd(&["HGETALL", "chat:{t}:nicks"]);
    let mut out: Vec<String> = reply
        .as_array()
        .unwrap()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p[1].as_bytes().unwrap()).into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn after_redis_restarts_empty_every_node_re_announces_and_each_nick_has_one_holder() {
    let mut redis = RedisServer::start();
    let mut c = up_with(&redis, &[(0, "alice"), (1, "bob")], 2);
    c.join(0, "alice", "#r");
    c.join(1, "bob", "#r");
    redis.restart_empty();
    c.until_up();
    c.until("Redis holds both again", |_| {
        redis_nicks(&redis) == ["n0 alice", "n1 bob"]
    });
    c.until("both in #r in Redis", |_| {
        redis.client().cmd(&["SCARD", "chat:{t}:room:#r"]) == Reply::Integer(2)
    });
    c.until("#r on both nodes", |c| {
        c.nodes
            .iter()
            .all(|n| n.bp.room_members("#r") == ["alice", "bob"])
    });

    // Again, but n0's host is slow to notice: n1 is back first and a new
    // client of n1 takes "alice", free in the empty Redis. When n0 comes
    // back, its claim of alice is refused: Redis decides (first claim
    // wins), n0 evicts its alice, and every node sees n1's.
    c.nodes[0].pumped = false;
    let synced = c.nodes[1].bp.stats().resyncs;
    redis.restart_empty();
    c.until("n1 back on the new Redis", |c| {
        c.nodes[1].bp.is_up() && c.nodes[1].bp.stats().resyncs > synced
    });
    assert_eq!(c.claim(1, "Alice"), ClaimOutcome::Claimed);
    c.nodes[0].pumped = true;
    c.until("alice evicted on n0", |c| {
        c.nodes[0].core.count(
            |e| matches!(e, BackplaneEvent::Evicted { nick, holder } if nick == "alice" && holder == "n1"),
        ) == 1
    });
    c.until_up();
    c.until_users(&["Alice", "bob"]);
    assert_eq!(redis_nicks(&redis), ["n1 Alice", "n1 bob"]);
    assert!(c.nodes.iter().all(|n| n.bp.node_of("alice") == Some("n1")));
    // n0's clients then see the winner come online.
    assert!(c.nodes[0]
        .core
        .presence()
        .contains(&&Presence::Online { nick: "Alice".into() }));
    let e = c.nodes[0].bp.stats().evictions;
    assert_eq!(e, 1);
}

#[test]
fn a_black_hole_between_a_node_and_redis_is_found_within_node_timeout() {
    let redis = RedisServer::start();
    let proxy = BlackHole::start(redis.addr());
    let mut c = Cluster {
        nodes: vec![
            Node::new(&format!("redis://{}/0", proxy.addr()), "t", "n0", NODE_TIMEOUT),
            Node::new(&redis.url(), "t", "n1", NODE_TIMEOUT),
        ],
    };
    c.until_up();
    assert_eq!(c.claim(0, "alice"), ClaimOutcome::Claimed);
    assert_eq!(c.claim(1, "bob"), ClaimOutcome::Claimed);
    c.until_users(&["alice", "bob"]);
    proxy.swallow(true);
    let cut = Instant::now();
    c.until_within("n0 down", NODE_TIMEOUT + Duration::from_secs(1), |c| {
        !c.nodes[0].bp.is_up()
    });
    eprintln!("n0 found the black hole after {:?}", cut.elapsed());
    // For n1, n0 is a silent node: reaped.
    c.until_within("alice offline on n1", reap_bound(), |c| {
        c.nodes[1].core.presence().contains(&&Presence::Offline {
            nick: "alice".into(),
            reason: "disconnect".into(),
        })
    });
    eprintln!("alice offline on n1 after {:?}", cut.elapsed());
    // n0 keeps its own users meanwhile; its clients get `unavailable`.
    assert_eq!(c.nodes[0].bp.users(), ["alice", "bob"]);
    proxy.swallow(false);
    c.until_up();
    c.until("alice back on n1", |c| {
        c.nodes[1].core.presence().last() == Some(&&Presence::Online { nick: "alice".into() })
    });
    c.until_users(&["alice", "bob"]);
}

#[test]
fn a_node_left_unpumped_past_the_subscriber_limit_reconnects_and_resyncs() {
    let redis = RedisServer::start();
    // Redis cuts a subscriber 256 KiB behind (the default is 32 MiB).
    redis.client().cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 262144 131072 1",
    ]);
    let mut c = up_with(&redis, &[(0, "alice"), (0, "carol"), (1, "bob")], 2);
    c.nodes[1].pumped = false;
    let stopped = Instant::now();
    // 8 MiB of broadcasts: more than the kernel's buffers and the limit.
    let big = format!(
        r#"{{"type":"all","from":"alice","text":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    for _ in 0..16 {
        for _ in 0..8 {
            c.nodes[0]
                .bp
                .broadcast("alice", big.as_bytes(), Instant::now())
                .unwrap();
        }
        c.round(Duration::ZERO);
    }
    c.until("Redis dropped n1's subscriber", |_| {
        let list = redis.client().cmd(&["CLIENT", "LIST"]);
        !String::from_utf8_lossy(list.as_bytes().unwrap()).contains("name=chat-n1-sub")
    });
    // Meanwhile carol quits, and n1 stays silent past node_timeout: reaped.
    c.nodes[0].bp.release("carol", "quit", Instant::now());
    c.until_within("bob reaped", reap_bound() * 2, |c| {
        c.nodes[0].core.presence().contains(&&Presence::Offline {
            nick: "bob".into(),
            reason: "disconnect".into(),
        })
    });
    eprintln!("n1 unpumped for {:?}", stopped.elapsed());
    c.nodes[1].pumped = true;
    c.until_up();
    c.until_users(&["alice", "bob"]);
    // n1's clients are told what they missed, as presence; n0's see bob
    // back once n1 re-announced.
    c.until("carol offline on n1", |c| {
        c.nodes[1].core.presence().contains(&&Presence::Offline {
            nick: "carol".into(),
            reason: "disconnect".into(),
        })
    });
    c.until("bob online again on n0", |c| {
        c.nodes[0].core.presence().last() == Some(&&Presence::Online { nick: "bob".into() })
    });
    let s = c.nodes[1].bp.stats();
    assert!(
        s.subscriber.reconnects >= 1 && s.resyncs >= 2 && s.reannounces >= 1,
        "{s:#?}"
    );
    eprintln!(
        "n1 got {} of 128 broadcasts from before the cut",
        c.nodes[1].core.frames.len()
    );
}

#[test]
fn relays_during_an_outage_are_bounded_in_bytes_and_age() {
    let mut redis = RedisServer::start();
    let small = |cfg: &mut chat::cluster::BackplaneConfig| cfg.max_pending_bytes = 64 * 1024;
    let mut c = Cluster {
        nodes: vec![
            Node::with(&redis.url(), "t", "n0", NODE_TIMEOUT, small),
            Node::new(&redis.url(), "t", "n1", NODE_TIMEOUT),
        ],
    };
    c.until_up();
    c.claim(0, "alice");
    c.claim(1, "bob");
    c.until_users(&["alice", "bob"]);
    redis.kill9();
    c.until("both down", |c| c.nodes.iter().all(|n| !n.bp.is_up()));
    let f = msg("alice", "bob");
    let (mut queued, mut refused) = (0, 0);
    for _ in 0..2000 {
        match c.nodes[0].bp.send_to("alice", "bob", &f, Instant::now()) {
            Ok(0) => queued += 1,
            Err(RelayError::Full) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    let s = c.nodes[0].bp.stats();
    eprintln!(
        "{queued} queued, {refused} refused; {} bytes wait",
        s.commands.pending_bytes
    );
    assert!(queued > 0 && refused > 0);
    assert!(s.commands.pending_bytes <= 64 * 1024);
    assert_eq!(s.relay_refused, refused);
    // Older than max_pending_age (node_timeout here): dropped and counted.
    c.until("the relays expired", |c| {
        c.nodes[0].bp.stats().relay_failed == queued
    });
    assert_eq!(c.nodes[0].bp.stats().commands.pending_bytes, 0);
    redis.restart_empty();
    c.until_up();
    c.until_users(&["alice", "bob"]);
    assert!(c.nodes[1].core.frames.is_empty());
}
