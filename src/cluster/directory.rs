//! A node's copy of the cluster's directory (nick → node, room → members),
//! rebuilt from a snapshot and kept current by the versioned events the
//! scripts publish on the all channel.
//!
//! On every (re)connect: subscribe first and buffer events, read the
//! snapshot, then apply the buffered and later events; [`Directory::apply`]
//! drops every event whose version the snapshot already holds.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::resp::Reply;

/// One directory event: `dir VERSION KIND ARGS...` on the all channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEvent {
    /// `up NODE`: a node registered (first heartbeat, or after its reaping).
    Up {
        /// The node.
        node: String,
    },
    /// `down NODE REASON`: a node was reaped (`disconnect`) or left.
    Down {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// `online NODE NICK`.
    Online {
        /// The node that holds it.
        node: String,
        /// The nick as spelled.
        nick: String,
    },
    /// `offline NODE NICK REASON` (after a `parted` for each of its rooms).
    Offline {
        /// The node that held it.
        node: String,
        /// The nick.
        nick: String,
        /// `quit`, `disconnect`, `timeout`, `shutdown`, ...
        reason: String,
    },
    /// `rename NODE OLD NEW`.
    Rename {
        /// The node that holds it.
        node: String,
        /// The nick before.
        old: String,
        /// The nick after.
        new: String,
    },
    /// `joined NODE NICK ROOM` (the room as its creator spelled it).
    Joined {
        /// The member's node.
        node: String,
        /// The member.
        nick: String,
        /// The room.
        room: String,
    },
    /// `parted NODE NICK ROOM`.
    Parted {
        /// The member's node.
        node: String,
        /// The member.
        nick: String,
        /// The room.
        room: String,
    },
}

/// The prefix of every directory event's payload.
pub const EVENT_PREFIX: &[u8] = b"dir ";

impl DirEvent {
    /// Parses a payload from the all channel: `Some((version, event))` for
    /// a directory event, `None` for anything else (broadcasts, or a kind
    /// this version does not know).
    pub fn parse(payload: &[u8]) -> Option<(u64, DirEvent)> {
        let text = std::str::from_utf8(payload.strip_prefix(EVENT_PREFIX)?).ok()?;
        let mut words = text.split(' ');
        let version = words.next()?.parse().ok()?;
        let kind = words.next()?;
        let mut next = || words.next().map(str::to_string);
        let event = match kind {
            "up" => DirEvent::Up { node: next()? },
            "down" => DirEvent::Down {
                node: next()?,
                reason: next()?,
            },
            "online" => DirEvent::Online {
                node: next()?,
                nick: next()?,
            },
            "offline" => DirEvent::Offline {
                node: next()?,
                nick: next()?,
                reason: next()?,
            },
            "rename" => DirEvent::Rename {
                node: next()?,
                old: next()?,
                new: next()?,
            },
            "joined" => DirEvent::Joined {
                node: next()?,
                nick: next()?,
                room: next()?,
            },
            "parted" => DirEvent::Parted {
                node: next()?,
                nick: next()?,
                room: next()?,
            },
            _ => return None,
        };
        Some((version, event))
    }
}

/// A room in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// As its creator spelled it.
    pub name: String,
    /// Members as spelled, by folded nick.
    pub members: BTreeMap<String, String>,
}

/// The cluster's directory as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// The version of the last event applied (or of the snapshot).
    pub version: u64,
    /// Folded nick → (nick as spelled, node).
    pub nicks: BTreeMap<String, (String, String)>,
    /// Folded room → room.
    pub rooms: BTreeMap<String, Room>,
    /// Registered nodes.
    pub nodes: BTreeSet<String>,
}

