//! The nick registry: who is registered under which nick (compared
//! case-insensitively), the sorted roster `welcome` and `users` list, and
//! nicks held for clients waiting for the host's approval.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::event::ClientId;
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

    /// Registers `id` as `nick`; returns the client that was registered
    /// under it, if another was (it no longer is).
    pub fn insert(&mut self, id: ClientId, nick: Arc<str>) -> Option<ClientId> {
        let displaced = self
            .by_key
            .insert(message::fold(&nick), id)
            .filter(|&old| old != id);
        self.roster.insert(nick);
        displaced
    }

    /// The session registered as `nick` moved to the connection `id` (a
    /// resume).
    pub fn rekey(&mut self, nick: &str, id: ClientId) {
        if let Some(slot) = self.by_key.get_mut(&message::fold(nick)) {
            *slot = id;
        }
    }

    /// Unregisters `nick`.
    pub fn remove(&mut self, nick: &str) {
        self.by_key.remove(&message::fold(nick));
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

    /// Every registered nick, sorted.
    pub fn roster(&self) -> Vec<&str> {
        self.roster.iter().map(|n| &**n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nick_taken_over_names_the_client_it_was_taken_from() {
        let mut r = Registry::default();
        assert_eq!(r.insert(1, Arc::from("ann")), None);
        assert_eq!(r.insert(2, Arc::from("bob")), None);
        assert_eq!(r.insert(3, Arc::from("ANN")), Some(1));
        assert_eq!(r.find("ann"), Some(3));
        r.rekey("bob", 7);
        assert_eq!(r.find("BOB"), Some(7));
        r.remove("bob");
        assert_eq!(r.find("bob"), None);
    }
}
