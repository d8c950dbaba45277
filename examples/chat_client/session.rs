//! What the client knows of its session (nick, who is online, rooms) and
//! what each frame from the server means for it.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{json, Value};

use crate::style::{clean, Line, Said, Target};

/// What a frame from the server asks of the program.
pub enum Effect {
    /// Show a line of the transcript.
    Show(Line),
    /// Send this frame back (a pong).
    Reply(Value),
    /// Our hello was accepted.
    Welcome,
    /// Our hello's nick was refused; another may be tried.
    NickRefused(String),
    /// The server will not have us (a host's rejection): the end.
    Refused(String),
}

#[derive(Default)]
pub struct Session {
    /// The nick we asked for, then the one the server welcomed.
    pub nick: String,
    pub registered: bool,
    /// Nicks online, as the server spells them (our own included).
    pub users: BTreeSet<String>,
    /// Rooms we are in.
    pub rooms: BTreeSet<String>,
    /// Rooms seen anywhere this session (for completion).
    pub seen_rooms: BTreeSet<String>,
    /// Errors the server answered to what we sent.
    pub failures: usize,
    /// Why the server is about to close the connection, if it said so: the
    /// one line printed when the socket then closes.
    pub closing: Option<String>,
    /// Our own messages sent with an `id`, shown once the server acks them
    /// (so a line that did not go through never shows as said).
    pending: VecDeque<(u64, Said)>,
    next_id: u64,
}

/// Error codes after which the server closes the connection: they are said
/// once, as the ending, not as an error line and then again.
const CLOSING: &[&str] = &[
    "slow_consumer",
    "timeout",
    "kicked",
    "shutdown",
    "server_full",
    "protocol_error",
    "frame_too_large",
    "empty_frame",
];

impl Session {
    /// Sends `frame` with an ack id; `echo` shows when the ack comes.
    pub fn expect_ack(&mut self, frame: &mut Value, echo: Said) {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.pending.push_back((self.next_id, echo));
    }

    /// The other nicks online, for completion.
    pub fn others(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case(&self.nick))
            .cloned()
            .collect()
    }

    /// Handles one frame's payload.
    pub fn incoming(&mut self, payload: &[u8]) -> Vec<Effect> {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return vec![Effect::Show(Line::Error(
                "the server sent something that is not JSON".into(),
            ))];
        };
        let s = |key: &str| clean(v.get(key).and_then(Value::as_str).unwrap_or(""));
        let show = |text: String| vec![Effect::Show(Line::Status(text))];
        let said = |to: Target| {
            vec![Effect::Show(Line::Said(Said {
                from: s("from"),
                to,
                text: s("text"),
                own: false,
            }))]
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "welcome" => {
                self.registered = true;
                self.nick = s("nick");
                self.users = names(&v["users"]).into_iter().collect();
                let online = names(&v["users"]).join(", ");
                vec![
                    Effect::Welcome,
                    Effect::Show(Line::Status(format!(
                        "connected as {}; online: {online}",
                        self.nick
                    ))),
                ]
            }
            "msg" => said(Target::Private(s("to"))),
            "all" => said(Target::All),
            "room" => {
                self.seen_rooms.insert(s("room"));
                said(Target::Room(s("room")))
            }
            "users" => {
                self.users = names(&v["users"]).into_iter().collect();
                show(format!("online: {}", names(&v["users"]).join(", ")))
            }
            "joined" => {
                let room = s("room");
                self.rooms.insert(room.clone());
                self.seen_rooms.insert(room.clone());
                show(format!(
                    "you joined {room}; members: {}",
                    names(&v["members"]).join(", ")
                ))
            }
            "parted" => {
                self.rooms.remove(&s("room"));
                show(format!("you left {}", s("room")))
            }
            "presence" => self.presence(&v),
            "ping" => vec![Effect::Reply(
                json!({"type": "pong", "id": v.get("id").cloned().unwrap_or(Value::Null)}),
            )],
            "ack" => {
                let id = v.get("id").and_then(Value::as_u64);
                let mut shown = Vec::new();
                // Acks come in the order sent: anything older was answered
                // by an error already.
                while let Some((pid, said)) = self.pending.pop_front() {
                    if Some(pid) == id {
                        shown.push(Effect::Show(Line::Said(said)));
                        break;
                    }
                }
                shown
            }
            "pong" => Vec::new(),
            "banner" => show(s("text")),
            "error" => self.error(&v),
            // Hook: host notices (`notice`), renames (`nick`), `members` and
            // `rooms` answers of protocol 1.2 get their own lines here once
            // the server speaks them; until then they show as sent.
            _ => show(clean(&v.to_string())),
        }
    }

    fn presence(&mut self, v: &Value) -> Vec<Effect> {
        let s = |key: &str| clean(v.get(key).and_then(Value::as_str).unwrap_or(""));
        let (nick, state) = (s("nick"), s("state"));
        let text = if v.get("room").is_some() {
            self.seen_rooms.insert(s("room"));
            format!("{nick} {state} {}", s("room"))
        } else {
            match state.as_str() {
                "online" => {
                    self.users.insert(nick.clone());
                }
                "offline" => {
                    self.users.retain(|n| *n != nick);
                }
                _ => {}
            }
            match v.get("reason").and_then(Value::as_str) {
                Some(reason) => format!("{nick} left ({})", clean(reason)),
                None => format!("{nick} is {state}"),
            }
        };
        vec![Effect::Show(Line::Status(text))]
    }

    fn error(&mut self, v: &Value) -> Vec<Effect> {
        let code = v.get("code").and_then(Value::as_str).unwrap_or("");
        let text = describe(code, v);
        if !self.registered {
            match code {
                "nick_taken" | "bad_nick" => return vec![Effect::NickRefused(text)],
                "rejected" => return vec![Effect::Refused(text)],
                _ => {}
            }
        }
        if CLOSING.contains(&code) {
            self.closing = Some(text);
            return Vec::new();
        }
        if code == "rate_limited" {
            // Nothing was dropped: the server reads us more slowly.
            return vec![Effect::Show(Line::Status(text))];
        }
        self.drop_pending(code, v);
        self.failures += 1;
        vec![Effect::Show(Line::Error(text))]
    }
}

