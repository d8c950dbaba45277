//! Limits and settings of one server, in one place.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::cluster::RedisUrl;
use crate::error::{Error, Result};

/// `FD_SETSIZE` on this platform: `select()` cannot watch a descriptor at or
/// above it.
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// Descriptors kept free below `FD_SETSIZE` for the listeners, the wakeup
/// pipe, stdio and whatever else the host holds: the default `max_clients`
/// is `FD_SETSIZE - FD_MARGIN`, the most a select() loop can serve.
pub const FD_MARGIN: usize = 16;

/// The settings of a [`Server`](crate::Server). Start from `Config::default()`
/// and change what you need.
///
/// ```
/// let cfg = chat::Config {
///     listen_addr: "127.0.0.1:0".parse().unwrap(),
///     max_clients: 100,
///     ..chat::Config::default()
/// };
/// assert_eq!(cfg.max_frame_bytes, 65536);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see
    /// [`Server::local_addr`](crate::Server::local_addr)). Default
    /// `127.0.0.1:7878`.
    pub listen_addr: SocketAddr,
    /// Most clients connected at once; one more gets `server_full`.
    /// Default: `FD_SETSIZE` less a margin of 16 (1008 on Linux).
    pub max_clients: usize,
    /// Largest frame payload accepted from a client or the host. Default 65536.
    pub max_frame_bytes: usize,
    /// Most bytes queued for one client; a client that would pass it is
    /// disconnected as `slow_consumer`. Default 1 MiB.
    pub max_queue_bytes: usize,
    /// A client silent for this long is dropped as `timeout`; after half of
    /// it the server sends a `ping`. Default: none.
    pub idle_timeout: Option<Duration>,
    /// A connection that has not completed `hello` within this is dropped as
    /// `timeout`. Default 30 s.
    pub handshake_timeout: Option<Duration>,
    /// Most events waiting for the host; when reached, the server stops
    /// reading sockets until the host takes events (backpressure, no loss).
    /// Default 65536.
    pub max_events: usize,
    /// How long a connection being closed (after `quit`, an error, a kick)
    /// may take to flush what is queued for it. Default 5 s.
    pub close_linger: Duration,
    /// Most bytes read from one client in one round, so that one busy client
    /// cannot starve the others; also the size of the read buffer (up to
    /// 1 MiB), so a client's budget is one `recv` in the common case.
    /// Default 128 KiB (docs/performance.md: larger rounds free more frames
    /// at once, which the allocator hands back to the kernel and faults in
    /// again).
    pub read_budget: usize,
    /// Flood control: most frames per second one client may send (bursts
    /// of up to one second's worth). Over it, the client gets
    /// `rate_limited` and is not read until tokens return. Default: none.
    pub rate_limit_frames: Option<u64>,
    /// Flood control on bytes per second, like `rate_limit_frames`.
    /// Default: none.
    pub rate_limit_bytes: Option<u64>,
    /// A client that stays over its rate limit (no calm second in between)
    /// for longer than this is dropped as `protocol_error`. Default 10 s.
    pub rate_limit_grace: Duration,
    /// Most connections from one IP address; one more gets `server_full`.
    /// Default: none (loopback tests and users behind one NAT share an
    /// address).
    pub max_per_ip: Option<usize>,
    /// Most rooms one client may be in; past it, `join` gets
    /// `too_many_rooms`. Default 32.
    pub max_rooms_per_client: usize,
    /// Most members in one room; past it, `join` gets `room_full`.
    /// Default 1024.
    pub max_members_per_room: usize,
    /// Most rooms on the server; past it, `join` of a new room gets
    /// `server_room_limit`. Default 1024.
    pub max_rooms: usize,
    /// Each valid `hello` waits for the host's `approve` or `reject`
    /// (event `ApprovalRequested`). Default: off.
    pub approve_registrations: bool,
    /// A `hello` the host has not answered within this is rejected.
    /// Default 10 s.
    pub approval_timeout: Duration,
    /// `msg`, `all` and `room` frames wait for the host's `release` or
    /// `drop_held` (event `Intercepted`) instead of being routed at once.
    /// Default: off.
    pub intercept_messages: bool,
    /// TLS on the TCP listener (and `wss://` on the WebSocket one): it then
    /// speaks TLS 1.2 or 1.3 only. Default: none (plain TCP).
    pub tls: Option<TlsPem>,
    /// A second listener, for WebSocket clients (RFC 6455), which also
    /// serves the web client page at `/`. Default: none.
    pub ws_listen_addr: Option<SocketAddr>,
    /// The path WebSocket upgrades are accepted on. Default `/chat`.
    pub ws_path: String,
    /// Origins a browser may open a WebSocket from (`https://chat.example`,
    /// compared exactly); others get 403. Default: any.
    pub ws_allowed_origins: Option<Vec<String>>,
    /// Join a cluster of servers through this Redis. Default: none (one
    /// node). An unreachable Redis does not fail [`Server::new`](crate::Server::new).
    pub redis_url: Option<RedisUrl>,
    /// The cluster's name: the prefix of its Redis keys and channels.
    /// Default `chat`.
    pub cluster_name: String,
    /// A node of the cluster silent this long is dead: its users are shown
    /// offline and their nicks freed. Default 10 s.
    pub node_timeout: Duration,
    /// SO_REUSEPORT on the listeners, so several processes listen on one
    /// address (the kernel spreads connections). Default: off.
    pub reuse_port: bool,
    /// How long a resumable session that lost its connection stays parked,
    /// waiting for a resume. Default 30 s.
    pub resume_window: Duration,
    /// Bytes of written frames kept per resumable session, so that a
    /// resume after a blip loses nothing. Default 256 KiB.
    pub resume_retain_bytes: usize,
}

