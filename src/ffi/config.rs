//! `ChatConfig`, the settings a C host fills, and its conversion to a
//! [`Config`]. The struct is read only as far as the host's `struct_size`
//! reaches, so a host built against an older, shorter struct keeps
//! working; fields appended in 1.2 are read in `config/v12.rs`.

use std::ffi::{c_char, CStr};
use std::mem::{offset_of, size_of};
use std::net::SocketAddr;
use std::ptr::{self, NonNull};
use std::time::Duration;

use super::args;
use super::error::{ErrorCode, Failure};
use crate::Config;

/// A server's settings. Fill it with `chat_config_default`, then change what
/// you need. Fields past `struct_size` take their defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ChatConfig {
    /// `sizeof(ChatConfig)` as the host knows it: later versions append
    /// fields, and the library reads only what this covers. It must cover
    /// at least `listen_addr`.
    pub struct_size: u32,
    /// `"IP:port"`, e.g. `"127.0.0.1:7878"`; port 0 picks any free port
    /// (see `chat_server_port`). Must not be NULL. Read only during
    /// `chat_server_new`.
    pub listen_addr: *const c_char,
    /// Most clients connected at once; one more gets `server_full`.
    /// Default: `FD_SETSIZE` less a margin (1008 on Linux).
    pub max_clients: u32,
    /// Largest frame payload, from a client or the host. Default 65536.
    pub max_frame_bytes: u32,
    /// Most bytes queued for one client before it is dropped as
    /// `slow_consumer`. Default 1 MiB.
    pub max_queue_bytes: u64,
    /// A client silent this long is dropped as `timeout`; 0: never.
    /// Default 0.
    pub idle_timeout_ms: u32,
    /// Most events waiting for the host; when reached, the server stops
    /// reading sockets until the host takes events (backpressure, no loss).
    /// Default 65536.
    pub max_events: u32,
    /// A connection that has not completed `hello` this long after it was
    /// accepted is dropped as `timeout`; 0: never. Default 30000.
    pub handshake_timeout_ms: u32,
    /// Most connections from one IP address; one more gets `server_full`.
    /// 0: no limit. Default 0.
    pub max_per_ip: u32,
    /// Flood control: most frames per second one client may send (bursts of
    /// up to a second's worth); over it, the client gets `rate_limited` and
    /// is not read until it is back under. 0: no limit. Default 0.
    pub rate_limit_frames: u32,
    /// A client that stays over a rate limit longer than this is dropped as
    /// `protocol_error`. Default 10000.
    pub rate_limit_grace_ms: u32,
    /// Flood control on bytes per second, like `rate_limit_frames`. 0: no
    /// limit. Default 0.
    pub rate_limit_bytes: u64,
    /// Most rooms one client may be in; past it, `join` gets
    /// `too_many_rooms`. Default 32.
    pub max_rooms_per_client: u32,
    /// Most members in one room; past it, `join` gets `room_full`. Default
    /// 1024.
    pub max_members_per_room: u32,
    /// Most rooms on the server; past it, `join` of a new room gets
    /// `server_room_limit`. Default 1024.
    pub max_rooms: u32,
    /// 1: each valid `hello` becomes a `CHAT_EVENT_APPROVAL` and the client
    /// waits for `chat_approve` or `chat_reject`; 0: clients register at
    /// once. Other values are `CHAT_ERR_CONFIG`. Default 0.
    pub approve_registrations: u32,
    /// With `approve_registrations`: a `hello` the host has not answered
    /// this long is rejected (`"the host did not answer in time"`). Must not
    /// be 0. Default 10000.
    pub approval_timeout_ms: u32,
    /// 1: `msg`, `all` and `room` frames become `CHAT_EVENT_INTERCEPTED`
    /// and wait for `chat_release` or `chat_drop`; 0: the library routes
    /// them at once. Other values are `CHAT_ERR_CONFIG`. Default 0.
    pub intercept_messages: u32,
    /// TLS on the TCP listener (and `wss://` on the WebSocket one): the
    /// certificate chain, PEM, leaf first. PEM bytes, never a path: the host
    /// reads its files. With `tls_key_pem`: both or neither. NULL: plain TCP.
    /// Read only during `chat_server_new`.
    pub tls_cert_pem: *const u8,
    /// Bytes at `tls_cert_pem`.
    pub tls_cert_len: usize,
    /// The private key of the chain's first certificate, PEM (PKCS#8, SEC1
    /// or RSA, unencrypted). A bad certificate or key, or a key that does
    /// not match, fails `chat_server_new` with `CHAT_ERR_TLS`.
    pub tls_key_pem: *const u8,
    /// Bytes at `tls_key_pem`.
    pub tls_key_len: usize,
    /// A second listener for WebSocket clients (RFC 6455), `"IP:port"`; it
    /// also serves the web client page at `/`. NULL: none.
    pub ws_listen_addr: *const c_char,
    /// The path WebSocket upgrades are accepted on. NULL: `"/chat"`.
    pub ws_path: *const c_char,
    /// Origins a browser may open a WebSocket from, comma-separated
    /// (`"https://chat.example.com,http://localhost:8080"`); others get 403.
    /// NULL: any.
    pub ws_allowed_origins: *const c_char,
    /// Join a cluster through this Redis: `"redis://[user:pass@]host:port/db"`.
    /// NULL: one node, no Redis. An unreachable Redis does not fail
    /// `chat_server_new`: the server joins the cluster when Redis answers.
    pub redis_url: *const c_char,
    /// The cluster's name, the prefix of its Redis keys and channels. NULL:
    /// `"chat"`.
    pub cluster_name: *const c_char,
    /// A node silent this long is dead: its users are shown offline and
    /// their nicks freed. 0: 10000.
    pub node_timeout_ms: u32,
    /// 1: SO_REUSEPORT on the listeners, so several processes listen on one
    /// address. 0: off. Other values are `CHAT_ERR_CONFIG`.
    pub reuse_port: u8,
    /// How long a resumable session that lost its connection stays parked
    /// for a resume. 0: 30000.
    pub resume_window_ms: u32,
    /// Bytes of written frames kept per resumable session, so a resume after
    /// a blip loses nothing. 0: 262144.
    pub resume_retain_bytes: u64,
}

