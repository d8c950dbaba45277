//! The core's side of a cluster (protocol 1.2, "A cluster of servers"):
//! with a [`Backplane`] beside it, a `hello` claims its nick cluster-wide
//! before it registers, `join` and `nick` go through Redis too, `msg`,
//! `all` and `room` reach the users of other nodes, and `welcome`, `who`,
//! `members`, `rooms` and `joined` list the whole cluster. Everything the
//! backplane hands back (outcomes, frames of other nodes, their presence)
//! is applied in `cluster_events.rs`, through the same delivery as local
//! traffic. Without a backplane none of this runs: each hook is one
//! `Option` test.
//!
//! A nick is the node's in the cluster from its claim until the core lets
//! it go: when its session ends for good (`end_session`, so a parked
//! resumable session keeps it), when a claimed client waiting for the
//! host's approval is refused or leaves, or when a claim is abandoned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::Core;
use crate::cluster::{Backplane, RelayError, Ticket};
use crate::code::Code;
use crate::event::{ClientId, Reason};
use crate::idmap::IdMap;
use crate::message::{self, error_payload, Payload};

/// A `hello` waiting for the cluster's answer to its claim.
#[derive(Debug)]
pub(super) struct Claiming {
    pub ticket: Ticket,
    pub nick: Arc<str>,
    pub token: Option<String>,
    pub resumable: bool,
}

/// The backplane and what the core waits for from it.
#[derive(Debug)]
pub(super) struct Cluster {
    pub bp: Backplane,
    /// Claims under way: whose `hello` each is.
    pub claims: HashMap<Ticket, ClientId>,
    pub claiming: IdMap<Claiming>,
    /// Joins under way: the client and the folded room.
    pub joins: HashMap<Ticket, (ClientId, String)>,
    /// Renames under way: the client and the nick it asked for.
    pub renames: HashMap<Ticket, (ClientId, Arc<str>)>,
    pub renaming: IdMap<Ticket>,
}

impl Cluster {
    pub fn new(bp: Backplane) -> Cluster {
        Cluster {
            bp,
            claims: HashMap::new(),
            claiming: IdMap::default(),
            joins: HashMap::new(),
            renames: HashMap::new(),
            renaming: IdMap::default(),
        }
    }

    /// Joins of `id` under way.
    fn joins_of(&self, id: ClientId) -> impl Iterator<Item = &str> + '_ {
        self.joins
            .values()
            .filter(move |(c, _)| *c == id)
            .map(|(_, room)| room.as_str())
    }
}

fn unavailable() -> Payload {
    let why = Some("the cluster is unreachable: try again");
    error_payload(Code::Unavailable.as_str(), None, None, why)
}

impl Core {
    /// Makes this core one node of a cluster, through `bp`.
    pub fn set_backplane(&mut self, bp: Backplane) {
        self.cluster = Some(Box::new(Cluster::new(bp)));
    }

    /// The backplane, for the select loop's sockets.
    pub fn backplane_mut(&mut self) -> Option<&mut Backplane> {
        self.cluster.as_mut().map(|c| &mut c.bp)
    }

    /// The backplane, if this core is a node of a cluster.
    pub fn backplane(&self) -> Option<&Backplane> {
        self.cluster.as_ref().map(|c| &c.bp)
    }

    /// A graceful goodbye to the cluster (a shutdown): every local nick is
    /// freed at once, other nodes see them go `offline` with `reason`.
    pub fn leave_cluster(&mut self, reason: &str, now: Instant) {
        if let Some(c) = &mut self.cluster {
            c.bp.leave(reason, now);
        }
    }