impl Directory {
    /// The directory in a reply of the `snapshot` script, or `None` if the
    /// reply has another shape.
    pub fn from_snapshot(reply: &Reply) -> Option<Directory> {
        let parts = reply.as_array()?;
        let text = |r: &Reply| {
            r.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_string)
        };
        let mut dir = Directory {
            version: u64::try_from(parts.first()?.as_integer()?).ok()?,
            ..Directory::default()
        };
        for pair in parts.get(1)?.as_array()?.chunks(2) {
            let [nick, node] = pair else { return None };
            let nick = text(nick)?;
            dir.nicks.insert(nick.to_ascii_lowercase(), (nick, text(node)?));
        }
        for pair in parts.get(2)?.as_array()?.chunks(2) {
            let [name, members] = pair else { return None };
            let name = text(name)?;
            let mut room = Room {
                name: name.clone(),
                members: BTreeMap::new(),
            };
            for m in members.as_array()? {
                let m = text(m)?;
                room.members.insert(m.to_ascii_lowercase(), m);
            }
            dir.rooms.insert(name.to_ascii_lowercase(), room);
        }
        for pair in parts.get(3)?.as_array()?.chunks(2) {
            dir.nodes.insert(text(pair.first()?)?);
        }
        Some(dir)
    }

    /// Applies an event newer than what the directory holds; returns false
    /// (and changes nothing) for one it already holds.
    pub fn apply(&mut self, version: u64, event: &DirEvent) -> bool {
        if version <= self.version {
            return false;
        }
        self.version = version;
        match event {
            DirEvent::Up { node } => {
                self.nodes.insert(node.clone());
            }
            DirEvent::Down { node, .. } => {
                self.nodes.remove(node);
            }
            DirEvent::Online { node, nick } => {
                self.nicks
                    .insert(nick.to_ascii_lowercase(), (nick.clone(), node.clone()));
            }
            DirEvent::Offline { nick, .. } => {
                let folded = nick.to_ascii_lowercase();
                self.nicks.remove(&folded);
                self.rooms.retain(|_, r| {
                    r.members.remove(&folded);
                    !r.members.is_empty()
                });
            }
            DirEvent::Rename { node, old, new } => {
                let (fo, fnew) = (old.to_ascii_lowercase(), new.to_ascii_lowercase());
                self.nicks.remove(&fo);
                self.nicks.insert(fnew.clone(), (new.clone(), node.clone()));
                for r in self.rooms.values_mut() {
                    if r.members.remove(&fo).is_some() {
                        r.members.insert(fnew.clone(), new.clone());
                    }
                }
            }
            DirEvent::Joined { nick, room, .. } => {
                let entry = self
                    .rooms
                    .entry(room.to_ascii_lowercase())
                    .or_insert_with(|| Room {
                        name: room.clone(),
                        members: BTreeMap::new(),
                    });
                entry.members.insert(nick.to_ascii_lowercase(), nick.clone());
            }
            DirEvent::Parted { nick, room, .. } => {
                let key = room.to_ascii_lowercase();
                if let Some(r) = self.rooms.get_mut(&key) {
                    r.members.remove(&nick.to_ascii_lowercase());
                    if r.members.is_empty() {
                        self.rooms.remove(&key);
                    }
                }
            }
        }
        true
    }

    /// The node holding a nick (compared case-insensitively).
    pub fn node_of(&self, nick: &str) -> Option<&str> {
        self.nicks
            .get(&nick.to_ascii_lowercase())
            .map(|(_, node)| node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_ignores_the_rest() {
        let p = |s: &str| DirEvent::parse(s.as_bytes());
        assert_eq!(
            p("dir 7 online n1 Alice"),
            Some((
                7,
                DirEvent::Online {
                    node: "n1".into(),
                    nick: "Alice".into()
                }
            ))
        );
        assert_eq!(
            p("dir 8 offline n1 Alice quit"),
            Some((
                8,
                DirEvent::Offline {
                    node: "n1".into(),
                    nick: "Alice".into(),
                    reason: "quit".into()
                }
            ))
        );
        assert!(matches!(
            p("dir 9 joined n1 a #r"),
            Some((9, DirEvent::Joined { .. }))
        ));
        assert!(matches!(
            p("dir 9 down n1 disconnect"),
            Some((9, DirEvent::Down { .. }))
        ));
        assert_eq!(p("dir 9 online n1"), None);
        assert_eq!(p("dir x online n1 a"), None);
        assert_eq!(p("dir 9 future n1 a"), None);
        assert_eq!(p("all {\"type\":\"all\"}"), None);
    }

    #[test]
    fn stale_events_change_nothing() {
        let mut d = Directory {
            version: 5,
            ..Directory::default()
        };
        let online = DirEvent::Online {
            node: "n1".into(),
            nick: "Alice".into(),
        };
        assert!(!d.apply(5, &online));
        assert!(d.nicks.is_empty());
        assert!(d.apply(6, &online));
        assert_eq!(d.node_of("ALICE"), Some("n1"));
        let join = DirEvent::Joined {
            node: "n1".into(),
            nick: "Alice".into(),
            room: "#Rust".into(),
        };
        assert!(d.apply(7, &join));
        let off = DirEvent::Offline {
            node: "n1".into(),
            nick: "Alice".into(),
            reason: "quit".into(),
        };
        assert!(d.apply(8, &off));
        assert!(d.rooms.is_empty() && d.nicks.is_empty());
    }
}