/// What `chat_config_default` puts in `listen_addr`; a unit test checks it
/// is `Config::default()`'s address.
pub(super) const DEFAULT_LISTEN_ADDR: &CStr = c"127.0.0.1:7878";

pub(super) const CONFIG_MIN_SIZE: usize = offset_of!(ChatConfig, listen_addr) + size_of::<*const c_char>();

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn millis_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The defaults, as `chat_config_default` writes them.
pub fn default_config() -> ChatConfig {
    let d = Config::default();
    ChatConfig {
        struct_size: size_of::<ChatConfig>() as u32,
        listen_addr: DEFAULT_LISTEN_ADDR.as_ptr(),
        max_clients: saturate_u32(d.max_clients),
        max_frame_bytes: saturate_u32(d.max_frame_bytes),
        max_queue_bytes: d.max_queue_bytes as u64,
        idle_timeout_ms: d.idle_timeout.map_or(0, millis_u32),
        max_events: saturate_u32(d.max_events),
        handshake_timeout_ms: d.handshake_timeout.map_or(0, millis_u32),
        max_per_ip: d.max_per_ip.map_or(0, saturate_u32),
        rate_limit_frames: d
            .rate_limit_frames
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        rate_limit_grace_ms: millis_u32(d.rate_limit_grace),
        rate_limit_bytes: d.rate_limit_bytes.unwrap_or(0),
        max_rooms_per_client: saturate_u32(d.max_rooms_per_client),
        max_members_per_room: saturate_u32(d.max_members_per_room),
        max_rooms: saturate_u32(d.max_rooms),
        approve_registrations: u32::from(d.approve_registrations),
        approval_timeout_ms: millis_u32(d.approval_timeout),
        intercept_messages: u32::from(d.intercept_messages),
        tls_cert_pem: ptr::null(),
        tls_cert_len: 0,
        tls_key_pem: ptr::null(),
        tls_key_len: 0,
        ws_listen_addr: ptr::null(),
        ws_path: ptr::null(),
        ws_allowed_origins: ptr::null(),
        redis_url: ptr::null(),
        cluster_name: ptr::null(),
        node_timeout_ms: millis_u32(d.node_timeout),
        reuse_port: u8::from(d.reuse_port),
        resume_window_ms: millis_u32(d.resume_window),
        resume_retain_bytes: d.resume_retain_bytes as u64,
    }
}

/// A C flag: only 0 and 1, so that a stray value is caught, not guessed.
pub(super) fn flag(n: u32, what: &str) -> Result<bool, Failure> {
    match n {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Failure::new(
            ErrorCode::Config,
            format!("{what} is {n}, not 0 or 1"),
        )),
    }
}

/// Milliseconds where 0 means "never".
fn optional_millis(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms.into()))
}

/// Reads one field of the host's struct if its `struct_size` covers it.
macro_rules! field_if_covered {
    ($ptr:expr, $size:expr, $field:ident : $ty:ty) => {
        if offset_of!(ChatConfig, $field) + size_of::<$ty>() <= $size {
            // SAFETY: the host's struct_size says its struct reaches past
            // this field, and `$ptr` points to that struct (caller of
            // read_config).
            Some(unsafe { (&raw const (*$ptr).$field).read() })
        } else {
            None
        }
    };
}

