//! The commands a link has encoded and not yet written: one contiguous
//! buffer (what the socket is offered) and, beside it, where each command
//! starts, what its reply means and when it was queued.

use std::collections::VecDeque;
use std::time::Instant;

/// One command in the buffer.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Its encoded length.
    pub len: usize,
    /// What its reply means.
    pub what: T,
    /// Whether it is the caller's (kept across a reconnect, counted against
    /// the bound) or the link's own (handshake, ping: made again).
    pub user: bool,
    /// When it was queued.
    pub enqueued: Instant,
}

/// Encoded commands waiting for the socket.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    buf: Vec<u8>,
    /// The first byte not yet written.
    start: usize,
    /// Commands not wholly written; the head may be partly written.
    entries: VecDeque<Entry<T>>,
    /// Bytes of the head already written.
    head_written: usize,
    /// Unwritten bytes of the caller's commands.
    user_bytes: usize,
}

impl<T> Outbox<T> {
    pub fn new() -> Self {
        Outbox {
            buf: Vec::new(),
            start: 0,
            entries: VecDeque::new(),
            head_written: 0,
            user_bytes: 0,
        }
    }

    /// Appends one command that `write` encodes.
    pub fn push(&mut self, what: T, user: bool, now: Instant, write: impl FnOnce(&mut Vec<u8>)) {
        let before = self.buf.len();
        write(&mut self.buf);
        let len = self.buf.len() - before;
        if user {
            self.user_bytes += len;
        }
        self.entries.push_back(Entry {
            len,
            what,
            user,
            enqueued: now,
        });
    }

    /// The bytes to offer the socket.
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Unwritten bytes of the caller's commands.
    pub fn user_bytes(&self) -> usize {
        self.user_bytes
    }

    /// How many of the caller's commands wait (any part unwritten).
    pub fn user_commands(&self) -> usize {
        self.entries.iter().filter(|e| e.user).count()
    }

    /// How many commands wait (any part unwritten).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The oldest command not wholly written.
    pub fn front(&self) -> Option<&Entry<T>> {
        self.entries.front()
    }