impl Session {
    /// The echo of the message this error answered goes unshown.
    fn drop_pending(&mut self, code: &str, v: &Value) {
        let field = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
        let at = match code {
            "no_such_user" => self.pending.iter().position(
                |(_, s)| matches!(&s.to, Target::Private(to) if to.eq_ignore_ascii_case(field("to"))),
            ),
            "not_in_room" | "bad_room" => self
                .pending
                .iter()
                .position(|(_, s)| matches!(&s.to, Target::Room(r) if r.eq_ignore_ascii_case(field("room")))),
            // A host that drops a held message answers it in its place.
            "moderated" => Some(0),
            _ => None,
        };
        if let Some(at) = at {
            self.pending.remove(at);
        }
    }
}

/// An error code (and its fields) in words.
fn describe(code: &str, v: &Value) -> String {
    let field = |key: &str, or: &str| clean(v.get(key).and_then(Value::as_str).unwrap_or(or));
    let detail = v.get("message").and_then(Value::as_str).map(clean);
    let with_detail = |what: &str| match &detail {
        Some(d) => format!("{what}: {d}"),
        None => what.to_string(),
    };
    match code {
        "no_such_user" => format!("no such user: {}", field("to", "?")),
        "nick_taken" => "that nick is taken".into(),
        "bad_nick" => "a nick is 1 to 32 of A-Z a-z 0-9 _ -".into(),
        "slow_consumer" => "dropped by the server: reading too slowly".into(),
        "timeout" => "dropped by the server: idle too long".into(),
        "kicked" => with_detail("kicked by the server"),
        "shutdown" => "the server is shutting down".into(),
        "server_full" => "the server is full".into(),
        "protocol_error" => with_detail("dropped by the server for a protocol error"),
        "not_in_room" => format!("you are not in {}", field("room", "that room")),
        "bad_room" => "a room name is # then 1 to 32 of A-Z a-z 0-9 _ -".into(),
        "too_many_rooms" => "you are in too many rooms already".into(),
        "room_full" => format!("{} is full", field("room", "that room")),
        "server_room_limit" => "the server has no room for another room".into(),
        "rate_limited" => "slow down: the server is limiting how fast you send".into(),
        "rejected" => with_detail("the server refused you"),
        _ => with_detail(&format!("server error {}", clean(code))),
    }
}

/// A JSON array of strings, cleaned.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(clean).collect())
        .unwrap_or_default()
}

/// Whether the server would take `nick` (checked before asking it).
pub fn valid_nick(nick: &str) -> bool {
    (1..=32).contains(&nick.len())
        && nick
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
