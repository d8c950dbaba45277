//! The core's calls: claims, releases, renames, joins and parts (scripts on
//! the command link, their outcomes as events), and the relays of chat
//! frames to other nodes (`PUBLISH` on the same link, so they keep their
//! order with everything else this node sends).

use std::time::Instant;

use super::{Backplane, Pending, Sync};
use crate::cluster::backplane_event::{
    BackplaneEvent, ClaimOutcome, JoinOutcome, RelayError, RenameOutcome, Ticket,
};
use crate::cluster::link_event::{SendError, Token};
use crate::cluster::local::{Change, Local, WaitingJoin};
use crate::cluster::relay;
use crate::cluster::scripts::{self, Script};
use crate::message::{fold, valid_nick, valid_room};

impl Backplane {
    /// Claims `nick` for a local client (after the core found it free
    /// locally). The outcome comes as [`BackplaneEvent::Claim`].
    pub fn claim(&mut self, nick: &str, now: Instant) -> Ticket {
        let ticket = self.ticket();
        let folded = fold(nick);
        let outcome = if !self.is_up() || !valid_nick(nick) {
            Some(ClaimOutcome::Unavailable)
        } else if self.local.holds(&folded) || self.local.claiming.contains_key(&folded) {
            Some(ClaimOutcome::Taken {
                node: self.node.clone(),
            })
        } else {
            match self.dir.nicks.get(&folded) {
                // The directory is current: no round trip to say no.
                Some((_, node)) if *node != self.node => Some(ClaimOutcome::Taken { node: node.clone() }),
                _ => None,
            }
        };
        if let Some(outcome) = outcome {
            self.events.push_back(BackplaneEvent::Claim {
                ticket,
                nick: nick.to_string(),
                outcome,
            });
            return ticket;
        }
        let pending = Pending::Claim {
            ticket,
            nick: nick.to_string(),
            abandoned: None,
        };
        match self.eval(now, &scripts::CLAIM, &[nick.as_bytes()], pending) {
            Some(token) => {
                self.local.claiming.insert(folded, token);
            }
            None => self.events.push_back(BackplaneEvent::Claim {
                ticket,
                nick: nick.to_string(),
                outcome: ClaimOutcome::Unavailable,
            }),
        }
        ticket
    }

    /// A local user left (`reason`: the protocol's word, `quit`,
    /// `disconnect`, ...): its nick and rooms are freed in the cluster,
    /// and other nodes tell their clients. A claim still under way is
    /// abandoned (no outcome comes; if it wins, the nick is freed at once).
    /// Works while Redis is away: the next snapshot frees what is left.
    pub fn release(&mut self, nick: &str, reason: &str, now: Instant) {
        let folded = fold(nick);
        if let Some(token) = self.local.claiming.remove(&folded) {
            if let Some(Pending::Claim { abandoned, .. }) = self.pending.get_mut(&token) {
                *abandoned = Some(reason.to_string());
            }
            return;
        }
        let Some((user, emptied)) = self.local.remove_user(&folded) else {
            return;
        };
        self.unsubscribe_rooms(&emptied, now);
        // send_release records the reason: a rename under way that wins
        // frees its new nick with it.
        self.send_release(&user.nick, reason, now);
        self.remote_counts = None;
    }

    /// Renames a local user (`old` exactly as it holds it). The outcome
    /// comes as [`BackplaneEvent::Rename`].
    pub fn rename(&mut self, old: &str, new: &str, now: Instant) -> Ticket {
        let ticket = self.ticket();
        let (fo, fnew) = (fold(old), fold(new));
        let held = self.local.users.get(&fo).is_some_and(|u| u.nick == old);
        let outcome = if !self.is_up() || !held || !valid_nick(new) {
            Some(RenameOutcome::Unavailable)
        } else if fnew != fo && (self.local.holds(&fnew) || self.local.claiming.contains_key(&fnew)) {
            Some(RenameOutcome::Taken {
                node: self.node.clone(),
            })
        } else {
            match self.dir.nicks.get(&fnew) {
                Some((_, node)) if fnew != fo && *node != self.node => {
                    Some(RenameOutcome::Taken { node: node.clone() })
                }
                _ => None,
            }
        };
        let pending = Pending::Rename {
            ticket,
            old: old.to_string(),
            new: new.to_string(),
        };
        let outcome = match outcome {
            Some(o) => o,
            None => match self.eval(now, &scripts::RENAME, &[old.as_bytes(), new.as_bytes()], pending) {
                Some(_) => return ticket,
                None => RenameOutcome::Unavailable,
            },
        };
        self.events.push_back(BackplaneEvent::Rename {
            ticket,
            old: old.to_string(),
            new: new.to_string(),
            outcome,
        });
        ticket
    }