    /// `n` bytes were written: hands over every command now wholly written.
    pub fn wrote(&mut self, n: usize, mut done: impl FnMut(Entry<T>)) {
        let n = n.min(self.buf.len() - self.start);
        self.start += n;
        let mut left = n;
        while left > 0 {
            let head = self.entries.front().expect("written bytes belong to a command");
            let rest = head.len - self.head_written;
            let take = rest.min(left);
            if head.user {
                self.user_bytes -= take;
            }
            left -= take;
            if take == rest {
                self.head_written = 0;
                done(self.entries.pop_front().expect("the head"));
            } else {
                self.head_written += take;
            }
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Puts `first`'s commands before every waiting one. Only between
    /// connections: nothing may be partly written.
    pub fn prepend(&mut self, mut first: Outbox<T>) {
        assert_eq!(self.head_written, 0, "prepend with a command partly written");
        first.buf.extend_from_slice(&self.buf[self.start..]);
        first.entries.extend(self.entries.drain(..));
        first.user_bytes += self.user_bytes;
        *self = first;
    }

    /// After a connection is lost: a partly written command is handed to
    /// `lost` (its rest can never be sent), the others to `keep`, which
    /// says whether each stays queued for the next connection.
    pub fn reset(&mut self, mut lost: impl FnMut(Entry<T>), mut keep: impl FnMut(&Entry<T>) -> bool) {
        self.rebuild(|e, partly| {
            if partly {
                lost(e);
                None
            } else {
                keep(&e).then_some(e)
            }
        });
    }

    /// Removes unwritten commands from the front while `expired` says so,
    /// handing each to `gone`. A partly written head stays.
    pub fn pop_front_while(
        &mut self,
        mut expired: impl FnMut(&Entry<T>) -> bool,
        mut gone: impl FnMut(Entry<T>),
    ) {
        while self.head_written == 0 && self.entries.front().is_some_and(&mut expired) {
            let e = self.entries.pop_front().expect("the head");
            self.start += e.len;
            if e.user {
                self.user_bytes -= e.len;
            }
            gone(e);
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Removes every wholly unwritten command of the caller's, handing each
    /// to `gone`; a partly written one stays, so the stream stays whole.
    pub fn remove_user(&mut self, gone: impl FnMut(Entry<T>)) {
        self.remove_user_where(|_| true, gone);
    }

    /// Like [`remove_user`](Self::remove_user), for the commands `which`
    /// picks.
    pub fn remove_user_where(
        &mut self,
        mut which: impl FnMut(&Entry<T>) -> bool,
        mut gone: impl FnMut(Entry<T>),
    ) {
        self.rebuild(|e, partly| {
            if partly || !e.user || !which(&e) {
                Some(e)
            } else {
                gone(e);
                None
            }
        });
    }

    /// Rebuilds the buffer with the commands `f` keeps (it is told whether
    /// each is partly written; only the head can be).
    fn rebuild(&mut self, mut f: impl FnMut(Entry<T>, bool) -> Option<Entry<T>>) {
        let old = std::mem::replace(self, Outbox::new());
        let mut at = old.start;
        for (i, e) in old.entries.into_iter().enumerate() {
            let written = if i == 0 { old.head_written } else { 0 };
            let unsent = e.len - written;
            let bytes = &old.buf[at..at + unsent];
            at += unsent;
            if let Some(e) = f(e, written > 0) {
                if written > 0 {
                    self.head_written = written;
                }
                if e.user {
                    self.user_bytes += unsent;
                }
                self.buf.extend_from_slice(bytes);
                self.entries.push_back(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(now: Instant) -> Outbox<u32> {
        let mut o = Outbox::new();
        o.push(1, true, now, |b| b.extend_from_slice(b"aaaa"));
        o.push(2, false, now, |b| b.extend_from_slice(b"bb"));
        o.push(3, true, now, |b| b.extend_from_slice(b"ccc"));
        o
    }

    #[test]
    fn hands_over_commands_as_they_are_written() {
        let now = Instant::now();
        let mut o = outbox(now);
        assert_eq!((o.unsent(), o.user_bytes()), (&b"aaaabbccc"[..], 7));
        let mut done = Vec::new();
        o.wrote(3, |e| done.push(e.what));
        assert!(done.is_empty());
        o.wrote(3, |e| done.push(e.what));
        assert_eq!(done, [1, 2]);
        assert_eq!((o.unsent(), o.user_bytes()), (&b"ccc"[..], 3));
    }

    #[test]
    fn a_reset_loses_the_partly_written_head_and_keeps_what_is_asked() {
        let now = Instant::now();
        let mut o = outbox(now);
        o.wrote(1, |_| unreachable!());
        let mut lost = Vec::new();
        o.reset(|e| lost.push(e.what), |e| e.user);
        assert_eq!(lost, [1]);
        assert_eq!(
            (o.unsent(), o.user_bytes(), o.user_commands()),
            (&b"ccc"[..], 3, 1)
        );
        let mut first = Outbox::new();
        first.push(9, false, now, |b| b.extend_from_slice(b"hs"));
        o.prepend(first);
        assert_eq!(o.unsent(), b"hsccc");
    }

    #[test]
    fn removing_the_callers_commands_keeps_the_stream_whole() {
        let now = Instant::now();
        let mut o = outbox(now);
        o.wrote(2, |_| unreachable!());
        let mut gone = Vec::new();
        o.remove_user(|e| gone.push(e.what));
        assert_eq!(gone, [3]);
        assert_eq!((o.unsent(), o.user_bytes()), (&b"aabb"[..], 2));
        let mut done = Vec::new();
        o.wrote(4, |e| done.push(e.what));
        assert_eq!(done, [1, 2]);
        let mut o = outbox(now);
        o.pop_front_while(|e| e.what < 3, |_| {});
        assert_eq!((o.unsent(), o.user_bytes()), (&b"ccc"[..], 3));
    }
}
