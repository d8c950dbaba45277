//! The operations of a core harness script (`core_script.rs`): the limits
//! it runs under, what the fake clients send, what the host does, and how
//! each becomes bytes.

use std::time::Duration;

use chat::Config;
use serde_json::{json, Value};

use super::ResumeCount;

/// Nicks the scripted clients ask for: two that collide case-insensitively,
/// and two invalid ones.
pub const NICKS: [&str; 7] = ["alice", "Alice", "bob", "c-3", "d_4", "", "é"];
/// Rooms, the same way.
pub const ROOMS: [&str; 5] = ["#r", "#R", "#s", "#t", "bad"];
/// Most fake clients in one script.
pub const MAX_CLIENTS: usize = 6;

/// The limits a script runs under, small so that they are reached.
#[derive(Debug, Clone, Default)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub struct Limits {
    /// Frames per second per client, if limited.
    pub rate_frames: Option<u8>,
    /// Bytes per second per client, if limited.
    pub rate_bytes: Option<u16>,
    /// Idle timeout in ms, if any.
    pub idle_ms: Option<u16>,
    /// Handshake timeout in ms, if any.
    pub handshake_ms: Option<u16>,
    /// Hellos wait for the host.
    pub approve: bool,
    /// Messages wait for the host.
    pub intercept: bool,
}

impl Limits {
    /// The configuration: 256-byte frames, 4 KiB queues, few rooms.
    pub fn config(&self) -> Config {
        let ms = |v: u16| Duration::from_millis(u64::from(v.max(1)));
        Config {
            max_frame_bytes: 256,
            max_queue_bytes: 4096,
            idle_timeout: self.idle_ms.map(ms),
            handshake_timeout: self.handshake_ms.map(ms),
            close_linger: Duration::from_millis(500),
            rate_limit_frames: self.rate_frames.map(|r| u64::from(r.max(1))),
            rate_limit_bytes: self.rate_bytes.map(|r| u64::from(r.max(1))),
            rate_limit_grace: Duration::from_millis(2000),
            max_rooms_per_client: 2,
            max_members_per_room: 3,
            max_rooms: 3,
            approve_registrations: self.approve,
            approval_timeout: Duration::from_millis(1000),
            intercept_messages: self.intercept,
            // Small enough that windows end, tails run out (`gap`) and the
            // parked cap (max_clients) is met.
            resume_window: Duration::from_millis(1000),
            resume_retain_bytes: 512,
            max_clients: 3,
            ..Config::default()
        }
    }
}

/// A frame a well-meaning (or spoofing) client sends.
#[derive(Debug, Clone)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum ClientMsg {
    /// `hello` with `NICKS[nick % len]`.
    Hello { nick: u8 },
    /// `msg` to `NICKS[to % len]`; `spoof` adds a `from` field.
    Msg {
        to: u8,
        text: String,
        id: Option<u8>,
        spoof: bool,
    },
    /// `all`.
    All {
        text: String,
        id: Option<u8>,
        spoof: bool,
    },
    /// `who`.
    Who,
    /// `ping` with an id.
    Ping { id: u8 },
    /// `pong`.
    Pong,
    /// `quit`.
    Quit,
    /// `join ROOMS[room % len]`.
    Join { room: u8 },
    /// `part`.
    Part { room: u8 },
    /// `room` message.
    Room {
        room: u8,
        text: String,
        id: Option<u8>,
        spoof: bool,
    },
    /// Any payload, correctly framed.
    Frame(Vec<u8>),
    /// `hello` asking for a resumable session.
    HelloResumable { nick: u8 },
    /// `hello` resuming the session of the `token`-th token issued so far,
    /// with a count near its holder's own, the token maybe corrupted.
    Resume {
        token: u8,
        count: ResumeCount,
        corrupt: bool,
    },
    /// `nick` (a rename).
    Nick { nick: u8 },
    /// `members`.
    Members { room: u8 },
    /// `rooms`.
    Rooms,
}

