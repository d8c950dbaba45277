//! Backplanes of two and three nodes on one real redis-server, pumped by
//! one select() loop over real sockets, each with a fake core: one nick
//! namespace under concurrent claims (exactly one winner), unicast to a
//! user on another node, broadcast reaching every other node once, rooms
//! spanning nodes with cluster-wide members, presence, and the order of
//! 2,000 frames from one sender mixing msg, all and room.

mod common;

use std::time::{Duration, Instant};

use chat::cluster::{BackplaneEvent, ClaimOutcome, JoinOutcome, Presence, RelayError, RenameOutcome};
use common::backplane::Cluster;
use common::redis::RedisServer;

/// Long enough that a loaded machine never trips it in these tests.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);

fn cluster(redis: &RedisServer, n: usize) -> Cluster {
    let mut c = Cluster::new(&redis.url(), "t", n, NODE_TIMEOUT);
    c.until_up();
    c
}

fn frame(kind: &str, from: &str, text: &str) -> Vec<u8> {
    format!(r#"{{"type":"{kind}","from":"{from}","text":"{text}"}}"#).into_bytes()
}

#[test]
fn concurrent_claims_of_one_nick_on_three_nodes_have_exactly_one_winner() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 3);
    for round in 0..20 {
        // Every node asks before any answer comes, each spelling it its way.
        let spellings = [
            format!("Nick{round}"),
            format!("nICK{round}"),
            format!("nick{round}"),
        ];
        let tickets: Vec<_> = (0..3).map(|i| c.nodes[i].claim(&spellings[i])).collect();
        c.until("every outcome", |c| {
            (0..3).all(|i| c.nodes[i].core.claims.contains_key(&tickets[i]))
        });
        let outcomes: Vec<ClaimOutcome> = (0..3)
            .map(|i| c.nodes[i].core.claims[&tickets[i]].clone())
            .collect();
        let winners: Vec<usize> = (0..3).filter(|&i| outcomes[i] == ClaimOutcome::Claimed).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let winner = format!("n{}", winners[0]);
        for o in &outcomes {
            if *o != ClaimOutcome::Claimed {
                assert_eq!(*o, ClaimOutcome::Taken { node: winner.clone() });
            }
        }
        // Every node agrees on where it is, and spells it the winner's way.
        let spelled = spellings[winners[0]].clone();
        c.until("the winner everywhere", |c| {
            c.nodes
                .iter()
                .all(|n| n.bp.locate(&spelled).map(|l| (l.nick, l.node)) == Some((&spelled, &winner)))
        });
    }
    // A claim the directory can already refuse needs no round trip.
    let t = c.nodes[0].claim("NICK0");
    let answer = c.nodes[0].core.claims.get(&t).cloned();
    assert!(matches!(answer, Some(ClaimOutcome::Taken { .. })), "{answer:?}");
    for n in &c.nodes {
        assert_eq!(n.bp.users().len(), 20);
        assert_eq!(n.bp.stats().nodes, 3);
    }
}

#[test]
fn unicast_reaches_a_user_on_another_node_and_presence_follows_users() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 3);
    assert_eq!(c.claim(0, "alice"), ClaimOutcome::Claimed);
    assert_eq!(c.claim(1, "Bob"), ClaimOutcome::Claimed);
    c.until_users(&["Bob", "alice"]);
    // n2 has no users: it was told of both.
    c.until("online presence on n2", |c| c.nodes[2].core.presence().len() == 2);
    assert_eq!(
        c.nodes[2].core.presence(),
        [
            &Presence::Online { nick: "alice".into() },
            &Presence::Online { nick: "Bob".into() }
        ]
    );
    let now = Instant::now();
    let hi = br#"{"type":"msg","from":"alice","to":"Bob","text":"hi"}"#;
    assert_eq!(c.nodes[0].bp.send_to("alice", "bob", hi, now), Ok(1));
    assert_eq!(
        c.nodes[0].bp.send_to("alice", "nobody", hi, now),
        Err(RelayError::NoSuchUser)
    );
    assert_eq!(
        c.nodes[0].bp.send_to("alice", "ALICE", hi, now),
        Err(RelayError::Local)
    );
    c.until("the msg on n1", |c| !c.nodes[1].core.frames.is_empty());
    assert_eq!(
        c.nodes[1].core.frames,
        [("msg", "Bob".to_string(), String::from_utf8(hi.to_vec()).unwrap())]
    );
    let back = br#"{"type":"msg","from":"Bob","to":"alice","text":"yo"}"#;
    assert_eq!(c.nodes[1].bp.send_to("Bob", "Alice", back, Instant::now()), Ok(1));
    c.until("the reply on n0", |c| !c.nodes[0].core.frames.is_empty());
    assert_eq!(c.nodes[0].core.frames[0].1, "alice");
    assert!(c.nodes[2].core.frames.is_empty());

    // A rename and a quit reach the other nodes as presence.
    let t = c.nodes[1].bp.rename("Bob", "Robert", Instant::now());
    c.until("the rename", |c| {
        c.nodes[1]
            .core
            .log
            .iter()
            .any(|e| matches!(e, BackplaneEvent::Rename { ticket, .. } if *ticket == t))
    });
    assert!(c.nodes[1].core.log.iter().any(|e| matches!(
        e,
        BackplaneEvent::Rename {
            outcome: RenameOutcome::Renamed,
            ..
        }
    )));
    c.nodes[0].bp.release("alice", "quit", Instant::now());
    c.until_users(&["Robert"]);
    c.until("presence on n2", |c| c.nodes[2].core.presence().len() == 4);
    assert_eq!(
        &c.nodes[2].core.presence()[2..],
        [
            &Presence::Renamed {
                old: "Bob".into(),
                new: "Robert".into()
            },
            &Presence::Offline {
                nick: "alice".into(),
                reason: "quit".into()
            }
        ]
    );
    // The nick is free again, on any node.
    assert_eq!(c.claim(2, "Alice"), ClaimOutcome::Claimed);
}

