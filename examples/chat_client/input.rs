//! What the user does: keys on a terminal, lines from a script, and the
//! commands both turn into.

use crate::app::{App, Ui};
use crate::commands::{self, Action, HELP, KEYS};
use crate::complete::Candidates;
use crate::keys::Key;
use crate::session::valid_nick;
use crate::style::Line;

impl App {
    /// Applies keys typed on the terminal, then draws the input line.
    pub fn keys(&mut self, keys: Vec<Key>) {
        for key in keys {
            self.key(key);
            if self.end.is_some() {
                return;
            }
        }
        self.redraw_input(false);
    }

    fn key(&mut self, key: Key) {
        let Ui::Tty(t) = &mut self.ui else { return };
        if !matches!(key, Key::Tab | Key::BackTab) {
            t.completer.reset();
        }
        let e = &mut t.editor;
        match key {
            Key::Char(c) => e.insert(c),
            Key::Enter => self.enter(),
            Key::Tab | Key::BackTab if !self.asking_nick => {
                let cands = Candidates {
                    commands: commands::COMMANDS,
                    nicks: self.session.others(),
                    rooms: self.session.seen_rooms.iter().cloned().collect(),
                };
                t.completer.complete(&mut t.editor, &cands, key == Key::BackTab);
            }
            Key::Backspace | Key::Ctrl('h') => e.backspace(),
            Key::Delete => e.delete(),
            Key::Left | Key::Ctrl('b') => e.left(),
            Key::Right | Key::Ctrl('f') => e.right(),
            Key::Home | Key::Ctrl('a') => e.home(),
            Key::End | Key::Ctrl('e') => e.end(),
            Key::WordLeft => e.word_left(),
            Key::WordRight => e.word_right(),
            Key::Up | Key::Ctrl('p') if !self.asking_nick => e.history_prev(),
            Key::Down | Key::Ctrl('n') if !self.asking_nick => e.history_next(),
            Key::Ctrl('u') => e.kill_to_start(),
            Key::Ctrl('k') => e.kill_to_end(),
            Key::Ctrl('w') | Key::KillWordBack => e.kill_word_back(),
            Key::KillWordForward => e.kill_word_forward(),
            Key::Ctrl('y') => e.yank(),
            Key::Ctrl('l') => self.redraw_input(true),
            Key::Ctrl('c') => self.quit(),
            Key::Ctrl('d') if e.is_empty() => self.quit(),
            Key::Ctrl('d') => e.delete(),
            _ => {}
        }
    }

    fn enter(&mut self) {
        let Ui::Tty(t) = &mut self.ui else { return };
        if self.asking_nick {
            let nick = t.editor.take(false);
            let nick = nick.trim();
            if !valid_nick(nick) {
                self.show(Line::Error("a nick is 1 to 32 of A-Z a-z 0-9 _ -".into()));
                return;
            }
            self.session.nick = nick.to_string();
            self.asking_nick = false;
            self.set_prompt();
            // Sent now, or as soon as the connection is up.
            self.hello();
            return;
        }
        if !self.session.registered && self.reconnect.is_none() {
            self.show(Line::Error(
                "not connected yet: the line waits until you are".into(),
            ));
            return;
        }
        let line = t.editor.take(true);
        self.line(&line);
    }

    /// Handles the complete lines a script sent so far.
    pub fn script_lines(&mut self) {
        loop {
            let Ui::Script(s) = &mut self.ui else { return };
            let Some(pos) = s.partial.iter().position(|&b| b == b'\n') else {
                return;
            };
            let raw: Vec<u8> = s.partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&raw);
            self.line(text.trim_end_matches(['\n', '\r']));
            if self.end.is_some() || !self.stdin_open {
                return;
            }
        }
    }

    /// Input ended: a script's last line (if unterminated) goes, then quit.
    pub fn end_of_input(&mut self) {
        if let Ui::Script(s) = &mut self.ui {
            let rest = std::mem::take(&mut s.partial);
            if !rest.is_empty() {
                let text = String::from_utf8_lossy(&rest).into_owned();
                self.line(text.trim_end_matches('\r'));
            }
        }
        self.quit();
    }

    /// One line typed or piped.
    fn line(&mut self, line: &str) {
        let tty = self.opts.tty;
        match commands::parse(line, &self.session) {
            Action::Nothing => {}
            Action::Send(mut frame, echo) => {
                // Messages carry an id: a terminal shows our own lines, as
                // they read to others, once the server acked them, and a
                // message whose ack a drop swallowed is sent again after
                // the resume (reconnect.rs).
                let online = self.online();
                if let Some(said) = echo {
                    self.session.expect_ack(&mut frame, said, online);
                }
                self.send_frame(frame);
                if !online && tty {
                    self.show(Line::Status(
                        "not connected: sent once the session is back".into(),
                    ));
                }
            }
            Action::Show(line) => self.show(line),
            Action::Usage(text) => {
                if !tty {
                    self.session.failures += 1;
                }
                self.show(Line::Error(text));
            }
            Action::Quit => {
                // Nothing after /quit is read.
                self.stdin_open = false;
                self.quit();
            }
            Action::Clear => {
                if let Ui::Tty(t) = &mut self.ui {
                    let _ = t.screen.clear(&t.editor);
                }
            }
            Action::Help => {
                self.show(Line::Text(HELP.into()));
                if tty {
                    self.show(Line::Text(KEYS.into()));
                }
            }
        }
    }
}
