//! What a typed line means: a message to send, or a command.

use serde_json::{json, Value};

use crate::session::Session;
use crate::style::{Line, Said, Target};

/// Every command, for `/help` and for Tab completion.
pub const COMMANDS: &[&str] = &[
    "/all", "/msg", "/who", "/nick", "/join", "/part", "/room", "/names", "/rooms", "/list", "/clear",
    "/help", "/quit",
];

pub const HELP: &str = "commands:
  TEXT              send TEXT to everyone
  /all TEXT         send TEXT to everyone (also for text starting with / or #)
  /msg NICK TEXT    send TEXT to NICK only
  /who              list who is online
  /nick NEW         take another nick (everyone sees the rename)
  /join #ROOM       join a room (created if it does not exist)
  /part #ROOM       leave a room
  /room #ROOM TEXT  send TEXT to a room (or just: #ROOM TEXT)
  /names #ROOM      list a room's members (a room you are in)
  /rooms            list the rooms you are in
  /list             list every room on the server, with its member count
  /clear            clear the screen (terminal)
  /quit             leave (end of input does the same)
  /help             this text";

pub const KEYS: &str = "keys:
  Left/Right Ctrl-B/F   move          Ctrl-Left/Right Alt-B/F  move by words
  Home/End Ctrl-A/E     line start/end  Backspace Delete        delete a character
  Ctrl-U / Ctrl-K       delete to the start / to the end of the line
  Ctrl-W Alt-Backspace  delete the word before the cursor; Alt-D the word after
  Ctrl-Y                put back what was deleted last
  Up/Down Ctrl-P/N      history       Tab Shift-Tab            complete nicks, commands, #rooms
  Ctrl-L                redraw        Ctrl-C, Ctrl-D on an empty line   quit";

/// What to do with a line.
pub enum Action {
    /// Send this frame; `echo` is how it shows in our own transcript.
    Send(Value, Option<Said>),
    /// Say this to the user; nothing is sent.
    Show(Line),
    /// A mistake in the line (counted as a failure in a script).
    Usage(String),
    /// Leave.
    Quit,
    /// Clear the screen.
    Clear,
    /// Print the commands (and, on a terminal, the keys).
    Help,
    /// An empty line.
    Nothing,
}

/// Parses one typed or piped line.
pub fn parse(line: &str, session: &Session) -> Action {
    if line.trim().is_empty() {
        return Action::Nothing;
    }
    let me = session.nick.clone();
    let echo = |to: Target, text: &str| {
        Some(Said {
            from: me.clone(),
            to,
            text: text.to_string(),
            own: true,
        })
    };
    if line.starts_with('#') {
        return match line.split_once(' ') {
            Some((room, text)) if !text.is_empty() => Action::Send(
                json!({"type": "room", "room": room, "text": text}),
                echo(Target::Room(room.to_string()), text),
            ),
            _ => Action::Usage("usage: #ROOM TEXT".into()),
        };
    }
    if !line.starts_with('/') {
        return Action::Send(json!({"type": "all", "text": line}), echo(Target::All, line));
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "/all" if !rest.is_empty() => {
            Action::Send(json!({"type": "all", "text": rest}), echo(Target::All, rest))
        }
        "/all" => Action::Usage("usage: /all TEXT".into()),
        "/msg" => match rest.split_once(' ') {
            Some((to, text)) if !to.is_empty() && !text.is_empty() => Action::Send(
                json!({"type": "msg", "to": to, "text": text}),
                echo(Target::Private(to.to_string()), text),
            ),
            _ => Action::Usage("usage: /msg NICK TEXT".into()),
        },
        "/who" => Action::Send(json!({"type": "who"}), None),
        "/nick" if crate::session::valid_nick(rest) => {
            Action::Send(json!({"type": "nick", "nick": rest}), None)
        }
        "/nick" => Action::Usage("usage: /nick NEW (1 to 32 of A-Z a-z 0-9 _ -)".into()),
        "/names" if rest.starts_with('#') && !rest.contains(' ') => {
            Action::Send(json!({"type": "members", "room": rest}), None)
        }
        "/names" => Action::Usage("usage: /names #ROOM".into()),
        "/list" if rest.is_empty() => Action::Send(json!({"type": "rooms"}), None),
        "/list" => Action::Usage("usage: /list".into()),
        "/join" | "/part" if rest.starts_with('#') && !rest.contains(' ') => {
            Action::Send(json!({"type": &cmd[1..], "room": rest}), None)
        }
        "/join" | "/part" => Action::Usage(format!("usage: {cmd} #ROOM")),
        "/room" => match rest.split_once(' ') {
            Some((room, text)) if room.starts_with('#') && !text.is_empty() => Action::Send(
                json!({"type": "room", "room": room, "text": text}),
                echo(Target::Room(room.to_string()), text),
            ),
            _ => Action::Usage("usage: /room #ROOM TEXT".into()),
        },
        "/rooms" if session.rooms.is_empty() => Action::Show(Line::Status("you are in no room".into())),
        "/rooms" => {
            let list = session.rooms.iter().cloned().collect::<Vec<_>>().join(", ");
            Action::Show(Line::Status(format!("your rooms: {list}")))
        }
        "/clear" => Action::Clear,
        "/quit" => Action::Quit,
        "/help" => Action::Help,
        _ => Action::Usage(format!("unknown command {cmd} (try /help)")),
    }
}
