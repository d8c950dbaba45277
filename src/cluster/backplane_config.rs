//! What a [`Backplane`](super::backplane::Backplane) is told when it is
//! made, the timings it derives from `node_timeout`, and this process's
//! node id.

use std::time::Duration;

use super::link_config::{LinkConfig, Probe, Role};
use super::scripts::{self, valid_name, Names};
use super::url::RedisUrl;

/// A node's settings. [`BackplaneConfig::new`] derives every timing from
/// `node_timeout`; change them after if you must.
#[derive(Debug, Clone)]
pub struct BackplaneConfig {
    /// Where Redis is.
    pub url: RedisUrl,
    /// The cluster's name: every key and channel starts with
    /// `chat:{NAME}:`.
    pub cluster: String,
    /// This node's id (1 to 64 of `[A-Za-z0-9_.-]`, unique in the cluster
    /// for the life of the process). `None`: `HOST-PID-RANDOM`, see
    /// [`node_id`].
    pub node_id: Option<String>,
    /// A node silent this long is dead: its users are shown offline and
    /// its nicks freed. Heartbeats go every third of it, with it as their
    /// expiry.
    pub node_timeout: Duration,
    /// Every Redis reply is due this long after its command (a third of
    /// `node_timeout`, at most 3 s): a stopped Redis or a black hole is
    /// found within `ping_interval + reply_timeout`, less than
    /// `node_timeout`.
    pub reply_timeout: Duration,
    /// An idle link pings after this long without a byte (a third of
    /// `node_timeout`, at most 1 s).
    pub ping_interval: Duration,
    /// Until a TCP connect must be up (as `reply_timeout`).
    pub connect_timeout: Duration,
    /// The first reconnect delay (50 ms, doubling, jittered).
    pub backoff_min: Duration,
    /// The longest reconnect delay (a third of `node_timeout`, at most
    /// 2 s), so a node is back well within `node_timeout` once Redis is.
    pub backoff_max: Duration,
    /// Most bytes of commands (scripts and relayed frames) waiting for
    /// Redis; a relay past it is refused at once (default 8 MiB).
    pub max_pending_bytes: usize,
    /// Longest a command waits for Redis to come back before it is dropped
    /// (`node_timeout`, at most 5 s).
    pub max_pending_age: Duration,
    /// Most bytes of relayed frames held while the directory's snapshot is
    /// read (so they follow the presence it brings); past it they are
    /// dropped and counted (default 8 MiB).
    pub max_held_bytes: usize,
}

impl BackplaneConfig {
    /// Settings for a node of cluster `cluster` on Redis `url`, every
    /// timing derived from `node_timeout`.
    pub fn new(url: RedisUrl, cluster: impl Into<String>, node_timeout: Duration) -> BackplaneConfig {
        let third = node_timeout / 3;
        BackplaneConfig {
            url,
            cluster: cluster.into(),
            node_id: None,
            node_timeout,
            reply_timeout: third.min(Duration::from_secs(3)),
            ping_interval: third.min(Duration::from_secs(1)),
            connect_timeout: third.min(Duration::from_secs(3)),
            backoff_min: Duration::from_millis(50).min(third),
            backoff_max: third.min(Duration::from_secs(2)),
            max_pending_bytes: 8 << 20,
            max_pending_age: node_timeout.min(Duration::from_secs(5)),
            max_held_bytes: 8 << 20,
        }
    }

    /// The heartbeat period: a third of `node_timeout`.
    pub fn heartbeat_period(&self) -> Duration {
        self.node_timeout / 3
    }

    /// The two links' settings for node `node` of `names`.
    pub(super) fn links(&self, node: &str, names: &Names, seed: u64) -> (LinkConfig, LinkConfig) {
        let link = |role, suffix: &str, seed: u64| {
            let mut c = LinkConfig::new(self.url.clone(), role, format!("chat-{node}-{suffix}"));
            c.connect_timeout = self.connect_timeout;
            c.reply_timeout = self.reply_timeout;
            c.ping_interval = self.ping_interval;
            c.backoff_min = self.backoff_min;
            c.backoff_max = self.backoff_max;
            c.max_pending_bytes = self.max_pending_bytes;
            c.max_pending_age = self.max_pending_age;
            c.seed = seed;
            c
        };
        let mut cmd = link(Role::Commands, "cmd", seed);
        cmd.scripts = scripts::ALL.to_vec();
        let mut sub = link(Role::Subscriber, "sub", seed.rotate_left(17) ^ 0x5bd1_e995);
        sub.probe = Some(Probe {
            channel: names.node_channel(node).into_bytes(),
            prefix: b"probe".to_vec(),
        });
        (cmd, sub)
    }
}

/// A node id for this process: `HOST-PID-RANDOM` (the host name with
/// anything outside `[A-Za-z0-9_.-]` turned into `-` and cut to 40
/// characters, the pid, 32 random bits in hex), so two processes never
/// share one, even on one machine, even across a restart that reuses the
/// pid. Always passes [`valid_name`].
pub fn node_id() -> String {
    let host: String = crate::sys::hostname()
        .unwrap_or_else(|| "node".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let id = format!("{host}-{}-{:08x}", std::process::id(), random_u64() as u32);
    debug_assert!(valid_name(&id), "{id}");
    id
}

/// 64 random bits: the kernel's, or (if that fails) the time and pid mixed.
pub(super) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if crate::sys::random_bytes(&mut b).is_ok() {
        return u64::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_valid_names_and_differ() {
        let (a, b) = (node_id(), node_id());
        assert!(valid_name(&a) && valid_name(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn timings_come_from_node_timeout() {
        let url: RedisUrl = "redis://127.0.0.1:6379".parse().unwrap();
        let c = BackplaneConfig::new(url.clone(), "c", Duration::from_secs(10));
        assert_eq!(
            (c.reply_timeout, c.ping_interval, c.backoff_max, c.max_pending_age),
            (
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(5)
            )
        );
        let c = BackplaneConfig::new(url, "c", Duration::from_millis(600));
        assert!(c.ping_interval + c.reply_timeout < c.node_timeout);
        assert_eq!(c.heartbeat_period(), Duration::from_millis(200));
    }
}
