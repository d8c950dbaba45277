//! A line-oriented chat client: `cargo run --example chat_client -- --nick alice`.
//!
//! One `select()` loop over stdin and the server socket. A plain line goes
//! to everyone; `/msg NICK TEXT`, `/all TEXT`, `/who`, `/quit`, `/help`.
//! With piped stdin it can be scripted: end of input flushes and quits.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;

use chat::frame::FrameDecoder;
use clap::Parser;
use nix::sys::select::{select, FdSet};
use serde_json::{json, Value};

/// Talk to a chat server from the terminal or a script.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7878")]
    connect: SocketAddr,
    /// Your nick: 1 to 32 of A-Z a-z 0-9 _ -.
    #[arg(long)]
    nick: String,
    /// A credential for servers whose host approves registrations (sent
    /// as the hello's "token").
    #[arg(long)]
    token: Option<String>,
}

const HELP: &str = "commands:
  TEXT              send TEXT to everyone
  /all TEXT         send TEXT to everyone
  /msg NICK TEXT    send TEXT to NICK only
  /who              list who is online
  /join #ROOM       join a room (created if it does not exist)
  /part #ROOM       leave a room
  /room #ROOM TEXT  send TEXT to a room (or just: #ROOM TEXT)
  /rooms            list the rooms you are in
  /quit             leave (end of input does the same)
  /help             this text";

/// How the session ended.
enum End {
    /// We asked to leave and the server closed: success.
    Quit,
    /// The server or the network ended it.
    Dropped(String),
    /// Registration was refused.
    Refused(String),
}

struct Client {
    socket: TcpStream,
    decoder: FrameDecoder,
    registered: bool,
    quitting: bool,
    /// The reason the server gave in its last error before closing.
    last_error: Option<String>,
    /// The rooms we are in, as the server named them.
    rooms: std::collections::BTreeSet<String>,
    out: io::Stdout,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let socket = match TcpStream::connect(args.connect) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat_client: cannot connect to {}: {e}", args.connect);
            return ExitCode::from(1);
        }
    };
    let mut client = Client {
        socket,
        decoder: FrameDecoder::new(1 << 24),
        registered: false,
        quitting: false,
        last_error: None,
        rooms: Default::default(),
        out: io::stdout(),
    };
    let mut hello = json!({"type": "hello", "nick": args.nick});
    if let Some(token) = &args.token {
        hello["token"] = json!(token);
    }
    let end = client.send(&hello).and_then(|()| client.run());
    match end {
        Ok(End::Quit) => ExitCode::SUCCESS,
        Ok(End::Dropped(why)) => {
            eprintln!("chat_client: disconnected: {why}");
            ExitCode::from(1)
        }
        Ok(End::Refused(why)) => {
            eprintln!("chat_client: cannot join as {}: {why}", args.nick);
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("chat_client: connection lost: {e}");
            ExitCode::from(1)
        }
    }
}

