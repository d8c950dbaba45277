//! Rooms (protocol 1.1): named groups a client joins. This holds who is in
//! which room and the limits on them; what members are told is up to the
//! core, which sends each room message once, shared by every member's
//! queue like a broadcast.

use std::collections::HashMap;
use std::sync::Arc;

use crate::code::Code;
use crate::config::Config;
use crate::event::ClientId;
use crate::idmap::IdMap;
use crate::message;

/// One room.
#[derive(Debug)]
pub(super) struct Room {
    /// The name as the first member wrote it.
    pub name: Arc<str>,
    /// Members in joining order.
    pub members: Vec<ClientId>,
}

/// What a successful `join` did.
#[derive(Debug)]
pub(super) struct Joined {
    /// The room's case-folded name.
    pub key: String,
    /// The room's name as it was first written.
    pub name: Arc<str>,
    /// Whether the client was not a member before (else the join only
    /// repeats the member list).
    pub new_member: bool,
}

/// What taking a client out of a room did.
#[derive(Debug)]
pub(super) struct Parted {
    /// The room's name.
    pub name: Arc<str>,
    /// Whether it is gone (it had no other member).
    pub vanished: bool,
}

/// Every room, by case-folded name (a room exists while it has members),
/// and every client's rooms.
#[derive(Debug)]
pub(super) struct Rooms {
    by_key: HashMap<String, Room>,
    /// Each member's rooms, by case-folded name, in joining order.
    of_member: IdMap<Vec<String>>,
    max_rooms_per_client: usize,
    max_members_per_room: usize,
    max_rooms: usize,
}

impl Rooms {
    pub fn new(cfg: &Config) -> Self {
        Rooms {
            by_key: HashMap::new(),
            of_member: IdMap::default(),
            max_rooms_per_client: cfg.max_rooms_per_client,
            max_members_per_room: cfg.max_members_per_room,
            max_rooms: cfg.max_rooms,
        }
    }

    /// The room with this case-folded name.
    pub fn get(&self, key: &str) -> Option<&Room> {
        self.by_key.get(key)
    }

    /// The room named `name` (any case) if `id` is one of its members. On
    /// the hot path of every room message: the lookup folds on the stack.
    pub fn joined_by(&self, name: &str, id: ClientId) -> Option<(&str, &Room)> {
        let mut buf = [0u8; 64];
        let key = message::fold_in(name, &mut buf);
        let (key, room) = self.by_key.get_key_value(&*key)?;
        room.members.contains(&id).then_some((key.as_str(), room))
    }

    /// Adds `id` to the room `name`, within the limits: the error is the
    /// code to answer with.
    pub fn join(&mut self, id: ClientId, name: &str) -> Result<Joined, Code> {
        if !message::valid_room(name) {
            return Err(Code::BadRoom);
        }
        let key = message::fold(name);
        let mine = self.of_member.get(&id).map_or(&[][..], Vec::as_slice);
        if mine.contains(&key) {
            let name = self.by_key[&key].name.clone();
            return Ok(Joined {
                key,
                name,
                new_member: false,
            });
        }
        match self.by_key.get(&key) {
            _ if mine.len() >= self.max_rooms_per_client => return Err(Code::TooManyRooms),
            Some(room) if room.members.len() >= self.max_members_per_room => return Err(Code::RoomFull),
            None if self.by_key.len() >= self.max_rooms => return Err(Code::ServerRoomLimit),
            _ => {}
        }
        let room = self.by_key.entry(key.clone()).or_insert_with(|| Room {
            name: name.into(),
            members: Vec::new(),
        });
        room.members.push(id);
        let name = room.name.clone();
        self.of_member.entry(id).or_default().push(key.clone());
        Ok(Joined {
            key,
            name,
            new_member: true,
        })
    }

    /// Whether `id` may join the room `key` (folded) with `pending` more
    /// joins of its own under way, by this server's limits (a cluster's
    /// node asks before the cluster does).
    pub fn may_join(&self, id: ClientId, key: &str, pending: usize) -> Result<(), Code> {
        let mine = self.of(id).len() + pending;
        match self.by_key.get(key) {
            _ if mine >= self.max_rooms_per_client => Err(Code::TooManyRooms),
            Some(room) if room.members.len() >= self.max_members_per_room => Err(Code::RoomFull),
            None if self.by_key.len() >= self.max_rooms => Err(Code::ServerRoomLimit),
            _ => Ok(()),
        }
    }

