//! What the backplane hands the core, applied through the core's one
//! delivery path: the answers to claims, joins and renames; frames from
//! other nodes (each one shared payload, queued as is to every local
//! recipient: a remote broadcast is encoded once for all of them);
//! presence of remote users; evictions. In the order Redis published them,
//! so each sender's order holds.

use std::time::Instant;

use super::delivery::Kind;
use super::Core;
use crate::cluster::{BackplaneEvent, ClaimOutcome, JoinOutcome, Presence, RenameOutcome, Ticket};
use crate::code::Code;
use crate::event::{ClientId, Reason};
use crate::message::{self, encode_json, Outgoing};

impl Core {
    /// Runs the backplane's timers and applies what it has for the core.
    /// The select loop calls it every round (without a cluster it does
    /// nothing).
    pub fn pump_cluster(&mut self, now: Instant) {
        let Some(c) = &mut self.cluster else { return };
        c.bp.tick(now);
        self.cluster_events(now);
    }

    /// Applies every event the backplane has (after its sockets were read,
    /// or a call of the core's).
    pub fn cluster_events(&mut self, now: Instant) {
        while let Some(e) = self.cluster.as_mut().and_then(|c| c.bp.poll_event()) {
            self.on_backplane(e, now);
        }
        self.drop_doomed(now);
    }

    fn on_backplane(&mut self, e: BackplaneEvent, now: Instant) {
        match e {
            BackplaneEvent::Claim { ticket, outcome, .. } => self.claim_answered(ticket, outcome, now),
            BackplaneEvent::Join {
                ticket,
                room,
                outcome,
                ..
            } => self.join_answered(ticket, &room, outcome, now),
            BackplaneEvent::Rename { ticket, outcome, .. } => self.rename_answered(ticket, outcome),
            BackplaneEvent::Deliver { to, payload, .. } => {
                if let Some(id) = self.registry.find(&to) {
                    self.delivery.deliver(&mut self.conns, id, &payload, Kind::Normal);
                }
            }
            BackplaneEvent::Broadcast { payload, .. } => {
                self.delivery.fan_out_everyone(&mut self.conns, &payload, None);
            }
            BackplaneEvent::Room { room, payload, .. } => {
                if let Some(r) = self.rooms.get(&message::fold(&room)) {
                    self.delivery
                        .fan_out(&mut self.conns, r.members.iter().copied(), &payload, None);
                }
            }
            BackplaneEvent::Presence(p) => self.remote_presence(p),
            BackplaneEvent::Evicted { nick, holder } => {
                let Some(id) = self.registry.find(&nick) else {
                    return;
                };
                log::warn!("client {id} ({nick}) evicted: node {holder} holds its nick");
                let why = Some("another node of the cluster holds this nick");
                self.end_parked(id, Reason::Kicked, now);
                self.leave(id, Reason::Kicked, now, Some((Code::NickTaken, why)));
            }
            BackplaneEvent::NodeUp { node } => log::info!("cluster: node {node} is up"),
            BackplaneEvent::NodeDown { node, reason, nicks } => {
                log::info!(
                    "cluster: node {node} is gone ({reason}), {} users with it",
                    nicks.len()
                );
            }
            BackplaneEvent::Up => log::info!("cluster: up"),
            BackplaneEvent::Down => log::warn!("cluster: down (Redis unreachable); local chat goes on"),
        }
    }

    fn claim_answered(&mut self, ticket: Ticket, outcome: ClaimOutcome, now: Instant) {
        let Some(c) = &mut self.cluster else { return };
        let Some(id) = c.claims.remove(&ticket) else {
            return;
        };
        let Some(claim) = c.claiming.remove(&id) else {
            return;
        };
        self.registry.unreserve(&claim.nick);
        match outcome {
            ClaimOutcome::Claimed => match self.authority.approval_timeout() {
                Some(timeout) => {
                    let key = message::fold(&claim.nick);
                    let deadline = now + timeout;
                    self.await_approval(id, key, claim.nick, claim.token, deadline, claim.resumable);
                }
                None => self.register(id, claim.nick, claim.resumable),
            },
            ClaimOutcome::Taken { .. } => self.reply_error(id, Code::NickTaken, None),
            ClaimOutcome::Unavailable => self.reply_unavailable(id, None),
        }
    }

    fn join_answered(&mut self, ticket: Ticket, asked: &str, outcome: JoinOutcome, now: Instant) {
        let Some(c) = &mut self.cluster else { return };
        let Some((id, key)) = c.joins.remove(&ticket) else {
            return;
        };
        let Some(nick) = self.registered_nick(id) else {
            return;
        };
        match outcome {
            JoinOutcome::Joined { room, .. } => {
                self.join(id, &nick, &room);
                if !self.rooms.is_member(id, &key) {
                    // A limit of this server's said no meanwhile.
                    self.cluster_part(&nick, &room, now);
                }
            }
            JoinOutcome::Full => self.room_error(id, Code::RoomFull, asked),
            JoinOutcome::Unavailable => self.reply_unavailable(id, Some(asked)),
        }
    }

    fn rename_answered(&mut self, ticket: Ticket, outcome: RenameOutcome) {
        let Some(c) = &mut self.cluster else { return };
        let Some((id, wanted)) = c.renames.remove(&ticket) else {
            return;
        };
        c.renaming.remove(&id);
        let Some(old) = self.registered_nick(id) else {
            return;
        };
        if message::fold(&wanted) != message::fold(&old) {
            self.registry.unreserve(&wanted);
        }
        match outcome {
            RenameOutcome::Renamed => self.rename(id, &old, &wanted),
            RenameOutcome::Taken { .. } => self.reply_error(id, Code::NickTaken, None),
            RenameOutcome::Unavailable => self.reply_unavailable(id, None),
        }
    }

    /// The nick of `id` if it is registered and connected.
    fn registered_nick(&self, id: ClientId) -> Option<std::sync::Arc<str>> {
        let conn = self.conns.get(&id)?;
        (conn.phase == super::conn::Phase::Registered)
            .then(|| conn.nick.clone())
            .flatten()
    }

    /// A remote user's presence, to the local clients one server would
    /// tell: every registered client, or a room's members.
    fn remote_presence(&mut self, p: Presence) {
        if self.quiet {
            return;
        }
        let (nick, old, room, state, reason) = match &p {
            Presence::Online { nick } => (nick, None, None, "online", None),
            Presence::Offline { nick, reason } => (nick, None, None, "offline", Some(reason.as_str())),
            Presence::Renamed { old, new } => (new, Some(old.as_str()), None, "renamed", None),
            Presence::Joined { nick, room } => (nick, None, Some(room), "joined", None),
            Presence::Parted { nick, room } => (nick, None, Some(room), "parted", None),
        };
        match room {
            None => {
                let payload = encode_json(&Outgoing::Presence {
                    nick,
                    old,
                    room: None,
                    state,
                    reason,
                });
                self.delivery.fan_out_everyone(&mut self.conns, &payload, None);
            }
            Some(room) => {
                let Some(r) = self.rooms.get(&message::fold(room)) else {
                    return;
                };
                let payload = encode_json(&Outgoing::Presence {
                    nick,
                    old: None,
                    room: Some(&r.name),
                    state,
                    reason: None,
                });
                self.delivery
                    .fan_out(&mut self.conns, r.members.iter().copied(), &payload, None);
            }
        }
    }
}
