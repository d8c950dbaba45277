//! What this node holds, as it knows it (the directory in Redis is the
//! cluster's view, this is the node's own): its users and their rooms,
//! the claims and joins under way, and the rooms with local members, whose
//! channels it subscribes to.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::backplane_event::Ticket;
use super::link_event::Token;
use crate::message::fold;

/// A user of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LocalUser {
    /// The nick as spelled.
    pub nick: String,
    /// Its rooms: folded → as the cluster spells it.
    pub rooms: BTreeMap<String, String>,
}

/// A `join` waiting for its room's subscription to be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WaitingJoin {
    pub ticket: Ticket,
    pub nick: String,
    pub room: String,
    pub max: usize,
}

/// A room with local members or joins under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LocalRoom {
    /// As the cluster spells it (the first asker's, until a join answers).
    pub name: String,
    /// Local members, folded.
    pub members: BTreeSet<String>,
    /// Joins under way (waiting or sent).
    pub joining: usize,
    /// Whether Redis confirmed the subscription to its channel: a join is
    /// sent only then, so no frame published after it is missed.
    pub live: bool,
    /// Joins waiting for that.
    pub waiting: Vec<WaitingJoin>,
}

/// Whether a room's channel must now be subscribed or unsubscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// It had nobody local before.
    First,
    /// It has nobody local now (and was forgotten).
    Last,
    /// Neither.
    None,
}

/// This node's users, claims and rooms.
#[derive(Debug, Default)]
pub(super) struct Local {
    /// Users by folded nick.
    pub users: BTreeMap<String, LocalUser>,
    /// Claims under way: folded nick → the command's token.
    pub claiming: HashMap<String, Token>,
    /// Rooms with local members or joins under way, by folded name.
    pub rooms: BTreeMap<String, LocalRoom>,
    /// Nicks released whose release Redis has not confirmed yet, with the
    /// reason: a release lost with a connection is made again from the
    /// next snapshot, with the same reason.
    pub released: HashMap<String, String>,
}

impl Local {
    /// The user holding `nick` (any case).
    pub fn user(&self, nick: &str) -> Option<&LocalUser> {
        self.users.get(&fold(nick))
    }

    /// Whether `folded` is held here.
    pub fn holds(&self, folded: &str) -> bool {
        self.users.contains_key(folded)
    }

    /// A claimed nick becomes this node's.
    pub fn add_user(&mut self, nick: &str) {
        let folded = fold(nick);
        self.released.remove(&folded);
        self.users.insert(
            folded,
            LocalUser {
                nick: nick.to_string(),
                rooms: BTreeMap::new(),
            },
        );
    }

    /// Forgets a user; returns it, and the rooms left with nobody local.
    pub fn remove_user(&mut self, folded: &str) -> Option<(LocalUser, Vec<String>)> {
        let user = self.users.remove(folded)?;
        let mut emptied = Vec::new();
        for froom in user.rooms.keys() {
            if let Some(r) = self.rooms.get_mut(froom) {
                r.members.remove(folded);
            }
            if self.forget_if_empty(froom) {
                emptied.push(froom.clone());
            }
        }
        Some((user, emptied))
    }

    /// Moves a user to a new nick (its rooms with it).
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        let (fo, fnew) = (fold(old), fold(new));
        let Some(mut user) = self.users.remove(&fo) else {
            return false;
        };
        for froom in user.rooms.keys() {
            if let Some(r) = self.rooms.get_mut(froom) {
                r.members.remove(&fo);
                r.members.insert(fnew.clone());
            }
        }
        user.nick = new.to_string();
        self.users.insert(fnew, user);
        true
    }

    /// A join under way for `room`; says whether its channel must be
    /// subscribed now.
    pub fn start_join(&mut self, froom: &str, room: &str) -> Change {
        let first = !self.rooms.contains_key(froom);
        let r = self.rooms.entry(froom.to_string()).or_insert_with(|| LocalRoom {
            name: room.to_string(),
            members: BTreeSet::new(),
            joining: 0,
            live: false,
            waiting: Vec::new(),
        });
        r.joining += 1;
        if first {
            Change::First
        } else {
            Change::None
        }
    }

    /// A join ended; `joined` names the room as spelled if the user is now
    /// a member. Says whether the room has nobody local any more.
    pub fn end_join(&mut self, folded: &str, froom: &str, joined: Option<&str>) -> Change {
        let Some(r) = self.rooms.get_mut(froom) else {
            return Change::None;
        };
        r.joining = r.joining.saturating_sub(1);
        if let (Some(name), Some(user)) = (joined, self.users.get_mut(folded)) {
            user.rooms.insert(froom.to_string(), name.to_string());
            r.members.insert(folded.to_string());
            r.name = name.to_string();
        }
        if self.forget_if_empty(froom) {
            Change::Last
        } else {
            Change::None
        }
    }

    /// A user leaves a room; says whether it has nobody local any more.
    pub fn part(&mut self, folded: &str, froom: &str) -> Option<Change> {
        self.users.get_mut(folded)?.rooms.remove(froom)?;
        if let Some(r) = self.rooms.get_mut(froom) {
            r.members.remove(folded);
        }
        Some(if self.forget_if_empty(froom) {
            Change::Last
        } else {
            Change::None
        })
    }

    fn forget_if_empty(&mut self, froom: &str) -> bool {
        let empty = self
            .rooms
            .get(froom)
            .is_some_and(|r| r.members.is_empty() && r.joining == 0);
        if empty {
            self.rooms.remove(froom);
        }
        empty
    }

    /// Whether `froom` has a local member (not counting joins under way).
    pub fn has_members(&self, froom: &str) -> bool {
        self.rooms.get(froom).is_some_and(|r| !r.members.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_forgotten_with_their_last_local_member_or_join() {
        let mut l = Local::default();
        l.add_user("Alice");
        l.add_user("bob");
        assert_eq!(l.start_join("#r", "#R"), Change::First);
        assert_eq!(l.start_join("#r", "#r"), Change::None);
        assert_eq!(l.end_join("alice", "#r", Some("#R")), Change::None);
        // Bob's join failed; Alice is still there.
        assert_eq!(l.end_join("bob", "#r", None), Change::None);
        assert!(l.has_members("#r"));
        assert!(l.rename("Alice", "Ann"));
        assert_eq!(l.rooms["#r"].members.iter().collect::<Vec<_>>(), ["ann"]);
        let (user, emptied) = l.remove_user("ann").unwrap();
        assert_eq!((user.nick.as_str(), emptied), ("Ann", vec!["#r".to_string()]));
        assert!(l.rooms.is_empty());
        assert_eq!(l.part("bob", "#r"), None);
    }
}