/// Turns a host's `ChatConfig` into a [`Config`], reading only the fields
/// its `struct_size` covers.
///
/// # Safety
/// `cfg` points to a readable struct of at least `cfg->struct_size` bytes
/// (and at least the `struct_size` field), whose `listen_addr`, if
/// covered, is NULL or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn read_config(cfg: NonNull<ChatConfig>) -> Result<Config, Failure> {
    let cfg = cfg.as_ptr();
    // SAFETY: every version of the struct starts with struct_size.
    let size = unsafe { (&raw const (*cfg).struct_size).read() } as usize;
    if size < CONFIG_MIN_SIZE {
        return Err(Failure::new(
            ErrorCode::Invalid,
            format!("config struct_size {size} does not cover listen_addr ({CONFIG_MIN_SIZE} bytes)"),
        ));
    }
    let mut out = Config::default();
    if let Some(addr) = field_if_covered!(cfg, size, listen_addr: *const c_char) {
        // SAFETY: listen_addr is NULL or a NUL-terminated string (caller).
        let text = unsafe { args::utf8(addr, "config listen_addr") }?;
        out.listen_addr = text
            .parse::<SocketAddr>()
            .map_err(|_| Failure::new(ErrorCode::Addr, format!("listen_addr {text:?} is not IP:port")))?;
    }
    if let Some(n) = field_if_covered!(cfg, size, max_clients: u32) {
        out.max_clients = n as usize;
    }
    if let Some(n) = field_if_covered!(cfg, size, max_frame_bytes: u32) {
        out.max_frame_bytes = n as usize;
    }
    if let Some(n) = field_if_covered!(cfg, size, max_queue_bytes: u64) {
        out.max_queue_bytes = usize::try_from(n).map_err(|_| {
            Failure::new(
                ErrorCode::Config,
                format!("max_queue_bytes {n} does not fit in this platform's size_t"),
            )
        })?;
    }
    if let Some(ms) = field_if_covered!(cfg, size, idle_timeout_ms: u32) {
        out.idle_timeout = (ms > 0).then(|| Duration::from_millis(ms.into()));
    }
    if let Some(n) = field_if_covered!(cfg, size, max_events: u32) {
        out.max_events = n as usize;
    }
    // SAFETY: `cfg` points to `size` readable bytes (caller).
    unsafe { read_limits(cfg, size, &mut out) };
    // SAFETY: as above.
    unsafe { read_authority(cfg, size, &mut out) }?;
    // SAFETY: as above; its pointers are NULL or valid (caller).
    unsafe { v12::read(cfg, size, &mut out) }?;
    Ok(out)
}

/// The connection and flood limits (appended after `max_events`).
///
/// # Safety
/// `cfg` points to a readable `ChatConfig` of at least `size` bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
unsafe fn read_limits(cfg: *const ChatConfig, size: usize, out: &mut Config) {
    if let Some(ms) = field_if_covered!(cfg, size, handshake_timeout_ms: u32) {
        out.handshake_timeout = optional_millis(ms);
    }
    if let Some(n) = field_if_covered!(cfg, size, max_per_ip: u32) {
        out.max_per_ip = (n > 0).then_some(n as usize);
    }
    if let Some(n) = field_if_covered!(cfg, size, rate_limit_frames: u32) {
        out.rate_limit_frames = (n > 0).then_some(u64::from(n));
    }
    if let Some(ms) = field_if_covered!(cfg, size, rate_limit_grace_ms: u32) {
        out.rate_limit_grace = Duration::from_millis(ms.into());
    }
    if let Some(n) = field_if_covered!(cfg, size, rate_limit_bytes: u64) {
        out.rate_limit_bytes = (n > 0).then_some(n);
    }
}

/// The room limits and host authority (appended after `rate_limit_bytes`).
///
/// # Safety
/// `cfg` points to a readable `ChatConfig` of at least `size` bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
unsafe fn read_authority(cfg: *const ChatConfig, size: usize, out: &mut Config) -> Result<(), Failure> {
    if let Some(n) = field_if_covered!(cfg, size, max_rooms_per_client: u32) {
        out.max_rooms_per_client = n as usize;
    }
    if let Some(n) = field_if_covered!(cfg, size, max_members_per_room: u32) {
        out.max_members_per_room = n as usize;
    }
    if let Some(n) = field_if_covered!(cfg, size, max_rooms: u32) {
        out.max_rooms = n as usize;
    }
    if let Some(n) = field_if_covered!(cfg, size, approve_registrations: u32) {
        out.approve_registrations = flag(n, "approve_registrations")?;
    }
    if let Some(ms) = field_if_covered!(cfg, size, approval_timeout_ms: u32) {
        // 0 would reject every hello before the host could see it.
        out.approval_timeout = optional_millis(ms)
            .ok_or_else(|| Failure::new(ErrorCode::Config, "approval_timeout_ms must not be 0"))?;
    }
    if let Some(n) = field_if_covered!(cfg, size, intercept_messages: u32) {
        out.intercept_messages = flag(n, "intercept_messages")?;
    }
    Ok(())
}

// After the macro, so that it is in scope there.
mod v12;
