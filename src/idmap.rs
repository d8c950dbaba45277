//! A hash map keyed by client id with a hasher that costs one multiply.
//! Ids are sequential integers chosen by the server, not by peers, so
//! there is nothing to defend against and SipHash's cost (paid on every
//! delivery) buys nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::event::ClientId;

/// `HashMap<ClientId, V>` with [`IdHasher`].
pub type IdMap<V> = HashMap<ClientId, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of a `u64` key.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for ids; fold anything else in anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m: IdMap<u32> = IdMap::default();
        for id in 1..=10_000u64 {
            m.insert(id, id as u32);
        }
        assert_eq!(m.len(), 10_000);
        assert!((1..=10_000u64).all(|id| m[&id] == id as u32));
        m.remove(&5);
        assert!(!m.contains_key(&5));
    }
}
