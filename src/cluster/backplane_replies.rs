//! What the backplane does with each event of its command link: the
//! scripts' answers (claims, joins, renames, heartbeats, the snapshot),
//! commands that will never be answered, and the link coming up.

use std::time::Instant;

use super::{Backplane, Pending};
use crate::cluster::backplane_event::{BackplaneEvent, ClaimOutcome, JoinOutcome, Presence, RenameOutcome};
use crate::cluster::link_event::{Failure, LinkEvent, Token};
use crate::cluster::local::Change;
use crate::cluster::scripts;
use crate::codec::resp::Reply;
use crate::message::fold;

/// A script's answer: its first word and the rest (`("error", [])` for an
/// error reply or a shape no script returns).
fn answer(reply: &Reply) -> (&str, &[Reply]) {
    let parts = reply.as_array().unwrap_or_default();
    let word = parts
        .first()
        .and_then(Reply::as_bytes)
        .and_then(|b| std::str::from_utf8(b).ok());
    match word {
        Some(w) => (w, &parts[1..]),
        None => ("error", &[]),
    }
}

fn text(r: Option<&Reply>) -> String {
    r.and_then(Reply::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

impl Backplane {
    pub(super) fn on_cmd_event(&mut self, e: LinkEvent, now: Instant) {
        match e {
            LinkEvent::Ready => {
                // Redis may have restarted empty: heartbeat at once (it says
                // `new` then, and the node re-announces), and read the
                // directory again.
                self.registered = false;
                self.heartbeat_in_flight = false;
                self.next_heartbeat = Some(now);
                self.want_sync = true;
            }
            LinkEvent::Reply { token, reply } => self.on_reply(token, &reply, now),
            LinkEvent::Failed { token, why } => self.on_failed(token, why, now),
            LinkEvent::Down(_) => self.registered = false,
            LinkEvent::Message(_) | LinkEvent::Subscribed(_) => {}
        }
    }

    fn on_reply(&mut self, token: Token, reply: &Reply, now: Instant) {
        let Some(pending) = self.pending.remove(&token) else {
            // A relayed frame's PUBLISH: Redis took it.
            return;
        };
        let (word, rest) = answer(reply);
        if word == "no_node" {
            // This node's heartbeat expired (it was reaped): heartbeat now;
            // it answers `new` and the node re-announces.
            self.registered = false;
            if !self.heartbeat_in_flight {
                self.next_heartbeat = Some(now);
            }
        }
        match pending {
            Pending::Claim {
                ticket,
                nick,
                abandoned,
            } => {
                let folded = fold(&nick);
                if self.local.claiming.get(&folded) == Some(&token) {
                    self.local.claiming.remove(&folded);
                }
                let outcome = match word {
                    "ok" => ClaimOutcome::Claimed,
                    "taken" => ClaimOutcome::Taken {
                        node: text(rest.first()),
                    },
                    _ => ClaimOutcome::Unavailable,
                };
                if let Some(reason) = abandoned {
                    // Its client left while it was under way: free the nick,
                    // unless a claim sent since (answered after this one)
                    // holds it for a new client.
                    let again = self.local.holds(&folded) || self.local.claiming.contains_key(&folded);
                    if outcome == ClaimOutcome::Claimed && !again {
                        self.send_release(&nick, &reason, now);
                    }
                    return;
                }
                if outcome == ClaimOutcome::Claimed {
                    self.local.add_user(&nick);
                    self.remote_counts = None;
                }
                self.events.push_back(BackplaneEvent::Claim {
                    ticket,
                    nick,
                    outcome,
                });
            }
            Pending::Reclaim { nick } => {
                if word == "taken" {
                    self.evict(&nick, &text(rest.first()), now);
                }
            }
            Pending::Rename { ticket, old, new } => {
                let outcome = match word {
                    "ok" => {
                        if !self.local.rename(&old, &new) {
                            // Its user left meanwhile; the release went to the
                            // old nick, too late: free the new one.
                            let reason = self.local.released.get(&fold(&old)).cloned();
                            self.send_release(&new, reason.as_deref().unwrap_or("disconnect"), now);
                        }
                        self.remote_counts = None;
                        RenameOutcome::Renamed
                    }
                    "taken" => RenameOutcome::Taken {
                        node: text(rest.first()),
                    },
                    _ => RenameOutcome::Unavailable,
                };
                self.events.push_back(BackplaneEvent::Rename {
                    ticket,
                    old,
                    new,
                    outcome,
                });
            }
            Pending::Join { ticket, nick, room } => match word {
                "ok" => {
                    let spelled = text(rest.get(2));
                    let spelled = if spelled.is_empty() { room.clone() } else { spelled };
                    let new_member = rest.get(1).and_then(Reply::as_integer) == Some(1);
                    let froom = fold(&room);
                    if self.local.end_join(&fold(&nick), &froom, Some(&spelled)) == Change::Last {
                        // Its member left meanwhile.
                        self.unsubscribe_rooms(&[froom], now);
                    }
                    self.events.push_back(BackplaneEvent::Join {
                        ticket,
                        nick,
                        room,
                        outcome: JoinOutcome::Joined {
                            room: spelled,
                            new_member,
                        },
                    });
                }
                "room_full" => self.join_failed(ticket, &nick, &room, JoinOutcome::Full, now),
                _ => self.join_failed(ticket, &nick, &room, JoinOutcome::Unavailable, now),
            },
            Pending::Release { folded } => {
                self.local.released.remove(&folded);
            }
            Pending::Heartbeat { sent } => {
                self.heartbeat_in_flight = false;
                self.next_heartbeat = Some(sent + self.cfg.heartbeat_period());
                if word == "alive" || word == "new" {
                    self.registered = true;
                    self.stats.heartbeats += 1;
                    self.stats.reaped += rest.get(1).and_then(Reply::as_array).map_or(0, |a| a.len()) as u64;
                    if word == "new" || std::mem::take(&mut self.heartbeat_lost) {
                        self.reannounce(now);
                    }
                }
            }
            Pending::Snapshot => self.on_snapshot(token, Some(reply), now),
            Pending::Rejoin | Pending::Part | Pending::Probe | Pending::Leave => {}
        }
    }

    fn on_failed(&mut self, token: Token, why: Failure, now: Instant) {
        let Some(pending) = self.pending.remove(&token) else {
            // A relayed frame that never reached Redis.
            self.stats.relay_failed += 1;
            return;
        };
        match pending {
            // A claim lost with its connection may have won: the next
            // snapshot shows this node holding a nick nobody here has, and
            // it is released.
            Pending::Claim {
                ticket,
                nick,
                abandoned,
            } => {
                let folded = fold(&nick);
                if self.local.claiming.get(&folded) == Some(&token) {
                    self.local.claiming.remove(&folded);
                }
                if abandoned.is_none() {
                    self.events.push_back(BackplaneEvent::Claim {
                        ticket,
                        nick,
                        outcome: ClaimOutcome::Unavailable,
                    });
                }
            }
            Pending::Rename { ticket, old, new } => self.events.push_back(BackplaneEvent::Rename {
                ticket,
                old,
                new,
                outcome: RenameOutcome::Unavailable,
            }),
            Pending::Join { ticket, nick, room } => {
                self.join_failed(ticket, &nick, &room, JoinOutcome::Unavailable, now)
            }
            Pending::Heartbeat { .. } => {
                self.heartbeat_in_flight = false;
                self.heartbeat_lost |= why == Failure::Lost;
                self.next_heartbeat = Some(now);
            }
            Pending::Snapshot => self.on_snapshot(token, None, now),
            // Made again from the next snapshot.
            Pending::Reclaim { .. } | Pending::Rejoin | Pending::Release { .. } | Pending::Part => {}
            Pending::Probe | Pending::Leave => {}
        }
    }

    /// Claims every local nick again and joins its rooms again: after a
    /// heartbeat found this node unregistered (Redis restarted empty, or
    /// the node was reaped). Both are no-ops for what Redis still holds.
    pub(super) fn reannounce(&mut self, now: Instant) {
        self.stats.reannounces += 1;
        let users: Vec<(String, Vec<String>)> = self
            .local
            .users
            .values()
            .map(|u| (u.nick.clone(), u.rooms.values().cloned().collect()))
            .collect();
        for (nick, rooms) in users {
            self.reclaim(&nick, now);
            for room in rooms {
                self.rejoin(&nick, &room, now);
            }
        }
    }

    pub(super) fn reclaim(&mut self, nick: &str, now: Instant) {
        let pending = Pending::Reclaim {
            nick: nick.to_string(),
        };
        self.eval(now, &scripts::CLAIM, &[nick.as_bytes()], pending);
    }

    pub(super) fn rejoin(&mut self, nick: &str, room: &str, now: Instant) {
        self.eval(
            now,
            &scripts::JOIN,
            &[nick.as_bytes(), room.as_bytes(), b"0"],
            Pending::Rejoin,
        );
    }

    /// Another node holds a local user's nick: the user is forgotten here
    /// and the core told; the winner then appears as any remote user.
    pub(super) fn evict(&mut self, nick: &str, holder: &str, now: Instant) {
        let folded = fold(nick);
        let Some((user, emptied)) = self.local.remove_user(&folded) else {
            return;
        };
        self.unsubscribe_rooms(&emptied, now);
        self.stats.evictions += 1;
        self.remote_counts = None;
        self.events.push_back(BackplaneEvent::Evicted {
            nick: user.nick,
            holder: holder.to_string(),
        });
        let Some((spelled, node)) = self.dir.nicks.get(&folded) else {
            return;
        };
        if *node == self.node {
            return;
        }
        let spelled = spelled.clone();
        self.events.push_back(BackplaneEvent::Presence(Presence::Online {
            nick: spelled.clone(),
        }));
        let rooms: Vec<String> = self
            .dir
            .rooms
            .iter()
            .filter(|(froom, r)| r.members.contains_key(&folded) && self.local.has_members(froom))
            .map(|(_, r)| r.name.clone())
            .collect();
        for room in rooms {
            self.events.push_back(BackplaneEvent::Presence(Presence::Joined {
                nick: spelled.clone(),
                room,
            }));
        }
    }
}
