//! Where lines go: above the input line on a terminal, or to a script's
//! stdout (errors to stderr); and the prompt.

use std::io::{self, Write};

use crate::app::{App, Ui};
use crate::style::Line;

impl App {
    /// Shows a transcript line where it belongs: above the input line on a
    /// terminal; for a script, stdout (errors on stderr).
    pub fn show(&mut self, line: Line) {
        if self.opts.quiet && matches!(line, Line::Status(_)) {
            return;
        }
        let text = self.style.render(&line, &self.session.nick);
        match &mut self.ui {
            Ui::Tty(t) => {
                if t.screen.print(&text, &t.editor).is_err() {
                    // The terminal is gone (hung up): leave.
                    self.stdin_open = false;
                    self.quit();
                }
            }
            Ui::Script(s) => {
                if matches!(line, Line::Error(_)) {
                    eprintln!("{text}");
                } else if s.stdout_open {
                    let mut out = io::stdout().lock();
                    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                        s.stdout_open = false;
                    }
                }
            }
        }
    }

    /// Waits for a nick typed at the prompt (terminal only).
    pub fn ask_nick(&mut self, prefill: &str) {
        self.asking_nick = true;
        if let Ui::Tty(t) = &mut self.ui {
            let chars: Vec<char> = prefill.chars().collect();
            let n = chars.len();
            t.editor.set(chars, n);
        }
        self.set_prompt();
    }

    pub fn set_prompt(&mut self) {
        let Ui::Tty(t) = &mut self.ui else { return };
        if self.asking_nick {
            t.screen.set_prompt("nick> ".into(), "nick> ");
        } else {
            let nick = &self.session.nick;
            // While reconnecting the prompt says so: what is typed waits.
            let away = if self.reconnect.is_some() {
                " (offline)"
            } else {
                ""
            };
            let plain = format!("{nick}{away}> ");
            let shown = if self.style.color {
                format!("\x1b[1m{nick}\x1b[0m{away}> ")
            } else {
                plain.clone()
            };
            t.screen.set_prompt(shown, &plain);
        }
        self.redraw_input(false);
    }

    /// Draws the input line again (`all`: the whole screen, for Ctrl-L).
    pub fn redraw_input(&mut self, all: bool) {
        if let Ui::Tty(t) = &mut self.ui {
            let _ = if all {
                t.screen.redraw(&t.editor)
            } else {
                t.screen.draw(&t.editor)
            };
        }
    }
}