impl Client {
    fn run(&mut self) -> io::Result<End> {
        let stdin = io::stdin();
        let mut stdin_open = true;
        let mut line_buf: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let watch_stdin = stdin_open && self.registered && !self.quitting;
            let mut rset = FdSet::new();
            rset.insert(self.socket.as_fd());
            if watch_stdin {
                rset.insert(stdin.as_fd());
            }
            match select(None, &mut rset, None, None, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let stdin_ready = watch_stdin && rset.contains(stdin.as_fd());
            let socket_ready = rset.contains(self.socket.as_fd());
            if stdin_ready {
                let n = nix::unistd::read(stdin.as_fd(), &mut buf).map_err(io::Error::from)?;
                if n == 0 {
                    stdin_open = false;
                    if !line_buf.is_empty() {
                        let line = String::from_utf8_lossy(&std::mem::take(&mut line_buf)).into_owned();
                        self.command(&line)?;
                    }
                    if !self.quitting {
                        self.quit()?;
                    }
                } else {
                    line_buf.extend_from_slice(&buf[..n]);
                    while let Some(pos) = line_buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = line_buf.drain(..=pos).collect();
                        let line = String::from_utf8_lossy(&line);
                        self.command(line.trim_end_matches(['\n', '\r']))?;
                        if self.quitting {
                            break;
                        }
                    }
                }
            }
            if socket_ready {
                let n = match self.socket.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if self.quitting => {
                        let _ = e;
                        return Ok(End::Quit);
                    }
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    return Ok(self.closed());
                }
                self.decoder.push(&buf[..n]);
                loop {
                    let payload = match self.decoder.next_frame() {
                        Ok(Some(p)) => p.to_vec(),
                        Ok(None) => break,
                        Err(e) => return Ok(End::Dropped(format!("bad frame from server ({})", e.code()))),
                    };
                    if let Some(end) = self.incoming(&payload)? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    fn closed(&mut self) -> End {
        if self.quitting {
            End::Quit
        } else {
            let why = self
                .last_error
                .take()
                .unwrap_or_else(|| "the server closed the connection".into());
            End::Dropped(why)
        }
    }

    fn send(&mut self, v: &Value) -> io::Result<()> {
        let payload = v.to_string();
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload.as_bytes());
        self.socket.write_all(&frame)
    }

    fn quit(&mut self) -> io::Result<()> {
        self.quitting = true;
        self.send(&json!({"type": "quit"}))
    }

    fn say(&mut self, line: &str) -> io::Result<()> {
        let _ = writeln!(self.out, "{line}");
        self.out.flush()
    }

    fn command(&mut self, line: &str) -> io::Result<()> {
        if line.trim().is_empty() {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix('#') {
            return match rest.split_once(' ') {
                Some((room, text)) if !text.is_empty() => {
                    self.send(&json!({"type": "room", "room": format!("#{room}"), "text": text}))
                }
                _ => self.say("! usage: #ROOM TEXT"),
            };
        }
        if !line.starts_with('/') {
            return self.send(&json!({"type": "all", "text": line}));
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "/all" if !rest.is_empty() => self.send(&json!({"type": "all", "text": rest})),
            "/msg" => match rest.split_once(' ') {
                Some((to, text)) if !to.is_empty() && !text.is_empty() => {
                    self.send(&json!({"type": "msg", "to": to, "text": text}))
                }
                _ => self.say("! usage: /msg NICK TEXT"),
            },
            "/who" => self.send(&json!({"type": "who"})),
            "/join" | "/part" if rest.starts_with('#') && !rest.contains(' ') => {
                self.send(&json!({"type": &cmd[1..], "room": rest}))
            }
            "/join" | "/part" => self.say(&format!("! usage: {cmd} #ROOM")),
            "/room" => match rest.split_once(' ') {
                Some((room, text)) if room.starts_with('#') && !text.is_empty() => {
                    self.send(&json!({"type": "room", "room": room, "text": text}))
                }
                _ => self.say("! usage: /room #ROOM TEXT"),
            },
            "/rooms" if self.rooms.is_empty() => self.say("* you are in no room"),
            "/rooms" => {
                let list = self.rooms.iter().cloned().collect::<Vec<_>>().join(", ");
                self.say(&format!("* your rooms: {list}"))
            }
            "/quit" => self.quit(),
            "/help" => self.say(HELP),
            "/all" => self.say("! usage: /all TEXT"),
            _ => self.say(&format!("! unknown command {cmd} (try /help)")),
        }
    }

    /// Handles one frame from the server; `Some` ends the session.
    fn incoming(&mut self, payload: &[u8]) -> io::Result<Option<End>> {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return Ok(Some(End::Dropped(
                "the server sent something that is not JSON".into(),
            )));
        };
        let s = |key: &str| clean(v.get(key).and_then(Value::as_str).unwrap_or(""));
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "welcome" => {
                self.registered = true;
                self.say(&format!(
                    "* connected as {}; online: {}",
                    s("nick"),
                    list(&v["users"])
                ))?;
            }
            "msg" => self.say(&format!("<{} (private)> {}", s("from"), s("text")))?,
            "all" => self.say(&format!("<{}> {}", s("from"), s("text")))?,
            "users" => self.say(&format!("* online: {}", list(&v["users"])))?,
            "room" => self.say(&format!("[{}] <{}> {}", s("room"), s("from"), s("text")))?,
            "joined" => {
                self.rooms.insert(s("room"));
                self.say(&format!(
                    "* you joined {}; members: {}",
                    s("room"),
                    list(&v["members"])
                ))?
            }
            "parted" => {
                self.rooms.remove(&s("room"));
                self.say(&format!("* you left {}", s("room")))?
            }
            "presence" if v.get("room").is_some() => {
                self.say(&format!("* {} {} {}", s("nick"), s("state"), s("room")))?
            }
            "presence" => match v.get("reason").and_then(Value::as_str) {
                Some(reason) => self.say(&format!("* {} left ({})", s("nick"), clean(reason)))?,
                None => self.say(&format!("* {} is {}", s("nick"), s("state")))?,
            },
            "ping" => {
                self.send(&json!({"type": "pong", "id": v.get("id").cloned().unwrap_or(Value::Null)}))?
            }
            "pong" | "ack" => {}
            "banner" => self.say(&format!("* {}", s("text")))?,
            "error" => return Ok(self.server_error(&s("code"), &v)),
            _ => self.say(&format!("* {}", clean(&v.to_string())))?,
        }
        Ok(None)
    }

    fn server_error(&mut self, code: &str, v: &Value) -> Option<End> {
        let detail = v.get("message").and_then(Value::as_str).map(clean);
        let text = match code {
            "no_such_user" => format!("no such user: {}", clean(v["to"].as_str().unwrap_or("?"))),
            "nick_taken" => "that nick is taken".into(),
            "bad_nick" => "a nick is 1 to 32 of A-Z a-z 0-9 _ -".into(),
            "slow_consumer" => "dropped by the server: reading too slowly".into(),
            "timeout" => "dropped by the server: idle too long".into(),
            "kicked" => format!(
                "kicked by the server{}",
                detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            "shutdown" => "the server is shutting down".into(),
            "server_full" => "the server is full".into(),
            "not_in_room" => format!(
                "you are not in {}",
                clean(v["room"].as_str().unwrap_or("that room"))
            ),
            "bad_room" => "a room name is # then 1 to 32 of A-Z a-z 0-9 _ -".into(),
            "too_many_rooms" => "you are in too many rooms already".into(),
            "room_full" => format!("{} is full", clean(v["room"].as_str().unwrap_or("that room"))),
            "server_room_limit" => "the server has no room for another room".into(),
            "rejected" => format!(
                "the server refused you{}",
                detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            _ => match &detail {
                Some(d) => format!("server error {code}: {d}"),
                None => format!("server error {code}"),
            },
        };
        if !self.registered && matches!(code, "nick_taken" | "bad_nick" | "rejected") {
            return Some(End::Refused(text));
        }
        eprintln!("! {text}");
        self.last_error = Some(text);
        None
    }
}

/// Text from the network, with control characters escaped so that nobody
/// can move the cursor or fake extra lines on the reader's terminal.
fn clean(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn list(users: &Value) -> String {
    users
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(clean)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
