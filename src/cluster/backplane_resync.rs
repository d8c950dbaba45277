//! After a snapshot: what changed while the node was not listening, for
//! its clients (presence, as if each event had been seen), and putting
//! Redis right (this node's users and rooms claimed and joined again where
//! Redis lost them; what Redis says this node holds and it does not,
//! released).
//!
//! Every command sent before the snapshot was answered before it (replies
//! come in order), so the snapshot already shows their effect; commands
//! sent after it show later. The commands sent here are all idempotent.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{Backplane, Pending};
use crate::cluster::backplane_event::{BackplaneEvent, Presence};
use crate::cluster::directory::Directory;
use crate::cluster::scripts;

impl Backplane {
    /// Presence for every difference between `old` and the directory now,
    /// about users of other nodes not held here: `parted`, `offline`
    /// (reason `disconnect`: the node cannot know better), `online`,
    /// `joined`, in that order; and the nodes gone or new.
    pub(super) fn tell_changes(&mut self, old: &Directory) {
        let new = &self.dir;
        let me = self.node.as_str();
        let local = &self.local;
        let remote = |d: &Directory, f: &str| d.nicks.get(f).is_some_and(|(_, n)| n != me) && !local.holds(f);
        // The same user: same spelling on the same node.
        let same = |f: &str| old.nicks.get(f) == new.nicks.get(f);
        let mut told = Vec::new();
        for (froom, r) in &old.rooms {
            let Some(here) = local.rooms.get(froom).filter(|l| !l.members.is_empty()) else {
                continue;
            };
            for (f, nick) in &r.members {
                let still = same(f) && new.rooms.get(froom).is_some_and(|r| r.members.contains_key(f));
                if remote(old, f) && !still {
                    told.push(Presence::Parted {
                        nick: nick.clone(),
                        room: here.name.clone(),
                    });
                }
            }
        }
        let mut gone_nodes: Vec<(String, Vec<String>)> = old
            .nodes
            .difference(&new.nodes)
            .filter(|n| *n != me)
            .map(|n| (n.clone(), Vec::new()))
            .collect();
        for (f, (nick, node)) in &old.nicks {
            if remote(old, f) && !same(f) {
                told.push(Presence::Offline {
                    nick: nick.clone(),
                    reason: "disconnect".into(),
                });
                if let Some((_, nicks)) = gone_nodes.iter_mut().find(|(n, _)| n == node) {
                    nicks.push(nick.clone());
                }
            }
        }
        for (f, (nick, _)) in &new.nicks {
            if remote(new, f) && !same(f) {
                told.push(Presence::Online { nick: nick.clone() });
            }
        }
        for (froom, r) in &new.rooms {
            let Some(here) = local.rooms.get(froom).filter(|l| !l.members.is_empty()) else {
                continue;
            };
            for (f, nick) in &r.members {
                let was = same(f) && old.rooms.get(froom).is_some_and(|r| r.members.contains_key(f));
                if remote(new, f) && !was {
                    told.push(Presence::Joined {
                        nick: nick.clone(),
                        room: here.name.clone(),
                    });
                }
            }
        }
        let new_nodes: BTreeSet<String> = new
            .nodes
            .difference(&old.nodes)
            .filter(|n| *n != me)
            .cloned()
            .collect();
        self.events.extend(told.into_iter().map(BackplaneEvent::Presence));
        for (node, nicks) in gone_nodes {
            self.events.push_back(BackplaneEvent::NodeDown {
                node,
                reason: "disconnect".into(),
                nicks,
            });
        }
        for node in new_nodes {
            self.events.push_back(BackplaneEvent::NodeUp { node });
        }
    }

    /// Makes Redis agree with this node: a nick (or membership) Redis says
    /// is this node's and nobody here has is released (parted), with the
    /// reason of its release if that was lost; a local user Redis does not
    /// show here is claimed again (evicted if another node has it), and
    /// its rooms joined again.
    pub(super) fn reconcile(&mut self, now: Instant) {
        let me = self.node.clone();
        let stale: Vec<String> = self
            .dir
            .nicks
            .iter()
            .filter(|(f, (_, node))| {
                *node == me && !self.local.holds(f) && !self.local.claiming.contains_key(*f)
            })
            .map(|(_, (nick, _))| nick.clone())
            .collect();
        for nick in stale {
            let folded = nick.to_ascii_lowercase();
            let reason = self
                .local
                .released
                .get(&folded)
                .cloned()
                .unwrap_or_else(|| "disconnect".into());
            self.send_release(&nick, &reason, now);
        }
        let mut parts = Vec::new();
        let mut rejoins = Vec::new();
        let mut reclaims = Vec::new();
        for (froom, r) in &self.dir.rooms {
            for (f, nick) in &r.members {
                let mine = self.dir.nicks.get(f).is_some_and(|(_, n)| *n == me);
                let user = self.local.users.get(f);
                if mine && user.is_some_and(|u| !u.rooms.contains_key(froom)) {
                    parts.push((nick.clone(), r.name.clone()));
                }
            }
        }
        for (f, user) in &self.local.users {
            let held = matches!(self.dir.nicks.get(f), Some((n, node)) if *n == user.nick && *node == me);
            if !held {
                reclaims.push(user.nick.clone());
            }
            for (froom, room) in &user.rooms {
                let member = self
                    .dir
                    .rooms
                    .get(froom)
                    .is_some_and(|r| r.members.contains_key(f));
                if !held || !member {
                    rejoins.push((user.nick.clone(), room.clone()));
                }
            }
        }
        for (nick, room) in parts {
            self.eval(
                now,
                &scripts::PART,
                &[nick.as_bytes(), room.as_bytes()],
                Pending::Part,
            );
        }
        for nick in reclaims {
            self.reclaim(&nick, now);
        }
        for (nick, room) in rejoins {
            self.rejoin(&nick, &room, now);
        }
    }
}