/// A certificate chain and its private key, PEM, for TLS. Its `Debug` shows
/// sizes only: the key never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPem {
    /// The certificate chain, leaf first.
    pub cert_chain: Vec<u8>,
    /// The leaf's private key: PKCS#8, SEC1 or RSA, unencrypted.
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("cert_chain", &format_args!("{} bytes", self.cert_chain.len()))
            .field("private_key", &format_args!("{} bytes", self.private_key.len()))
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 7878)),
            max_clients: FD_SETSIZE - FD_MARGIN,
            max_frame_bytes: 65536,
            max_queue_bytes: 1 << 20,
            idle_timeout: None,
            handshake_timeout: Some(Duration::from_secs(30)),
            max_events: 65536,
            close_linger: Duration::from_secs(5),
            read_budget: 128 * 1024,
            rate_limit_frames: None,
            rate_limit_bytes: None,
            rate_limit_grace: Duration::from_secs(10),
            max_per_ip: None,
            max_rooms_per_client: 32,
            max_members_per_room: 1024,
            max_rooms: 1024,
            approve_registrations: false,
            approval_timeout: Duration::from_secs(10),
            intercept_messages: false,
            tls: None,
            ws_listen_addr: None,
            ws_path: "/chat".to_string(),
            ws_allowed_origins: None,
            redis_url: None,
            cluster_name: "chat".to_string(),
            node_timeout: Duration::from_secs(10),
            reuse_port: false,
            resume_window: Duration::from_secs(30),
            resume_retain_bytes: 256 * 1024,
        }
    }
}

impl Config {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidConfig(what.to_string()));
        if self.max_clients == 0 {
            return bad("max_clients must be at least 1");
        }
        if self.max_frame_bytes < 64 || self.max_frame_bytes > u32::MAX as usize {
            return bad("max_frame_bytes must be between 64 and 2^32-1");
        }
        if self.max_queue_bytes < self.max_frame_bytes + crate::FRAME_OVERHEAD {
            return bad("max_queue_bytes must hold at least one frame of max_frame_bytes");
        }
        if self.max_events == 0 {
            return bad("max_events must be at least 1");
        }
        if self.read_budget == 0 {
            return bad("read_budget must be at least 1");
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return bad("idle_timeout must be positive; leave it unset for no idle timeout");
        }
        if self.rate_limit_frames == Some(0) || self.rate_limit_bytes == Some(0) {
            return bad("rate limits must be positive; leave them unset for no limit");
        }
        if self.approval_timeout.is_zero() {
            return bad("approval_timeout must be positive: zero would reject every hello");
        }
        if self.max_per_ip == Some(0) {
            return bad("max_per_ip must be at least 1; leave it unset for no limit");
        }
        if !self.ws_path.starts_with('/') || self.ws_path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return bad("ws_path must start with '/' and hold no spaces or control characters");
        }
        if !crate::cluster::valid_name(&self.cluster_name) {
            return bad("cluster_name must be 1 to 64 of A-Z a-z 0-9 _ . -");
        }
        if self.node_timeout < Duration::from_millis(100) {
            return bad("node_timeout must be at least 100 ms");
        }
        if self.resume_window.is_zero() || self.resume_retain_bytes == 0 {
            return bad("resume_window and resume_retain_bytes must be positive");
        }
        if self.handshake_timeout == Some(Duration::ZERO) {
            return bad("handshake_timeout must be positive; leave it unset for no handshake timeout");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_the_protocol() {
        let cfg = Config::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.max_frame_bytes, 65536);
        assert_eq!(cfg.max_queue_bytes, 1 << 20);
        assert!(cfg.max_clients < FD_SETSIZE);
    }

    #[test]
    fn rejects_unusable_limits() {
        for cfg in [
            Config {
                max_clients: 0,
                ..Config::default()
            },
            Config {
                max_frame_bytes: 0,
                ..Config::default()
            },
            Config {
                max_queue_bytes: 10,
                ..Config::default()
            },
            Config {
                max_events: 0,
                ..Config::default()
            },
            Config {
                idle_timeout: Some(Duration::ZERO),
                ..Config::default()
            },
            Config {
                approval_timeout: Duration::ZERO,
                ..Config::default()
            },
        ] {
            assert!(matches!(cfg.validate(), Err(Error::InvalidConfig(_))));
        }
    }
}
