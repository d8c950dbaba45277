//! The Lua scripts that change a cluster's state in Redis, each one atomic
//! step (check, change, publish), and the names of the cluster's keys and
//! channels. `docs/cluster.md` describes them; the sources are in
//! `src/cluster/scripts/`, each prefixed with `lib.lua`.

/// A Lua script run with `EVALSHA` (loaded on every connection, with
/// `EVAL` as the fallback on `NOSCRIPT`).
#[derive(Debug, PartialEq, Eq)]
pub struct Script {
    /// A short name, for logs and to look the script up.
    pub name: &'static str,
    /// The Lua source.
    pub source: &'static str,
}

macro_rules! script {
    ($(#[$doc:meta])* $const:ident, $name:literal) => {
        $(#[$doc])*
        pub const $const: Script = Script {
            name: $name,
            source: concat!(include_str!("scripts/lib.lua"), include_str!(concat!("scripts/", $name, ".lua"))),
        };
    };
}

script!(
    /// ARGV `prefix node nick` → `{"ok", version}`, `{"taken", node}` or
    /// `{"no_node"}`. Publishes `online`.
    CLAIM, "claim"
);
script!(
    /// ARGV `prefix node nick reason` → `{"ok", version}` or
    /// `{"not_owner"}`. Publishes `parted` for each room, then `offline`.
    RELEASE, "release"
);
script!(
    /// ARGV `prefix node old new` → `{"ok", version}`, `{"taken", node}`,
    /// `{"not_owner"}` or `{"no_node"}`. Publishes `rename`.
    RENAME, "rename"
);
script!(
    /// ARGV `prefix node nick room max_members` → `{"ok", version, joined
    /// (0|1), spelling}`, `{"room_full"}`, `{"not_owner"}` or `{"no_node"}`.
    /// Publishes `joined` when joined is 1.
    JOIN, "join"
);
script!(
    /// ARGV `prefix node nick room` → `{"ok", version}`, `{"not_in_room"}`
    /// or `{"not_owner"}`. Publishes `parted`.
    PART, "part"
);
script!(
    /// ARGV `prefix node ttl_ms` → `{"alive"|"new", now_ms, {reaped
    /// node...}}`. Reaps expired nodes first (this one too); publishes `up`
    /// when the node was not registered.
    HEARTBEAT, "heartbeat"
);
script!(
    /// ARGV `prefix` → `{reaped node...}`. Idempotent; uses Redis `TIME`.
    REAP, "reap"
);
script!(
    /// ARGV `prefix node reason` → the number of nicks freed. A node's
    /// goodbye: like its reaping, with the reason given.
    LEAVE, "leave"
);
script!(
    /// ARGV `prefix` → `{version, {nick, node...}, {room, {nick...}...},
    /// {node, expiry_ms...}, now_ms}`.
    SNAPSHOT, "snapshot"
);

/// Every script, to load on each connection of the command link.
pub const ALL: [&Script; 9] = [
    &CLAIM, &RELEASE, &RENAME, &JOIN, &PART, &HEARTBEAT, &REAP, &LEAVE, &SNAPSHOT,
];

/// The names of one cluster's keys and channels: everything starts with
/// `chat:{NAME}:` (the braces make it a Redis Cluster hash tag, so every
/// key of a cluster lives in one slot and scripts may touch them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

/// Why a cluster or node name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?} must be 1 to 64 of [A-Za-z0-9_.-]")]
pub struct BadName {
    /// "cluster name" or "node id".
    pub what: &'static str,
    /// The name refused.
    pub name: String,
}

/// Whether `name` is 1 to 64 of `[A-Za-z0-9_.-]`: no spaces (event fields
/// are separated by spaces), no braces or colons (key structure).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Names {
    /// The names of cluster `cluster`.
    pub fn new(cluster: &str) -> Result<Names, BadName> {
        if !valid_name(cluster) {
            return Err(BadName {
                what: "cluster name",
                name: cluster.into(),
            });
        }
        Ok(Names {
            prefix: format!("chat:{{{cluster}}}:"),
        })
    }

    /// `chat:{NAME}:`, every script's first argument.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel of broadcasts, directory events and node lifecycle.
    pub fn all_channel(&self) -> String {
        format!("{}all", self.prefix)
    }

    /// The channel of one node: unicast to its users, and its probes.
    pub fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    /// The channel of one room (by folded name), subscribed by the nodes
    /// with local members.
    pub fn room_channel(&self, room: &str) -> String {
        format!("{}room:{}", self.prefix, room.to_ascii_lowercase())
    }

    /// A key of the cluster (`nicks`, `nodes`, `rooms`, `version`,
    /// `node:ID:nicks`, `member:NICK`, `room:ROOM`).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_cluster_as_a_hash_tag() {
        let n = Names::new("prod-1").unwrap();
        assert_eq!(n.prefix(), "chat:{prod-1}:");
        assert_eq!(n.all_channel(), "chat:{prod-1}:all");
        assert_eq!(n.node_channel("a1"), "chat:{prod-1}:node:a1");
        assert_eq!(n.room_channel("#Rust"), "chat:{prod-1}:room:#rust");
        assert!(Names::new("a b").is_err());
        assert!(Names::new("").is_err());
        assert!(Names::new("x}").is_err());
    }

    #[test]
    fn every_script_carries_the_library() {
        for s in ALL {
            assert!(s.source.starts_with("-- Shared by every script"), "{}", s.name);
            assert!(s.source.contains(&format!("-- {}:", s.name)), "{}", s.name);
        }
    }
}