    /// Most members of one room (cluster-wide, on a node of a cluster).
    pub fn max_members(&self) -> usize {
        self.max_members_per_room
    }

    /// Takes `id` out of the room `key`; `None` if it was not a member.
    pub fn part(&mut self, id: ClientId, key: &str) -> Option<Parted> {
        let room = self.by_key.get_mut(key)?;
        let at = room.members.iter().position(|&m| m == id)?;
        room.members.remove(at);
        let name = room.name.clone();
        let vanished = room.members.is_empty();
        if vanished {
            self.by_key.remove(key);
        }
        if let Some(mine) = self.of_member.get_mut(&id) {
            mine.retain(|k| k != key);
            if mine.is_empty() {
                self.of_member.remove(&id);
            }
        }
        Some(Parted { name, vanished })
    }

    /// The rooms `id` is in, by case-folded name, in joining order.
    pub fn of(&self, id: ClientId) -> &[String] {
        self.of_member.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Whether `id` is in the room `key`.
    pub fn is_member(&self, id: ClientId, key: &str) -> bool {
        self.of(id).iter().any(|k| k == key)
    }

    /// Every room's name with its member count, sorted by name.
    pub fn counts(&self) -> Vec<(Arc<str>, usize)> {
        let mut counts: Vec<(Arc<str>, usize)> = self
            .by_key
            .values()
            .map(|r| (r.name.clone(), r.members.len()))
            .collect();
        counts.sort_unstable();
        counts
    }

    /// A session moved from `old` to `new` (a resume): its memberships go
    /// with it, each in its place in the joining order.
    pub fn rekey(&mut self, old: ClientId, new: ClientId) {
        let Some(keys) = self.of_member.remove(&old) else {
            return;
        };
        for key in &keys {
            if let Some(room) = self.by_key.get_mut(key) {
                for m in &mut room.members {
                    if *m == old {
                        *m = new;
                    }
                }
            }
        }
        self.of_member.insert(new, keys);
    }

    /// Every room's name, sorted.
    pub fn names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.by_key.values().map(|r| r.name.clone()).collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms::new(&Config {
            max_rooms_per_client: 2,
            max_members_per_room: 2,
            max_rooms: 3,
            ..Config::default()
        })
    }

    #[test]
    fn join_and_part_keep_both_indexes_in_step() {
        let mut r = rooms();
        let j = r.join(1, "#Rust").unwrap();
        assert!(j.new_member && j.key == "#rust" && &*j.name == "#Rust");
        assert!(!r.join(1, "#RUST").unwrap().new_member);
        r.join(2, "#rust").unwrap();
        assert_eq!(r.get("#rust").unwrap().members, [1, 2]);
        assert_eq!(r.of(1), ["#rust"]);
        let p = r.part(1, "#rust").unwrap();
        assert!(!p.vanished);
        assert!(r.of(1).is_empty());
        assert!(r.part(1, "#rust").is_none());
        assert!(r.part(2, "#rust").unwrap().vanished);
        assert!(r.get("#rust").is_none());
    }

    #[test]
    fn rekey_keeps_the_joining_order_and_counts_sort_by_name() {
        let mut r = rooms();
        r.join(1, "#b").unwrap();
        r.join(2, "#b").unwrap();
        r.join(2, "#a").unwrap();
        r.rekey(2, 9);
        assert_eq!(r.get("#b").unwrap().members, [1, 9]);
        assert_eq!(r.of(9), ["#b", "#a"]);
        assert!(r.of(2).is_empty());
        let counts: Vec<(String, usize)> = r.counts().into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        assert_eq!(counts, [("#a".to_string(), 1), ("#b".to_string(), 2)]);
    }

    #[test]
    fn limits_have_their_own_codes() {
        let mut r = rooms();
        assert_eq!(r.join(1, "rust").unwrap_err(), Code::BadRoom);
        r.join(1, "#a").unwrap();
        r.join(1, "#b").unwrap();
        assert_eq!(r.join(1, "#c").unwrap_err(), Code::TooManyRooms);
        r.join(2, "#a").unwrap();
        assert_eq!(r.join(3, "#a").unwrap_err(), Code::RoomFull);
        r.join(3, "#c").unwrap();
        assert_eq!(r.join(3, "#d").unwrap_err(), Code::ServerRoomLimit);
    }
}
