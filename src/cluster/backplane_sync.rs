//! The subscriber's side: the directory kept current (a snapshot after
//! every (re)subscription, then every event whose version follows on;
//! what arrives while the snapshot is read waits behind it), what remote
//! users' changes mean for local clients, frames from other nodes, and
//! putting Redis right from the snapshot (this node's users re-claimed,
//! what it no longer holds released).

use std::collections::VecDeque;
use std::time::Instant;

use super::{Backplane, Pending, Sync};
use crate::cluster::backplane_event::{BackplaneEvent, Presence};
use crate::cluster::directory::{DirEvent, Directory, EVENT_PREFIX};
use crate::cluster::link_event::{LinkEvent, PubMessage, Token};
use crate::cluster::local::WaitingJoin;
use crate::cluster::relay::Relay;
use crate::cluster::scripts;
use crate::codec::resp::Reply;
use crate::message::{fold, looks_like_object};

impl Backplane {
    pub(super) fn on_sub_event(&mut self, e: LinkEvent, now: Instant) {
        match e {
            LinkEvent::Ready => {
                // Every subscription was confirmed in the handshake.
                let rooms: Vec<String> = self.local.rooms.keys().cloned().collect();
                for froom in rooms {
                    self.room_live(&froom, now);
                }
                self.want_sync = true;
            }
            LinkEvent::Subscribed(channel) => {
                let prefix = self.names.room_channel("");
                if let Some(froom) = channel.strip_prefix(prefix.as_bytes()) {
                    let froom = String::from_utf8_lossy(froom).into_owned();
                    self.room_live(&froom, now);
                }
            }
            LinkEvent::Message(m) => self.on_message(m, now),
            LinkEvent::Down(_) => {
                for r in self.local.rooms.values_mut() {
                    r.live = false;
                }
                self.stop_reading(now);
                self.want_sync = true;
            }
            LinkEvent::Reply { .. } | LinkEvent::Failed { .. } => {}
        }
    }

    /// A room's channel is subscribed: the joins waiting for it go.
    fn room_live(&mut self, froom: &str, now: Instant) {
        let Some(r) = self.local.rooms.get_mut(froom) else {
            return;
        };
        r.live = true;
        let waiting: Vec<WaitingJoin> = std::mem::take(&mut r.waiting);
        for j in waiting {
            self.send_join(j, now);
        }
    }

    /// Asks for the directory's snapshot once both links are ready (after
    /// the subscription to the all channel was proven by the probe, so no
    /// event after the snapshot can be missed).
    pub(super) fn request_snapshot(&mut self, now: Instant) {
        let reading = matches!(self.sync, Sync::Reading { .. });
        if !self.want_sync || reading || !self.cmd.is_ready() || !self.sub.is_ready() {
            return;
        }
        if let Some(token) = self.eval(now, &scripts::SNAPSHOT, &[], Pending::Snapshot) {
            self.want_sync = false;
            self.sync = Sync::Reading {
                token,
                held: VecDeque::new(),
                held_bytes: 0,
            };
        }
    }

    /// The snapshot's reply (`None`: it failed).
    pub(super) fn on_snapshot(&mut self, token: Token, reply: Option<&Reply>, now: Instant) {
        if !matches!(&self.sync, Sync::Reading { token: t, .. } if *t == token) {
            // One asked on a subscriber connection since lost.
            return;
        }
        let Some(dir) = reply.and_then(Directory::from_snapshot) else {
            self.stop_reading(now);
            self.want_sync = true;
            return;
        };
        let Sync::Reading { held, .. } = std::mem::replace(&mut self.sync, Sync::Current) else {
            unreachable!("checked above")
        };
        self.stats.resyncs += 1;
        let old = std::mem::replace(&mut self.dir, dir);
        self.remote_counts = None;
        self.down_run = None;
        if self.ever_synced {
            self.tell_changes(&old);
        }
        self.ever_synced = true;
        self.reconcile(now);
        for m in held {
            self.on_message(m, now);
        }
    }

    /// Leaves `Reading` (its snapshot failed or its connection went):
    /// what was held is handled as if nothing had been asked.
    fn stop_reading(&mut self, now: Instant) {
        if let Sync::Reading { held, .. } = std::mem::replace(&mut self.sync, Sync::Stale) {
            for m in held {
                self.on_message(m, now);
            }
        }
    }

    pub(super) fn on_message(&mut self, m: PubMessage, now: Instant) {
        if let Sync::Reading { held, held_bytes, .. } = &mut self.sync {
            let event = m.payload.starts_with(EVENT_PREFIX);
            // Directory events are always kept: they are small, and only
            // come for as long as a reply may take.
            if !event && *held_bytes + m.payload.len() > self.cfg.max_held_bytes {
                self.stats.relay_dropped += 1;
                return;
            }
            *held_bytes += m.payload.len();
            held.push_back(m);
            return;
        }
        if let Some((version, event)) = DirEvent::parse(&m.payload) {
            return self.on_dir_event(version, event, m, now);
        }
        if let Some(relay) = Relay::parse(&m.payload) {
            let for_me = !matches!(relay, Relay::Msg { .. }) || m.channel == self.node_channel;
            if for_me && relay.node() != self.node {
                self.on_relay(relay);
            }
        }
    }

    fn on_dir_event(&mut self, version: u64, event: DirEvent, m: PubMessage, now: Instant) {
        let next = self.dir.version + 1;
        if version < next {
            return;
        }
        if version > next {
            // Events were missed (or Redis' counter went back): read the
            // directory again. While it is stale, only events that follow
            // on are applied.
            if matches!(self.sync, Sync::Current) {
                self.stats.gaps += 1;
                self.sync = Sync::Stale;
                self.want_sync = true;
                self.request_snapshot(now);
                if let Sync::Reading { held, held_bytes, .. } = &mut self.sync {
                    *held_bytes += m.payload.len();
                    held.push_back(m);
                }
            }
            return;
        }
        let told = self.presence_of(version, &event, now);
        self.dir.apply(version, &event);
        self.remote_counts = None;
        self.events.extend(told);
    }