#[test]
fn a_broadcast_reaches_every_other_node_once() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 3);
    for (i, nick) in [(0, "a0"), (1, "a1"), (2, "a2"), (2, "b2")] {
        assert_eq!(c.claim(i, nick), ClaimOutcome::Claimed);
    }
    c.until_users(&["a0", "a1", "a2", "b2"]);
    let f = frame("all", "a0", "to everyone");
    // Counted for the ack: the three users on other nodes.
    assert_eq!(c.nodes[0].bp.broadcast("a0", &f, Instant::now()), Ok(3));
    c.until("the broadcast on n1 and n2", |c| {
        c.nodes[1..].iter().all(|n| !n.core.frames.is_empty())
    });
    // A round trip later (a second broadcast, from n1), still one each.
    let g = frame("all", "a1", "second");
    assert_eq!(c.nodes[1].bp.broadcast("a1", &g, Instant::now()), Ok(3));
    c.until("the second", |c| {
        c.nodes[0].core.frames.len() == 1 && c.nodes[2].core.frames.len() == 2
    });
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    assert_eq!(c.nodes[0].core.frames, [("all", String::new(), text(&g))]);
    assert_eq!(c.nodes[1].core.frames, [("all", String::new(), text(&f))]);
    assert_eq!(
        c.nodes[2].core.frames,
        [("all", String::new(), text(&f)), ("all", String::new(), text(&g))]
    );
    let s = c.nodes[0].bp.stats();
    assert_eq!((s.relayed_out, s.relayed_in), (1, 1));
}

#[test]
fn rooms_span_nodes_with_members_listed_cluster_wide() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 3);
    for (i, nick) in [(0, "alice"), (1, "bob"), (2, "carol"), (2, "dave")] {
        assert_eq!(c.claim(i, nick), ClaimOutcome::Claimed);
    }
    c.until_users(&["alice", "bob", "carol", "dave"]);
    let joined = |room: &str, new_member| JoinOutcome::Joined {
        room: room.into(),
        new_member,
    };
    // The room keeps its creator's spelling everywhere.
    assert_eq!(c.join(0, "alice", "#Rust"), joined("#Rust", true));
    assert_eq!(c.join(1, "bob", "#rust"), joined("#Rust", true));
    assert_eq!(c.join(2, "carol", "#RUST"), joined("#Rust", true));
    assert_eq!(c.join(2, "carol", "#rust"), joined("#Rust", false));
    c.until("members everywhere", |c| {
        c.nodes
            .iter()
            .all(|n| n.bp.room_members("#rust") == ["alice", "bob", "carol"])
    });
    for n in &c.nodes {
        assert_eq!(n.bp.rooms(), [("#Rust", 3)]);
        assert_eq!(n.bp.room_name("#RUST"), Some("#Rust"));
    }
    // alice saw the two others join (the members on her node are told).
    c.until("joined presence on n0", |c| c.nodes[0].core.presence().len() >= 5);
    let joins: Vec<&Presence> = c.nodes[0]
        .core
        .presence()
        .into_iter()
        .filter(|p| matches!(p, Presence::Joined { .. }))
        .collect();
    assert_eq!(
        joins,
        [
            &Presence::Joined {
                nick: "bob".into(),
                room: "#Rust".into()
            },
            &Presence::Joined {
                nick: "carol".into(),
                room: "#Rust".into()
            }
        ]
    );
    let f = frame("room", "bob", "in the room");
    assert_eq!(c.nodes[1].bp.room_send("bob", "#rust", &f, Instant::now()), Ok(2));
    c.until("the room frame on n0 and n2", |c| {
        [0, 2].iter().all(|&i| !c.nodes[i].core.frames.is_empty())
    });
    assert_eq!(c.nodes[0].core.frames[0].1, "#Rust");
    assert!(c.nodes[1].core.frames.is_empty());
    // carol parts: n2 has nobody in the room now and hears it no more.
    c.nodes[2].bp.part("carol", "#Rust", Instant::now());
    c.until("carol gone from the room", |c| {
        c.nodes
            .iter()
            .all(|n| n.bp.room_members("#Rust") == ["alice", "bob"])
    });
    assert!(c.nodes[0].core.presence().contains(&&Presence::Parted {
        nick: "carol".into(),
        room: "#Rust".into()
    }));
    let g = frame("room", "alice", "after");
    assert_eq!(
        c.nodes[0].bp.room_send("alice", "#Rust", &g, Instant::now()),
        Ok(1)
    );
    c.until("the second room frame on n1", |c| {
        c.nodes[1].core.frames.len() == 1
    });
    // A round trip through n1 later, n2 still got only the first.
    let h = frame("all", "bob", "fence");
    c.nodes[1].bp.broadcast("bob", &h, Instant::now()).unwrap();
    c.until("the fence on n2", |c| c.nodes[2].core.frames.len() == 2);
    assert_eq!(c.nodes[2].core.frames[1].0, "all");
    // The last member leaving removes the room everywhere.
    c.nodes[0].bp.release("alice", "quit", Instant::now());
    c.nodes[1].bp.part("bob", "#rust", Instant::now());
    c.until("no rooms", |c| c.nodes.iter().all(|n| n.bp.rooms().is_empty()));
}

