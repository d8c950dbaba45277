//! The input line being typed: text, cursor, kills and history, with the
//! emacs keys readline made everybody's habit. No I/O here.

/// Most lines kept in the history.
const HISTORY_MAX: usize = 1000;

#[derive(Default)]
pub struct Editor {
    /// The line, as characters (the cursor moves by characters).
    buf: Vec<char>,
    /// Where the next character goes: 0 ..= buf.len().
    cursor: usize,
    /// Lines entered before, oldest first.
    history: Vec<String>,
    /// The history entry shown, if Up was pressed.
    browsing: Option<usize>,
    /// The line being typed when Up was first pressed, back on Down.
    draft: Vec<char>,
    /// What the last Ctrl-U/W/K removed, for Ctrl-Y.
    killed: Vec<char>,
}

impl Editor {
    pub fn text(&self) -> &[char] {
        &self.buf
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Replaces the line (a prefilled nick, a completion), cursor at `cursor`.
    pub fn set(&mut self, text: Vec<char>, cursor: usize) {
        self.cursor = cursor.min(text.len());
        self.buf = text;
    }

    /// Takes the line out for sending; with `remember`, it goes into the
    /// history (unless it repeats the last entry).
    pub fn take(&mut self, remember: bool) -> String {
        let line: String = std::mem::take(&mut self.buf).into_iter().collect();
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if remember && !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_MAX {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    pub fn insert(&mut self, c: char) {
        self.buf.insert(self.cursor, c);
        self.cursor += 1;
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.buf.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.buf.len();
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.buf.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.buf.len() {
            self.buf.remove(self.cursor);
        }
    }

    /// Ctrl-U: everything before the cursor.
    pub fn kill_to_start(&mut self) {
        self.killed = self.buf.drain(..self.cursor).collect();
        self.cursor = 0;
    }

    /// Ctrl-K: everything from the cursor on.
    pub fn kill_to_end(&mut self) {
        self.killed = self.buf.drain(self.cursor..).collect();
    }

    /// Ctrl-W: the word before the cursor (and the spaces after it), as
    /// readline's unix-word-rubout.
    pub fn kill_word_back(&mut self) {
        let start = self.word_start_before(self.cursor, char::is_whitespace);
        self.killed = self.buf.drain(start..self.cursor).collect();
        self.cursor = start;
    }

    /// Alt-D: the word after the cursor.
    pub fn kill_word_forward(&mut self) {
        let end = self.word_end_after(self.cursor);
        self.killed = self.buf.drain(self.cursor..end).collect();
    }

    /// Ctrl-Y: puts back what was killed last.
    pub fn yank(&mut self) {
        let killed = self.killed.clone();
        let n = killed.len();
        self.buf.splice(self.cursor..self.cursor, killed);
        self.cursor += n;
    }

    /// Ctrl-Left / Alt-B.
    pub fn word_left(&mut self) {
        self.cursor = self.word_start_before(self.cursor, |c| !c.is_alphanumeric());
    }

    /// Ctrl-Right / Alt-F.
    pub fn word_right(&mut self) {
        self.cursor = self.word_end_after(self.cursor);
    }

    fn word_start_before(&self, mut at: usize, sep: impl Fn(char) -> bool) -> usize {
        while at > 0 && sep(self.buf[at - 1]) {
            at -= 1;
        }
        while at > 0 && !sep(self.buf[at - 1]) {
            at -= 1;
        }
        at
    }

    fn word_end_after(&self, mut at: usize) -> usize {
        let sep = |c: char| !c.is_alphanumeric();
        while at < self.buf.len() && sep(self.buf[at]) {
            at += 1;
        }
        while at < self.buf.len() && !sep(self.buf[at]) {
            at += 1;
        }
        at
    }

    /// Up: the previous history entry; the line being typed is kept.
    pub fn history_prev(&mut self) {
        let at = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.buf.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(at);
        self.show(self.history[at].chars().collect());
    }

    /// Down: the next entry, and after the newest the line being typed.
    pub fn history_next(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.show(self.history[i + 1].chars().collect());
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.show(draft);
        }
    }

    fn show(&mut self, text: Vec<char>) {
        self.cursor = text.len();
        self.buf = text;
    }
}