    /// Joins a local user to `room` cluster-wide (at most `max_members`
    /// members; 0: no limit). The outcome comes as [`BackplaneEvent::Join`].
    /// The room's channel is subscribed first, and the join sent once Redis
    /// confirmed it, so the member misses no frame sent after its join.
    pub fn join(&mut self, nick: &str, room: &str, max_members: usize, now: Instant) -> Ticket {
        let ticket = self.ticket();
        let (folded, froom) = (fold(nick), fold(room));
        let answer = |outcome| BackplaneEvent::Join {
            ticket,
            nick: nick.to_string(),
            room: room.to_string(),
            outcome,
        };
        let Some(user) = self
            .local
            .users
            .get(&folded)
            .filter(|_| self.is_up() && valid_room(room))
        else {
            self.events.push_back(answer(JoinOutcome::Unavailable));
            return ticket;
        };
        if let Some(name) = user.rooms.get(&froom) {
            let outcome = JoinOutcome::Joined {
                room: name.clone(),
                new_member: false,
            };
            self.events.push_back(answer(outcome));
            return ticket;
        }
        if self.local.start_join(&froom, room) == Change::First {
            let channel = self.names.room_channel(room).into_bytes();
            self.sub
                .subscribe(now, &channel)
                .expect("a subscriber subscribes");
        }
        let waiting = WaitingJoin {
            ticket,
            nick: nick.to_string(),
            room: room.to_string(),
            max: max_members,
        };
        let r = self.local.rooms.get_mut(&froom).expect("just started");
        if r.live {
            self.send_join(waiting, now);
        } else {
            r.waiting.push(waiting);
        }
        ticket
    }

    /// A local user leaves `room` (at once here; in Redis as soon as it
    /// can be sent).
    pub fn part(&mut self, nick: &str, room: &str, now: Instant) {
        let (folded, froom) = (fold(nick), fold(room));
        let Some(change) = self.local.part(&folded, &froom) else {
            return;
        };
        if change == Change::Last {
            self.unsubscribe_rooms(&[froom], now);
        }
        let spelled = self.local.users[&folded].nick.clone();
        self.eval(
            now,
            &scripts::PART,
            &[spelled.as_bytes(), room.as_bytes()],
            Pending::Part,
        );
    }