#[test]
fn two_thousand_frames_from_one_sender_keep_their_order_across_msg_all_and_room() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 2);
    assert_eq!(c.claim(0, "alice"), ClaimOutcome::Claimed);
    assert_eq!(c.claim(1, "bob"), ClaimOutcome::Claimed);
    c.until_users(&["alice", "bob"]);
    c.join(0, "alice", "#r");
    c.join(1, "bob", "#r");
    c.until("bob in the room on n0", |c| {
        c.nodes[0].bp.room_members("#r") == ["alice", "bob"]
    });
    const N: usize = 2000;
    let mut sent = 0;
    while sent < N {
        let now = Instant::now();
        // Batches of 50 between rounds, as a busy node would send them.
        for i in sent..(sent + 50).min(N) {
            let text = i.to_string();
            let bp = &mut c.nodes[0].bp;
            let counted = match i % 3 {
                0 => bp.send_to("alice", "bob", &frame("msg", "alice", &text), now),
                1 => bp.broadcast("alice", &frame("all", "alice", &text), now),
                _ => bp.room_send("alice", "#r", &frame("room", "alice", &text), now),
            };
            assert_eq!(counted, Ok(1), "frame {i}");
        }
        sent = (sent + 50).min(N);
        c.round(Duration::ZERO);
    }
    c.until("every frame on n1", |c| c.nodes[1].core.frames.len() == N);
    for (i, (kind, _, payload)) in c.nodes[1].core.frames.iter().enumerate() {
        let want = ["msg", "all", "room"][i % 3];
        assert_eq!(*kind, want, "frame {i}");
        assert!(
            payload.contains(&format!(r#""text":"{i}""#)),
            "frame {i}: {payload}"
        );
    }
    let s = c.nodes[0].bp.stats();
    assert_eq!((s.relayed_out, s.relay_refused, s.relay_failed), (N as u64, 0, 0));
    assert_eq!(c.nodes[1].bp.stats().relayed_in, N as u64);
}

/// The nicks Redis holds, as "NODE NICK", sorted.
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
fn a_client_leaving_while_its_claim_or_rename_is_under_way_leaves_nothing_held() {
    let redis = RedisServer::start();
    let mut c = cluster(&redis, 2);
    let now = Instant::now();
    // Claimed and abandoned in one round: no outcome, and the nick is freed.
    let gone = c.nodes[0].claim("ghost");
    c.nodes[0].bp.release("ghost", "disconnect", now);
    // Abandoned, then claimed again by a new client before any answer: the
    // second claim keeps it.
    c.nodes[0].claim("again");
    c.nodes[0].bp.release("again", "quit", now);
    let kept = c.nodes[0].claim("again");
    c.until("the second claim", |c| c.nodes[0].core.claims.contains_key(&kept));
    assert_eq!(c.nodes[0].core.claims[&kept], ClaimOutcome::Claimed);
    // A rename whose user leaves before the answer: both nicks end free.
    assert_eq!(c.claim(1, "old"), ClaimOutcome::Claimed);
    let t = c.nodes[1].bp.rename("old", "new", Instant::now());
    c.nodes[1].bp.release("old", "quit", Instant::now());
    c.until("the rename's answer", |c| {
        c.nodes[1]
            .core
            .log
            .iter()
            .any(|e| matches!(e, BackplaneEvent::Rename { ticket, .. } if *ticket == t))
    });
    c.until_users(&["again"]);
    c.until("Redis holds only 'again'", |_| {
        redis_nicks(&redis) == ["n0 again"]
    });
    assert!(!c.nodes[0].core.claims.contains_key(&gone));
    // n1 saw "new" go offline with the reason its user left for.
    c.until("new offline on n0", |c| {
        c.nodes[0].core.presence().contains(&&Presence::Offline {
            nick: "new".into(),
            reason: "quit".into(),
        })
    });
}
