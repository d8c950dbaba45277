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
    /// Our hello was accepted: a fresh session, or (`resumed`) the one a
    /// dropped connection had, continued.
    Welcome { resumed: bool },
    /// Our resume was refused (why, in words): a fresh hello may follow.
    ResumeFailed(String),
    /// Our own nick changed (the prompt shows it).
    Renamed,
    /// The answer to the ping sent after a resume: everything the server
    /// had for us before it has been read.
    Synced,
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
    /// Why the server is about to close the connection, if it said so (the
    /// error code, and the one line printed when the socket then closes).
    pub closing: Option<(String, String)>,
    /// Our messages sent with an `id`, not acked yet: shown (on a terminal)
    /// once the server acks them, so a line that did not go through never
    /// shows as said; sent again after a resume if the ack never came.
    pub pending: VecDeque<Pending>,
    next_id: u64,
    /// The resumable session's current token (protocol 1.2), if the server
    /// gave one: what a new connection resumes with.
    pub token: Option<String>,
    /// Frames of the session read whole (the count a resume sends as
    /// `received`): every frame after the first welcome but the welcomes
    /// and the error that ends a connection.
    pub received: u64,
    /// Frames on this connection are counted (a welcome came on it).
    counting: bool,
    /// The id of the ping sent after a resume, until its pong comes.
    pub resync: Option<String>,
}

/// A message sent (or waiting to be) whose ack has not come yet.
pub struct Pending {
    pub id: u64,
    /// The frame as sent, to send again after a resume that did not bring
    /// its ack.
    pub frame: Value,
    /// How it shows once acked.
    pub echo: Said,
    /// Whether it has been written to a connection (else it waits for one).
    pub sent: bool,
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
    "replaced",
];

/// Errors that end a connection but not a resumable session (it is parked
/// and may be resumed): they are not counted in `received`.
pub const PARKING: &[&str] = &["slow_consumer", "timeout"];

impl Session {
    /// Gives `frame` an ack id and remembers it until the ack; `echo`
    /// shows when the ack comes (on a terminal).
    pub fn expect_ack(&mut self, frame: &mut Value, echo: Said, sent: bool) {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.pending.push_back(Pending {
            id: self.next_id,
            frame: frame.clone(),
            echo,
            sent,
        });
    }

    /// A new connection: nothing is counted on it until its welcome.
    pub fn connection_lost(&mut self) {
        self.registered = false;
        self.counting = false;
        self.closing = None;
        self.resync = None;
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
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let code = v.get("code").and_then(Value::as_str).unwrap_or("");
        let ends_connection = kind == "error" && (PARKING.contains(&code) || code == "replaced");
        if self.counting && kind != "welcome" && !ends_connection {
            self.received += 1;
        }
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
        match kind {
            "welcome" => {
                let resumed = v.get("resumed") == Some(&Value::Bool(true));
                self.registered = true;
                self.counting = true;
                self.nick = s("nick");
                self.users = names(&v["users"]).into_iter().collect();
                self.token = v.get("session").and_then(Value::as_str).map(String::from);
                let online = names(&v["users"]).join(", ");
                let text = if resumed {
                    format!("reconnected: session resumed as {}; online: {online}", self.nick)
                } else {
                    // A new session: nothing of an old one carries over.
                    self.received = 0;
                    self.rooms.clear();
                    format!("connected as {}; online: {online}", self.nick)
                };
                vec![Effect::Show(Line::Status(text)), Effect::Welcome { resumed }]
            }
            "nick" => {
                let (new, old) = (s("nick"), s("old"));
                self.users.retain(|n| *n != old);
                self.users.insert(new.clone());
                self.nick = new.clone();
                vec![
                    Effect::Renamed,
                    Effect::Show(Line::Status(format!("you are now known as {new}"))),
                ]
            }
            "members" => {
                let members = names(&v["members"]);
                let room = s("room");
                self.seen_rooms.insert(room.clone());
                show(format!("members of {room}: {}", members.join(", ")))
            }
            "rooms" => {
                let rooms: Vec<String> = v["rooms"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| {
                                let room = clean(r["room"].as_str().unwrap_or(""));
                                self.seen_rooms.insert(room.clone());
                                format!("{room} ({})", r["members"].as_u64().unwrap_or(0))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if rooms.is_empty() {
                    show("no rooms on the server".into())
                } else {
                    show(format!("rooms: {}", rooms.join(", ")))
                }
            }
            "notice" => vec![Effect::Show(Line::Notice(s("text")))],
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
                if self.pending.iter().any(|p| Some(p.id) == id) {
                    while let Some(p) = self.pending.pop_front() {
                        if Some(p.id) == id {
                            shown.push(Effect::Show(Line::Said(p.echo)));
                            break;
                        }
                    }
                }
                shown
            }
            "pong"
                if self.resync.is_some() && v.get("id").and_then(Value::as_str) == self.resync.as_deref() =>
            {
                self.resync = None;
                vec![Effect::Synced]
            }
            "pong" => Vec::new(),
            "banner" => show(s("text")),
            "error" => self.error(&v),
            // Something newer than this client: shown as sent.
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
                "renamed" => {
                    let old = s("old");
                    self.users.retain(|n| *n != old);
                    self.users.insert(nick.clone());
                    return vec![Effect::Show(Line::Status(format!(
                        "{old} is now known as {nick}"
                    )))];
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
        if code == "resume_failed" {
            return vec![Effect::ResumeFailed(text)];
        }
        if !self.registered {
            match code {
                "nick_taken" | "bad_nick" => return vec![Effect::NickRefused(text)],
                "rejected" => return vec![Effect::Refused(text)],
                _ => {}
            }
        }
        if CLOSING.contains(&code) {
            self.closing = Some((code.to_string(), text));
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
                |p| matches!(&p.echo.to, Target::Private(to) if to.eq_ignore_ascii_case(field("to"))),
            ),
            "not_in_room" | "bad_room" => self
                .pending
                .iter()
                .position(|p| matches!(&p.echo.to, Target::Room(r) if r.eq_ignore_ascii_case(field("room")))),
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
        "replaced" => "another connection took this session over (replaced)".into(),
        "resume_failed" => match field("reason", "").as_str() {
            "unknown_session" => {
                "the server no longer knows this session (it ended, or the server restarted)".into()
            }
            "gap" => "the server no longer holds everything sent meanwhile (gap)".into(),
            other => format!("resume refused ({other})"),
        },
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