    /// Relays a `msg` frame (`payload`, as encoded for local clients) from
    /// local `from` to `to` on another node. `Ok(n)`: n recipients to count
    /// in the sender's ack (1 when handed to Redis, 0 if it waits for Redis
    /// to come back).
    pub fn send_to(
        &mut self,
        from: &str,
        to: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<usize, RelayError> {
        let folded = fold(to);
        if self.local.holds(&folded) {
            return Err(RelayError::Local);
        }
        let Some((spelled, node)) = self.dir.nicks.get(&folded).filter(|(_, n)| *n != self.node) else {
            return Err(RelayError::NoSuchUser);
        };
        let channel = self.names.node_channel(node).into_bytes();
        let head = relay::msg_head(&self.node, from, spelled);
        self.relay(now, &channel, &head, payload).map(usize::from)
    }

    /// Relays an `all` frame from local `from` to every other node. `Ok(n)`:
    /// the users on other nodes it was handed to Redis for.
    pub fn broadcast(&mut self, from: &str, payload: &[u8], now: Instant) -> Result<usize, RelayError> {
        if !self.others_exist() {
            return Ok(0);
        }
        let head = relay::all_head(&self.node, from);
        let channel = self.all_channel.clone();
        let sent = self.relay(now, &channel, &head, payload)?;
        Ok(if sent { self.remote_counts().0 } else { 0 })
    }

    /// Relays a `room` frame from local member `from` to the room's members
    /// on other nodes. `Ok(n)`: those it was handed to Redis for.
    pub fn room_send(
        &mut self,
        from: &str,
        room: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<usize, RelayError> {
        if !self.others_exist() {
            return Ok(0);
        }
        let channel = self.names.room_channel(room).into_bytes();
        let head = relay::room_head(&self.node, from, room);
        let sent = self.relay(now, &channel, &head, payload)?;
        Ok(if sent {
            self.remote_counts().1.get(&fold(room)).copied().unwrap_or(0)
        } else {
            0
        })
    }

    /// A graceful goodbye: every local nick is freed at once (other nodes
    /// see `offline` with `reason`, e.g. `shutdown`) and the node is
    /// forgotten. Keep pumping until [`is_idle`](Self::is_idle) (or a
    /// deadline) before dropping it.
    pub fn leave(&mut self, reason: &str, now: Instant) {
        let rooms: Vec<String> = self.local.rooms.keys().cloned().collect();
        self.local = Local::default();
        self.unsubscribe_rooms(&rooms, now);
        self.eval(now, &scripts::LEAVE, &[reason.as_bytes()], Pending::Leave);
        self.left = true;
        self.next_heartbeat = None;
        self.remote_counts = None;
        self.pump(now);
    }

    /// Whether nothing waits for Redis on the command link.
    pub fn is_idle(&self) -> bool {
        let s = self.cmd.stats();
        s.pending_commands == 0 && s.in_flight == 0
    }

    // --- Inside ---

    pub(super) fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    /// Runs a script with this node's prefix and id before `args`; `None`
    /// if the link refused it (full).
    pub(super) fn eval(
        &mut self,
        now: Instant,
        script: &Script,
        args: &[&[u8]],
        pending: Pending,
    ) -> Option<Token> {
        let mut all: Vec<&[u8]> = vec![&self.prefix, self.node.as_bytes()];
        if matches!(pending, Pending::Snapshot) {
            all.truncate(1);
        }
        all.extend_from_slice(args);
        let token = self.cmd.send_eval(now, script, &[], &all).ok()?;
        self.pending.insert(token, pending);
        Some(token)
    }

    pub(super) fn send_release(&mut self, nick: &str, reason: &str, now: Instant) {
        let folded = fold(nick);
        self.local.released.insert(folded.clone(), reason.to_string());
        self.eval(
            now,
            &scripts::RELEASE,
            &[nick.as_bytes(), reason.as_bytes()],
            Pending::Release { folded },
        );
    }

    pub(super) fn send_join(&mut self, j: WaitingJoin, now: Instant) {
        let max = j.max.to_string();
        let args: [&[u8]; 3] = [j.nick.as_bytes(), j.room.as_bytes(), max.as_bytes()];
        let pending = Pending::Join {
            ticket: j.ticket,
            nick: j.nick.clone(),
            room: j.room.clone(),
        };
        if self.eval(now, &scripts::JOIN, &args, pending).is_none() {
            self.join_failed(j.ticket, &j.nick, &j.room, JoinOutcome::Unavailable, now);
        }
    }

    /// A join that did not happen: its room may have nobody local now.
    pub(super) fn join_failed(
        &mut self,
        ticket: Ticket,
        nick: &str,
        room: &str,
        outcome: JoinOutcome,
        now: Instant,
    ) {
        let froom = fold(room);
        if self.local.end_join(&fold(nick), &froom, None) == Change::Last {
            self.unsubscribe_rooms(&[froom], now);
        }
        self.events.push_back(BackplaneEvent::Join {
            ticket,
            nick: nick.to_string(),
            room: room.to_string(),
            outcome,
        });
    }

    pub(super) fn unsubscribe_rooms(&mut self, frooms: &[String], now: Instant) {
        for froom in frooms {
            let channel = self.names.room_channel(froom).into_bytes();
            self.sub
                .unsubscribe(now, &channel)
                .expect("a subscriber unsubscribes");
        }
    }

    /// Publishes a relayed frame; `Ok(true)` if the link is ready (it goes
    /// now), `Ok(false)` if it waits for Redis (bounded in bytes and age).
    pub(super) fn relay(
        &mut self,
        now: Instant,
        channel: &[u8],
        head: &[u8],
        payload: &[u8],
    ) -> Result<bool, RelayError> {
        match self.cmd.publish(now, channel, head, payload) {
            Ok(_) => {
                self.stats.relayed_out += 1;
                Ok(self.cmd.is_ready())
            }
            Err(SendError::Full { .. }) => {
                self.stats.relay_refused += 1;
                Err(RelayError::Full)
            }
            Err(e) => unreachable!("a command link publishes: {e}"),
        }
    }

    /// Whether the directory knows another node (or may be behind).
    pub(super) fn others_exist(&self) -> bool {
        !matches!(self.sync, Sync::Current) || self.dir.nodes.iter().any(|n| *n != self.node)
    }
}