impl ClientMsg {
    /// The payload bytes.
    pub fn payload(&self) -> Vec<u8> {
        let pick = |table: &[&'static str], i: u8| table[usize::from(i) % table.len()];
        let spoofed = |mut v: Value, spoof: bool| {
            if spoof {
                v["from"] = json!("mallory");
            }
            v
        };
        let with_id = |mut v: Value, id: Option<u8>| {
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            v
        };
        let v = match self {
            ClientMsg::Hello { nick } => json!({"type": "hello", "nick": pick(&NICKS, *nick)}),
            ClientMsg::Msg { to, text, id, spoof } => spoofed(
                with_id(json!({"type": "msg", "to": pick(&NICKS, *to), "text": text}), *id),
                *spoof,
            ),
            ClientMsg::All { text, id, spoof } => {
                spoofed(with_id(json!({"type": "all", "text": text}), *id), *spoof)
            }
            ClientMsg::Who => json!({"type": "who"}),
            ClientMsg::Ping { id } => json!({"type": "ping", "id": id}),
            ClientMsg::Pong => json!({"type": "pong", "id": 1}),
            ClientMsg::Quit => json!({"type": "quit"}),
            ClientMsg::Join { room } => json!({"type": "join", "room": pick(&ROOMS, *room)}),
            ClientMsg::Part { room } => json!({"type": "part", "room": pick(&ROOMS, *room)}),
            ClientMsg::Room {
                room,
                text,
                id,
                spoof,
            } => spoofed(
                with_id(
                    json!({"type": "room", "room": pick(&ROOMS, *room), "text": text}),
                    *id,
                ),
                *spoof,
            ),
            ClientMsg::Frame(bytes) => return bytes.clone(),
            ClientMsg::HelloResumable { nick } => {
                json!({"type": "hello", "nick": pick(&NICKS, *nick), "resumable": true})
            }
            // Built by the world, which knows the tokens (`resume_payload`);
            // alone, a resume of nothing.
            ClientMsg::Resume { .. } => {
                json!({"type": "hello", "nick": "alice", "resume": {"session": "none", "received": 0}})
            }
            ClientMsg::Nick { nick } => json!({"type": "nick", "nick": pick(&NICKS, *nick)}),
            ClientMsg::Members { room } => json!({"type": "members", "room": pick(&ROOMS, *room)}),
            ClientMsg::Rooms => json!({"type": "rooms"}),
        };
        serde_json::to_vec(&v).expect("serialising a Value")
    }
}

/// A payload the host sends.
#[derive(Debug, Clone)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum HostPayload {
    /// `{"type":"notice","pad":"xxx..."}` with `pad` bytes of padding: large
    /// ones fill queues, too large ones are refused.
    Notice { pad: u16 },
    /// Any bytes: the core must refuse what is not a JSON object.
    Raw(Vec<u8>),
}

impl HostPayload {
    /// The payload bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            HostPayload::Notice { pad } => {
                let pad = "x".repeat(usize::from(*pad % 512));
                serde_json::to_vec(&json!({"type": "notice", "pad": pad})).expect("serialising a Value")
            }
            HostPayload::Raw(bytes) => bytes.clone(),
        }
    }
}

/// One step of a script. `client` picks among the clients connected so far
/// (modulo their number); steps naming a client when there is none are
/// skipped.
#[derive(Debug, Clone)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum Op {
    /// A new connection from `127.0.0.<ip % 4 + 1>`.
    Connect { ip: u8 },
    /// A client sends a frame, in two reads split after `split` bytes.
    Send { client: u8, msg: ClientMsg, split: u8 },
    /// A client sends raw bytes (framing included, or not).
    Raw { client: u8, bytes: Vec<u8> },
    /// Time passes (ms); timers run.
    Advance { ms: u16 },
    /// Timers run without time passing.
    Tick,
    /// The client's socket closed or was reset.
    Gone { client: u8 },
    /// The server forgets connections that finished closing.
    Reap,
    /// The client stops (true) or resumes (false) reading its socket.
    Stall { client: u8, stalled: bool },
    /// Host send to one client.
    HostSend { client: u8, payload: HostPayload },
    /// Host broadcast.
    HostBroadcast { payload: HostPayload },
    /// Host send to a room.
    HostRoomSend { room: u8, payload: HostPayload },
    /// Host takes a client out of a room.
    HostRoomRemove { client: u8, room: u8 },
    /// Host kick.
    Kick { client: u8, message: Option<String> },
    /// Host approves a waiting hello.
    Approve { client: u8 },
    /// Host rejects a waiting hello.
    Reject { client: u8 },
    /// Host releases an intercepted message (`ticket % held`).
    Release { ticket: u8 },
    /// Host drops an intercepted message.
    DropHeld { ticket: u8 },
    /// Host notice to one client.
    HostNotice { client: u8, text: String },
    /// Host notice to everyone.
    HostNoticeAll { text: String },
    /// The server shuts down: the script ends here.
    Shutdown,
}

/// A whole script: limits, then steps.
#[derive(Debug, Clone, Default)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub struct Script {
    /// The limits.
    pub limits: Limits,
    /// The steps.
    pub ops: Vec<Op>,
}
