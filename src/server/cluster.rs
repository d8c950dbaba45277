//! The cluster's two Redis sockets in the select loop: `LinkSockets` does
//! their I/O for the core's backplane; here they get their slots in the
//! table (kept in step as they close and reconnect, so a descriptor number
//! the kernel reuses is never taken for the wrong thing), their interest
//! (the subscriber read every round, whatever holds clients back: Redis
//! drops a subscriber that falls behind), and their place in the round.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use super::slots::Slot;
use super::Server;
use crate::cluster::{Backplane, BackplaneConfig, LinkSockets, Which};
use crate::config::Config;
use crate::error::{Error, Result};

/// The sockets and the descriptors the slot table holds for them.
#[derive(Debug, Default)]
pub(super) struct RedisSockets {
    sockets: LinkSockets,
    /// The descriptor in the slot table for each link (commands, subscriber).
    fds: [Option<RawFd>; 2],
}

fn index(which: Which) -> usize {
    match which {
        Which::Commands => 0,
        Which::Subscriber => 1,
    }
}

/// The backplane `cfg` asks for, if any (not connected yet: an unreachable
/// Redis does not fail a server's start).
pub(super) fn backplane(cfg: &Config, now: Instant) -> Result<Option<Backplane>> {
    let Some(url) = &cfg.redis_url else {
        return Ok(None);
    };
    let bcfg = BackplaneConfig::new(url.clone(), cfg.cluster_name.clone(), cfg.node_timeout);
    let bp = Backplane::new(bcfg, now).map_err(|e| Error::InvalidConfig(format!("redis_url: {e}")))?;
    log::info!(
        "cluster {}: node {} through Redis at {}",
        cfg.cluster_name,
        bp.node_id(),
        bp.redis_addr()
    );
    Ok(Some(bp))
}

impl Server {
    /// Before `select()`: closes what went down, connects what is due.
    pub(super) fn redis_prepare(&mut self, now: Instant) {
        if let (Some(r), Some(bp)) = (&mut self.redis, self.core.backplane_mut()) {
            r.sockets.prepare(bp, now);
        }
        self.sync_redis_slots();
    }

    /// A Redis socket is ready (readable, or writable).
    pub(super) fn redis_ready(&mut self, which: Which, readable: bool, writable: bool, now: Instant) {
        if let (Some(r), Some(bp)) = (&mut self.redis, self.core.backplane_mut()) {
            r.sockets.ready(bp, which, readable, writable, now);
        }
        self.sync_redis_slots();
    }

    /// After the round queued its relays: writes what waits for Redis,
    /// then applies what that brought.
    pub(super) fn redis_flush(&mut self, now: Instant) {
        if let (Some(r), Some(bp)) = (&mut self.redis, self.core.backplane_mut()) {
            r.sockets.flush(bp, now);
        }
        self.sync_redis_slots();
        self.core.cluster_events(now);
    }

    /// What to watch each Redis socket for: `(fd, read, write)`.
    pub(super) fn redis_interest(&self) -> [Option<(RawFd, bool, bool)>; 2] {
        let mut out = [None, None];
        if let (Some(r), Some(bp)) = (&self.redis, self.core.backplane()) {
            for w in r.sockets.interest(bp) {
                out[index(w.which)] = Some((w.fd, w.read, w.write));
            }
        }
        out
    }

    /// Puts each open Redis socket in the slot table and takes out those
    /// that closed, right after every call that may close or open one.
    fn sync_redis_slots(&mut self) {
        let Some(r) = &mut self.redis else { return };
        let current = Which::BOTH.map(|w| r.sockets.fd(w).map(|fd| fd.as_raw_fd()));
        for which in Which::BOTH {
            let i = index(which);
            if r.fds[i] == current[i] {
                continue;
            }
            if let Some(old) = r.fds[i].take() {
                if matches!(self.slots.get_mut(old), Slot::Redis(w) if *w == which) {
                    self.slots.remove(old);
                }
            }
        }
        for which in Which::BOTH {
            let i = index(which);
            if let (None, Some(fd)) = (r.fds[i], current[i]) {
                self.slots.insert(fd, Slot::Redis(which));
                r.fds[i] = Some(fd);
            }
        }
    }
}
