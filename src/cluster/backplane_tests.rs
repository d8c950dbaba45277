//! The backplane's own logic without Redis: what a snapshot's differences
//! tell local clients, what each directory event tells them, and which
//! relayed frames reach the core.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{Backplane, Pending, Sync};
use crate::cluster::backplane_config::BackplaneConfig;
use crate::cluster::backplane_event::{BackplaneEvent, Presence};
use crate::cluster::directory::{Directory, Room};
use crate::cluster::link_event::PubMessage;

fn backplane() -> Backplane {
    let url = "redis://127.0.0.1:6379".parse().unwrap();
    let mut cfg = BackplaneConfig::new(url, "t", Duration::from_secs(3));
    cfg.node_id = Some("me".into());
    let mut bp = Backplane::new(cfg, Instant::now()).unwrap();
    // alice is here, in #r.
    bp.local.add_user("alice");
    bp.local.start_join("#r", "#r");
    bp.local.end_join("alice", "#r", Some("#r"));
    bp
}

fn dir(version: u64, nicks: &[(&str, &str)], rooms: &[(&str, &[&str])], nodes: &[&str]) -> Directory {
    Directory {
        version,
        nicks: nicks
            .iter()
            .map(|(n, node)| (n.to_ascii_lowercase(), (n.to_string(), node.to_string())))
            .collect(),
        rooms: rooms
            .iter()
            .map(|(r, members)| {
                let members: BTreeMap<String, String> = members
                    .iter()
                    .map(|m| (m.to_ascii_lowercase(), m.to_string()))
                    .collect();
                (
                    r.to_ascii_lowercase(),
                    Room {
                        name: r.to_string(),
                        members,
                    },
                )
            })
            .collect(),
        nodes: nodes.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
    }
}

fn events(bp: &mut Backplane) -> Vec<BackplaneEvent> {
    std::iter::from_fn(|| bp.poll_event()).collect()
}

fn presence(p: Presence) -> BackplaneEvent {
    BackplaneEvent::Presence(p)
}

fn feed(bp: &mut Backplane, channel: &[u8], payload: &str) {
    let m = PubMessage {
        channel: channel.to_vec(),
        pattern: None,
        payload: payload.as_bytes().to_vec(),
    };
    bp.on_message(m, Instant::now());
}

#[test]
fn a_snapshot_tells_what_changed_in_the_order_of_one_server() {
    let mut bp = backplane();
    let old = dir(
        10,
        &[("alice", "me"), ("bob", "n2"), ("carol", "n2"), ("eve", "n4")],
        &[("#r", &["alice", "bob", "eve"])],
        &["me", "n2", "n4"],
    );
    bp.dir = dir(
        30,
        &[("alice", "me"), ("dave", "n3"), ("eve", "n4")],
        &[("#r", &["alice", "dave", "eve"]), ("#elsewhere", &["dave"])],
        &["me", "n3", "n4"],
    );
    bp.tell_changes(&old);
    let p = |nick: &str| nick.to_string();
    assert_eq!(
        events(&mut bp),
        [
            presence(Presence::Parted {
                nick: p("bob"),
                room: p("#r")
            }),
            presence(Presence::Offline {
                nick: p("bob"),
                reason: p("disconnect")
            }),
            presence(Presence::Offline {
                nick: p("carol"),
                reason: p("disconnect")
            }),
            presence(Presence::Online { nick: p("dave") }),
            presence(Presence::Joined {
                nick: p("dave"),
                room: p("#r")
            }),
            BackplaneEvent::NodeDown {
                node: p("n2"),
                reason: p("disconnect"),
                nicks: vec![p("bob"), p("carol")]
            },
            BackplaneEvent::NodeUp { node: p("n3") },
        ]
    );
}

#[test]
fn events_tell_remote_changes_and_a_gap_asks_for_a_snapshot() {
    let mut bp = backplane();
    bp.sync = Sync::Current;
    bp.dir = dir(
        10,
        &[("alice", "me"), ("bob", "n2"), ("carol", "n2")],
        &[("#r", &["alice", "bob"]), ("#far", &["carol"])],
        &["me", "n2"],
    );
    let all = bp.all_channel.clone();
    for e in [
        "dir 11 parted n2 bob #r",
        "dir 12 parted n2 carol #far",
        "dir 13 offline n2 bob disconnect",
        "dir 14 offline n2 carol disconnect",
        "dir 15 down n2 disconnect",
        // Old news: skipped.
        "dir 15 online n9 zed",
        // Another node claimed a nick held here: nothing told, claimed again.
        "dir 16 online n3 ALICE",
        // Ours: nothing told.
        "dir 17 online me frank",
    ] {
        feed(&mut bp, &all, e);
    }
    let p = |nick: &str| nick.to_string();
    assert_eq!(
        events(&mut bp),
        [
            presence(Presence::Parted {
                nick: p("bob"),
                room: p("#r")
            }),
            presence(Presence::Offline {
                nick: p("bob"),
                reason: p("disconnect")
            }),
            presence(Presence::Offline {
                nick: p("carol"),
                reason: p("disconnect")
            }),
            BackplaneEvent::NodeDown {
                node: p("n2"),
                reason: p("disconnect"),
                nicks: vec![p("bob"), p("carol")]
            },
        ]
    );
    assert!(bp
        .pending
        .values()
        .any(|p| matches!(p, Pending::Reclaim { nick } if nick == "alice")));
    assert_eq!(bp.dir.version, 17);
    // A gap: the directory is stale until a snapshot is read.
    feed(&mut bp, &all, "dir 19 online n3 gus");
    assert!(matches!(bp.sync, Sync::Stale) && bp.want_sync);
    assert_eq!((bp.stats.gaps, bp.dir.version), (1, 17));
    // While stale, events that follow on still apply.
    feed(&mut bp, &all, "dir 18 online n3 hal");
    assert_eq!(events(&mut bp), [presence(Presence::Online { nick: p("hal") })]);
}

#[test]
fn relayed_frames_reach_the_core_only_for_someone_here() {
    let mut bp = backplane();
    bp.sync = Sync::Current;
    let (all, me) = (bp.all_channel.clone(), bp.node_channel.clone());
    let room = bp.names.room_channel("#r").into_bytes();
    feed(&mut bp, &all, r#"all n2 bob {"type":"all"}"#);
    feed(&mut bp, &all, r#"all me alice {"type":"all"}"#);
    feed(&mut bp, &me, r#"msg n2 bob ALICE {"type":"msg"}"#);
    feed(&mut bp, &me, r#"msg n2 bob zed {"type":"msg"}"#);
    // A msg is only taken from this node's own channel.
    feed(&mut bp, &all, r#"msg n2 bob alice {"type":"msg"}"#);
    feed(&mut bp, &room, r#"room n2 bob #R {"type":"room"}"#);
    feed(&mut bp, &room, r#"room n2 bob #other {"type":"room"}"#);
    feed(&mut bp, &me, r#"msg n2 bob alice not json"#);
    let got = events(&mut bp);
    let kinds: Vec<String> = got
        .iter()
        .map(|e| match e {
            BackplaneEvent::Broadcast { from, payload } => format!("all {from} {}", payload.len()),
            BackplaneEvent::Deliver { from, to, .. } => format!("msg {from} {to}"),
            BackplaneEvent::Room { room, from, .. } => format!("room {from} {room}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["all bob 14", "msg bob alice", "room bob #r"]);
    assert_eq!((bp.stats.relayed_in, bp.stats.relay_dropped), (3, 2));
}
