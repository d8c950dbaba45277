//! The plain structs a C host fills or reads (`ChatConfig`, `ChatPollFd`,
//! `ChatStats`) and their conversions. Structs with a `struct_size` are
//! read and written only as far as the host's `struct_size` reaches, so a
//! host built against an older, shorter struct keeps working.

use std::ffi::{c_char, c_int, CStr};
use std::mem::{offset_of, size_of};
use std::net::SocketAddr;
use std::ptr::NonNull;
use std::time::Duration;

use super::args;
use super::error::{ErrorCode, Failure};
use crate::{Config, Reason, Stats, WatchFd};

/// `ChatPollFd.events` bit: watch the descriptor for reading (`POLLIN`).
pub const CHAT_POLL_READ: i16 = 1;
/// `ChatPollFd.events` bit: watch the descriptor for writing (`POLLOUT`).
pub const CHAT_POLL_WRITE: i16 = 2;

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
}

/// One descriptor a host with its own loop should watch (`chat_server_fds`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatPollFd {
    /// The descriptor.
    pub fd: c_int,
    /// `CHAT_POLL_READ`, `CHAT_POLL_WRITE`, or both.
    pub events: i16,
}

/// The server's counters (`chat_server_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Set by the host to `sizeof(ChatStats)`; the library writes only the
    /// fields this covers, and never this one. Must cover `clients`.
    pub struct_size: u32,
    /// Connections open now (registered or not, closing ones included).
    pub clients: u64,
    /// Clients registered with a nick now.
    pub registered: u64,
    /// Connections accepted since the server started.
    pub accepted: u64,
    /// Connections refused with `server_full`.
    pub refused: u64,
    /// Frames received from clients.
    pub frames_in: u64,
    /// Frames completely written to clients.
    pub frames_out: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Bytes waiting in output queues now.
    pub queued_bytes: u64,
    /// The most bytes ever waiting in output queues at once.
    pub peak_queued_bytes: u64,
    /// Clients that left with reason `quit`.
    pub disconnects_quit: u64,
    /// Clients that left with reason `disconnect`.
    pub disconnects_disconnect: u64,
    /// Clients that left with reason `slow_consumer`.
    pub disconnects_slow_consumer: u64,
    /// Clients that left with reason `timeout`.
    pub disconnects_timeout: u64,
    /// Clients that left with reason `protocol_error`.
    pub disconnects_protocol_error: u64,
    /// Clients that left with reason `kicked`.
    pub disconnects_kicked: u64,
    /// Clients that left with reason `shutdown`.
    pub disconnects_shutdown: u64,
}

/// What `chat_config_default` puts in `listen_addr`; a unit test checks it
/// is `Config::default()`'s address.
pub(super) const DEFAULT_LISTEN_ADDR: &CStr = c"127.0.0.1:7878";

pub(super) const CONFIG_MIN_SIZE: usize = offset_of!(ChatConfig, listen_addr) + size_of::<*const c_char>();
const STATS_MIN_SIZE: usize = offset_of!(ChatStats, clients) + size_of::<u64>();

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn millis_u32(d: Duration) -> u32 {
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
    }
}

/// A C flag: only 0 and 1, so that a stray value is caught, not guessed.
fn flag(n: u32, what: &str) -> Result<bool, Failure> {
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

/// Writes the fields of `stats` that the host's `struct_size` covers.
///
/// # Safety
/// `out` points to a writable struct of at least `out->struct_size` bytes
/// (and at least the `struct_size` field).
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub unsafe fn write_stats(out: NonNull<ChatStats>, stats: &Stats) -> Result<(), Failure> {
    let out = out.as_ptr();
    // SAFETY: every version of the struct starts with struct_size.
    let size = unsafe { (&raw const (*out).struct_size).read() } as usize;
    if size < STATS_MIN_SIZE {
        return Err(Failure::new(
            ErrorCode::Invalid,
            format!("stats struct_size {size} does not cover clients ({STATS_MIN_SIZE} bytes)"),
        ));
    }
    let by = |r: Reason| stats.disconnects_for(r);
    let fields = [
        (offset_of!(ChatStats, clients), stats.clients),
        (offset_of!(ChatStats, registered), stats.registered),
        (offset_of!(ChatStats, accepted), stats.accepted),
        (offset_of!(ChatStats, refused), stats.refused),
        (offset_of!(ChatStats, frames_in), stats.frames_in),
        (offset_of!(ChatStats, frames_out), stats.frames_out),
        (offset_of!(ChatStats, bytes_in), stats.bytes_in),
        (offset_of!(ChatStats, bytes_out), stats.bytes_out),
        (offset_of!(ChatStats, queued_bytes), stats.queued_bytes),
        (offset_of!(ChatStats, peak_queued_bytes), stats.peak_queued_bytes),
        (offset_of!(ChatStats, disconnects_quit), by(Reason::Quit)),
        (
            offset_of!(ChatStats, disconnects_disconnect),
            by(Reason::Disconnect),
        ),
        (
            offset_of!(ChatStats, disconnects_slow_consumer),
            by(Reason::SlowConsumer),
        ),
        (offset_of!(ChatStats, disconnects_timeout), by(Reason::Timeout)),
        (
            offset_of!(ChatStats, disconnects_protocol_error),
            by(Reason::ProtocolError),
        ),
        (offset_of!(ChatStats, disconnects_kicked), by(Reason::Kicked)),
        (offset_of!(ChatStats, disconnects_shutdown), by(Reason::Shutdown)),
    ];
    for (offset, value) in fields {
        if offset + size_of::<u64>() <= size {
            // SAFETY: the host's struct_size covers this u64 field at
            // `offset` of a ChatStats it owns, so it is writable and aligned.
            unsafe { out.byte_add(offset).cast::<u64>().write(value) };
        }
    }
    Ok(())
}

/// The C form of one descriptor to watch.
pub fn poll_fd(w: &WatchFd) -> ChatPollFd {
    let mut events = 0;
    if w.read {
        events |= CHAT_POLL_READ;
    }
    if w.write {
        events |= CHAT_POLL_WRITE;
    }
    ChatPollFd { fd: w.fd, events }
}