    /// Whether `id` sent a `hello` that waits for the cluster.
    pub(super) fn is_claiming(&self, id: ClientId) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.claiming.contains_key(&id))
    }

    /// A valid `hello` whose nick is free here: the nick is held here
    /// while the cluster is asked; the answer comes as an event.
    pub(super) fn claim(
        &mut self,
        id: ClientId,
        key: String,
        nick: Arc<str>,
        token: Option<String>,
        resumable: bool,
        now: Instant,
    ) {
        let Some(c) = &mut self.cluster else { return };
        self.registry.reserve(key, id);
        let ticket = c.bp.claim(&nick, now);
        c.claims.insert(ticket, id);
        c.claiming.insert(
            id,
            Claiming {
                ticket,
                nick,
                token,
                resumable,
            },
        );
    }

    /// A connection leaves before its claim was answered, or after it
    /// was claimed but before it registered (the host's approval): the
    /// nick goes back to the cluster.
    pub(super) fn cluster_unclaim(
        &mut self,
        id: ClientId,
        approved_nick: Option<&str>,
        reason: Reason,
        now: Instant,
    ) {
        let Some(c) = &mut self.cluster else { return };
        if let Some(claim) = c.claiming.remove(&id) {
            c.claims.remove(&claim.ticket);
            self.registry.unreserve(&claim.nick);
            c.bp.release(&claim.nick, reason.as_str(), now);
        } else if let Some(nick) = approved_nick {
            c.bp.release(nick, reason.as_str(), now);
        }
    }

    /// A registered nick's session ended for good: the cluster frees it
    /// (and parts its rooms there).
    pub(super) fn cluster_release(&mut self, id: ClientId, nick: &str, reason: Reason, now: Instant) {
        let Some(c) = &mut self.cluster else { return };
        if let Some(ticket) = c.renaming.remove(&id) {
            if let Some((_, wanted)) = c.renames.remove(&ticket) {
                self.registry.unreserve(&wanted);
            }
        }
        c.joins.retain(|_, (client, _)| *client != id);
        c.bp.release(nick, reason.as_str(), now);
    }

    /// `msg` to a nick not registered here: to its node, if it is on one.
    /// `None`: nobody has it in the cluster either.
    pub(super) fn relay_msg(
        &mut self,
        from: &str,
        to: &str,
        text: message::JsonString<'_>,
        now: Instant,
    ) -> Option<(Payload, usize)> {
        let c = self.cluster.as_mut()?;
        let spelled = c.bp.locate(to).filter(|l| !l.local)?.nick.to_string();
        let payload = message::text_payload(from, message::TextTo::One { to: &spelled }, text);
        match c.bp.send_to(from, &spelled, &payload, now) {
            Ok(n) => Some((payload, n)),
            Err(RelayError::Full) => Some((payload, 0)),
            Err(RelayError::NoSuchUser | RelayError::Local) => None,
        }
    }

    /// An `all` from a local user, to the other nodes: how many users
    /// there it was handed to Redis for.
    pub(super) fn relay_all(&mut self, from: &str, payload: &Payload, now: Instant) -> usize {
        match &mut self.cluster {
            Some(c) => c.bp.broadcast(from, payload, now).unwrap_or(0),
            None => 0,
        }
    }

    /// A `room` message from a local member, to the members on other
    /// nodes: how many it was handed to Redis for.
    pub(super) fn relay_room(&mut self, from: &str, room: &str, payload: &Payload, now: Instant) -> usize {
        match &mut self.cluster {
            Some(c) => c.bp.room_send(from, room, payload, now).unwrap_or(0),
            None => 0,
        }
    }

    /// Every nick in the cluster (or on this server), sorted.
    pub(super) fn all_nicks(&self) -> Vec<&str> {
        match &self.cluster {
            Some(c) => c.bp.users(),
            None => self.registry.roster(),
        }
    }

    /// `join` on a node of a cluster: this server's limits first, then the
    /// cluster's answer (an event) decides.
    pub(super) fn cluster_join(&mut self, id: ClientId, nick: &Arc<str>, name: &str, now: Instant) {
        let key = message::fold(name);
        let Some(c) = &self.cluster else { return };
        if !message::valid_room(name) || self.rooms.is_member(id, &key) {
            // The local path answers both (bad_room, or the member list).
            return self.join(id, nick, name);
        }
        if c.joins_of(id).any(|r| r == key) {
            // Its answer is on the way.
            return;
        }
        let pending = c.joins_of(id).count();
        if let Err(code) = self.rooms.may_join(id, &key, pending) {
            return self.room_error(id, code, name);
        }
        let max = self.rooms.max_members();
        let c = self.cluster.as_mut().expect("checked");
        let ticket = c.bp.join(nick, name, max, now);
        c.joins.insert(ticket, (id, key));
    }

    /// `part` on a node of a cluster: the cluster is told after the local
    /// part.
    pub(super) fn cluster_part(&mut self, nick: &str, room: &str, now: Instant) {
        if let Some(c) = &mut self.cluster {
            c.bp.part(nick, room, now);
        }
    }

    /// `nick` on a node of a cluster: this server's checks first, then the
    /// cluster's answer (an event) decides; the nick asked for is held
    /// here meanwhile.
    pub(super) fn cluster_rename(&mut self, id: ClientId, old: &Arc<str>, wanted: &str, now: Instant) {
        let key = message::fold(wanted);
        let Some(c) = &self.cluster else { return };
        let local_only = !message::valid_nick(wanted)
            || (key != message::fold(old) && self.registry.is_taken(&key))
            || wanted == &**old;
        if local_only {
            // The local path answers these (bad_nick, nick_taken, no change).
            return self.rename(id, old, wanted);
        }
        if c.renaming.contains_key(&id) {
            return self.reply_error(id, Code::BadRequest, Some("a rename is already under way"));
        }
        let c = self.cluster.as_mut().expect("checked");
        let ticket = c.bp.rename(old, wanted, now);
        c.renames.insert(ticket, (id, wanted.into()));
        c.renaming.insert(id, ticket);
        if key != message::fold(old) {
            self.registry.reserve(key, id);
        }
    }

    /// `{"type":"error","code":"unavailable"}` to `id`.
    pub(super) fn reply_unavailable(&mut self, id: ClientId, room: Option<&str>) {
        let payload = match room {
            Some(room) => error_payload(
                Code::Unavailable.as_str(),
                None,
                Some(room),
                Some("the cluster is unreachable: try again"),
            ),
            None => unavailable(),
        };
        self.reply(id, &payload);
    }
}
