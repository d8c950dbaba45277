//! The nick registry: who is registered under which nick (compared
//! case-insensitively), the sorted roster `welcome` and `users` list, and
//! nicks held for clients waiting for the host's approval.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::event::ClientId;
use crate::idmap::IdMap;
use crate::message;

/// Registered and reserved nicks.
#[derive(Debug, Default)]
pub(super) struct Registry {
    /// Registered clients by case-folded nick.
    by_key: HashMap<String, ClientId>,
    /// Registered nicks as written, sorted.
    roster: BTreeSet<Arc<str>>,
    /// Nicks held by clients waiting for the host's approval.
    reserved: HashMap<String, ClientId>,
    /// Registered clients in a dense array, what a broadcast walks: a hash
    /// map's iteration cost a tenth of a fan-out's user-space instructions.
    ids: Vec<ClientId>,
    /// Where each registered client is in `ids`.
    slot: IdMap<usize>,
}

impl Registry {
    /// Whether `key` (a folded nick) is registered or reserved.
    pub fn is_taken(&self, key: &str) -> bool {
        self.by_key.contains_key(key) || self.reserved.contains_key(key)
    }

    /// The registered client with this nick, any case. On the hot path of
    /// every `msg`: the lookup folds on the stack.
    pub fn find(&self, nick: &str) -> Option<ClientId> {
        let mut buf = [0u8; 64];
        self.by_key.get(&*message::fold_in(nick, &mut buf)).copied()
    }

    /// Registers `id` as `nick`.
    pub fn insert(&mut self, id: ClientId, nick: Arc<str>) {
        if let Some(old) = self.by_key.insert(message::fold(&nick), id) {
            self.forget_id(old);
        }
        self.roster.insert(nick);
        self.slot.insert(id, self.ids.len());
        self.ids.push(id);
    }

    /// Takes `id` out of the dense array.
    fn forget_id(&mut self, id: ClientId) {
        let Some(at) = self.slot.remove(&id) else {
            return;
        };
        self.ids.swap_remove(at);
        if let Some(&moved) = self.ids.get(at) {
            self.slot.insert(moved, at);
        }
    }

    /// The session registered as `nick` moved to the connection `id` (a
    /// resume).
    pub fn rekey(&mut self, nick: &str, id: ClientId) {
        if let Some(slot) = self.by_key.get_mut(&message::fold(nick)) {
            let old = std::mem::replace(slot, id);
            if let Some(at) = self.slot.remove(&old) {
                self.ids[at] = id;
                self.slot.insert(id, at);
            }
        }
    }

    /// Unregisters `nick`.
    pub fn remove(&mut self, nick: &str) {
        if let Some(id) = self.by_key.remove(&message::fold(nick)) {
            self.forget_id(id);
        }
        self.roster.remove(nick);
    }

    /// Holds `key` for `id` while the host decides.
    pub fn reserve(&mut self, key: String, id: ClientId) {
        self.reserved.insert(key, id);
    }

    /// Releases a reservation.
    pub fn unreserve(&mut self, nick: &str) {
        self.reserved.remove(&message::fold(nick));
    }

    /// Every registered client.
    pub fn ids(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.ids.iter().copied()
    }

    /// Every registered nick, sorted.
    pub fn roster(&self) -> Vec<&str> {
        self.roster.iter().map(|n| &**n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &Registry) -> Vec<ClientId> {
        let mut v: Vec<_> = r.ids().collect();
        v.sort();
        v
    }

    #[test]
    fn the_dense_array_follows_every_change() {
        let mut r = Registry::default();
        for (id, nick) in [(1, "ann"), (2, "bob"), (3, "cy"), (4, "dee")] {
            r.insert(id, Arc::from(nick));
        }
        r.remove("Ann");
        assert_eq!(ids(&r), [2, 3, 4]);
        r.rekey("cy", 7);
        assert_eq!(ids(&r), [2, 4, 7]);
        assert_eq!(r.find("CY"), Some(7));
        r.remove("dee");
        r.remove("cy");
        assert_eq!(ids(&r), [2]);
        r.remove("nobody");
        r.insert(9, Arc::from("bob"));
        assert_eq!(ids(&r), [9], "a nick taken over leaves one entry");
        r.remove("bob");
        assert!(ids(&r).is_empty());
        assert!(r.slot.is_empty());
    }
}