    /// What local clients are told of an event (before it is applied).
    fn presence_of(&mut self, version: u64, event: &DirEvent, now: Instant) -> Vec<BackplaneEvent> {
        let down_nicks = self.track_down_run(version, event);
        if self.is_own(event) {
            return Vec::new();
        }
        let p = BackplaneEvent::Presence;
        let local = &self.local;
        let holds = |nick: &str| local.holds(&fold(nick));
        // Another node claimed a nick held here (Redis lost this node's
        // claim): it is claimed again, and the loser evicted.
        let mut reclaim = None;
        let told = match event {
            DirEvent::Up { node } => vec![BackplaneEvent::NodeUp { node: node.clone() }],
            DirEvent::Down { node, reason } => vec![BackplaneEvent::NodeDown {
                node: node.clone(),
                reason: reason.clone(),
                nicks: down_nicks,
            }],
            DirEvent::Online { nick, .. } if holds(nick) => {
                reclaim = local.user(nick).map(|u| u.nick.clone());
                Vec::new()
            }
            DirEvent::Online { nick, .. } => vec![p(Presence::Online { nick: nick.clone() })],
            DirEvent::Offline { nick, .. } if holds(nick) => Vec::new(),
            DirEvent::Offline { nick, reason, .. } => vec![p(Presence::Offline {
                nick: nick.clone(),
                reason: reason.clone(),
            })],
            DirEvent::Rename { old, new, .. } => match (holds(old), holds(new) && fold(old) != fold(new)) {
                (false, false) => vec![p(Presence::Renamed {
                    old: old.clone(),
                    new: new.clone(),
                })],
                (false, true) => {
                    reclaim = local.user(new).map(|u| u.nick.clone());
                    vec![p(Presence::Offline {
                        nick: old.clone(),
                        reason: "disconnect".into(),
                    })]
                }
                (true, false) => vec![p(Presence::Online { nick: new.clone() })],
                (true, true) => Vec::new(),
            },
            DirEvent::Joined { nick, room, .. } | DirEvent::Parted { nick, room, .. } => {
                let froom = fold(room);
                match local.rooms.get(&froom) {
                    Some(r) if !holds(nick) && !r.members.is_empty() => {
                        let (nick, room) = (nick.clone(), r.name.clone());
                        vec![p(if matches!(event, DirEvent::Joined { .. }) {
                            Presence::Joined { nick, room }
                        } else {
                            Presence::Parted { nick, room }
                        })]
                    }
                    _ => Vec::new(),
                }
            }
        };
        if let Some(nick) = reclaim {
            self.reclaim(&nick, now);
        }
        told
    }

    /// The nicks a node's reaping frees come just before its `down`, in
    /// one atomic run of versions: gathers them; returns them at `down`.
    fn track_down_run(&mut self, version: u64, event: &DirEvent) -> Vec<String> {
        match event {
            DirEvent::Parted { node, .. } | DirEvent::Offline { node, .. } => {
                let run_on = matches!(&self.down_run, Some((n, last, _)) if n == node && last + 1 == version);
                if !run_on {
                    self.down_run = Some((node.clone(), version, Vec::new()));
                }
                let run = self.down_run.as_mut().expect("just set");
                run.1 = version;
                if let DirEvent::Offline { nick, .. } = event {
                    run.2.push(nick.clone());
                }
                Vec::new()
            }
            DirEvent::Down { node, .. } => match self.down_run.take() {
                Some((n, last, nicks)) if n == *node && last + 1 == version => nicks,
                _ => Vec::new(),
            },
            _ => {
                self.down_run = None;
                Vec::new()
            }
        }
    }

    fn is_own(&self, event: &DirEvent) -> bool {
        let node = match event {
            DirEvent::Up { node }
            | DirEvent::Down { node, .. }
            | DirEvent::Online { node, .. }
            | DirEvent::Offline { node, .. }
            | DirEvent::Rename { node, .. }
            | DirEvent::Joined { node, .. }
            | DirEvent::Parted { node, .. } => node,
        };
        *node == self.node
    }

    fn on_relay(&mut self, relay: Relay<'_>) {
        let frame = relay.frame();
        if !looks_like_object(frame) {
            self.stats.relay_dropped += 1;
            return;
        }
        let payload = || -> crate::message::Payload { crate::message::Payload::from(frame) };
        let event = match relay {
            Relay::Msg { from, to, .. } => match self.local.user(to) {
                Some(user) if !self.local.holds(&fold(from)) => BackplaneEvent::Deliver {
                    from: from.to_string(),
                    to: user.nick.clone(),
                    payload: payload(),
                },
                _ => {
                    // Its recipient left meanwhile.
                    self.stats.relay_dropped += 1;
                    return;
                }
            },
            Relay::All { from, .. } => {
                if self.local.users.is_empty() || self.local.holds(&fold(from)) {
                    return;
                }
                BackplaneEvent::Broadcast {
                    from: from.to_string(),
                    payload: payload(),
                }
            }
            Relay::Room { from, room, .. } => {
                let froom = fold(room);
                if !self.local.has_members(&froom) || self.local.holds(&fold(from)) {
                    return;
                }
                BackplaneEvent::Room {
                    room: self.local.rooms[&froom].name.clone(),
                    from: from.to_string(),
                    payload: payload(),
                }
            }
        };
        self.stats.relayed_in += 1;
        self.events.push_back(event);
    }
}
