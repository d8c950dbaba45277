//! The cluster as the core asks about it: who is where, every nick, every
//! room and its members. This node's own users come from what it holds
//! (always right for it); everyone else's from the directory.

use std::collections::HashMap;

use super::Backplane;
use crate::cluster::backplane_event::Located;
use crate::message::fold;

impl Backplane {
    /// Where `nick` (any case) is: here, on another node, or nowhere.
    pub fn locate(&self, nick: &str) -> Option<Located<'_>> {
        let folded = fold(nick);
        if let Some(user) = self.local.users.get(&folded) {
            return Some(Located {
                nick: &user.nick,
                node: &self.node,
                local: true,
            });
        }
        match self.dir.nicks.get(&folded) {
            Some((nick, node)) if *node != self.node => Some(Located {
                nick,
                node,
                local: false,
            }),
            _ => None,
        }
    }

    /// The node holding `nick` (this one's id for a local user).
    pub fn node_of(&self, nick: &str) -> Option<&str> {
        self.locate(nick).map(|l| l.node)
    }

    /// Every nick in the cluster, sorted (as `welcome` and `users` list
    /// them).
    pub fn users(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .dir
            .nicks
            .iter()
            .filter(|(f, (_, node))| *node != self.node && !self.local.holds(f))
            .map(|(_, (nick, _))| nick.as_str())
            .chain(self.local.users.values().map(|u| u.nick.as_str()))
            .collect();
        out.sort_unstable();
        out
    }

    /// Every member of `room` (any case) in the cluster, sorted.
    pub fn room_members(&self, room: &str) -> Vec<&str> {
        let froom = fold(room);
        let mut out: Vec<&str> = self.remote_members(&froom).collect();
        if let Some(r) = self.local.rooms.get(&froom) {
            out.extend(r.members.iter().map(|f| self.local.users[f].nick.as_str()));
        }
        out.sort_unstable();
        out
    }

    /// The room as the cluster spells it, if it has members.
    pub fn room_name(&self, room: &str) -> Option<&str> {
        let froom = fold(room);
        match (self.local.rooms.get(&froom), self.dir.rooms.get(&froom)) {
            (Some(r), _) if !r.members.is_empty() => Some(&r.name),
            (_, Some(r)) if self.remote_members(&froom).next().is_some() => Some(&r.name),
            _ => None,
        }
    }

    /// Every room in the cluster with its member count, sorted by name.
    pub fn rooms(&self) -> Vec<(&str, usize)> {
        let mut counts: HashMap<&str, (&str, usize)> = HashMap::new();
        for (froom, r) in &self.dir.rooms {
            let n = self.remote_members(froom).count();
            if n > 0 {
                counts.insert(froom, (&r.name, n));
            }
        }
        for (froom, r) in &self.local.rooms {
            if !r.members.is_empty() {
                counts.entry(froom).or_insert((&r.name, 0)).1 += r.members.len();
            }
        }
        let mut out: Vec<(&str, usize)> = counts.into_values().collect();
        out.sort_unstable();
        out
    }

    /// Members of folded `froom` on other nodes, as the directory has them.
    fn remote_members<'a>(&'a self, froom: &str) -> impl Iterator<Item = &'a str> + 'a {
        let members = self.dir.rooms.get(froom).map(|r| &r.members);
        members
            .into_iter()
            .flatten()
            .filter(|(f, _)| {
                !self.local.holds(f) && self.dir.nicks.get(*f).is_some_and(|(_, node)| *node != self.node)
            })
            .map(|(_, nick)| nick.as_str())
    }

    /// Users on other nodes, in all and per folded room (for acks),
    /// counted again only after the directory changed.
    pub(super) fn remote_counts(&mut self) -> &(usize, HashMap<String, usize>) {
        if self.remote_counts.is_none() {
            let users = self
                .dir
                .nicks
                .iter()
                .filter(|(f, (_, node))| *node != self.node && !self.local.holds(f))
                .count();
            let rooms = self
                .dir
                .rooms
                .keys()
                .map(|froom| (froom.clone(), self.remote_members(froom).count()))
                .filter(|(_, n)| *n > 0)
                .collect();
            self.remote_counts = Some((users, rooms));
        }
        self.remote_counts.as_ref().expect("just counted")
    }
}
