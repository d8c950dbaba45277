//! What a resumable session (protocol 1.2) keeps so that its client can
//! resume it on a new connection: its token, how many of its frames were
//! written whole, a bounded tail of the last ones written (by reference: the
//! same shared payloads the queues held, so a broadcast is still encoded
//! once), and, while it is parked, the frames queued for it.
//!
//! Frames are counted, never numbered: nothing is written into a payload.
//! The client counts the frames it read whole since its first `welcome`;
//! the server counts the frames it wrote whole (`written`) and knows how
//! many more wait in the queue, so frame `n` of the session is found by
//! position: the tail holds frames `written - tail.len() + 1 ..= written`,
//! and the queue the ones after.

use std::collections::VecDeque;

use base64::Engine;

use super::queue::OutQueue;
use crate::message::Payload;

/// Bytes of randomness in a token: 128 bits, from the operating system.
const TOKEN_BYTES: usize = 16;

/// A session's secret: 128 random bits, as 22 characters of unpadded
/// base64url.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Token(Box<str>);

impl Token {
    /// A fresh token from the operating system's random source
    /// (`getrandom(2)`); `None` if it cannot give one (then the session is
    /// not resumable: no guessable token is ever handed out).
    pub fn generate() -> Option<Token> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::getrandom(&mut bytes).ok()?;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Some(Token(text.into()))
    }

    /// The token as the client sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `offered` is this token, in time that does not depend on
    /// where they differ (only on the length, which is public: every token
    /// has 22 characters), so a guesser learns nothing from timing.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for Token {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a resume cannot be served: the frames after the client's count are
/// no longer all held, or it claims more than was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gap;

/// The resumable state of one session.
#[derive(Debug)]
pub(super) struct Session {
    token: Token,
    /// Frames at the front of the connection's queue that are not the
    /// session's (answers before the `welcome`, and the `welcome` itself):
    /// when written they are not counted.
    pub uncounted: usize,
    /// The session's frames written whole, across every connection.
    written: u64,
    /// The last frames written, oldest first: frame `written - len + 1`
    /// comes first.
    tail: VecDeque<Payload>,
    /// What the tail holds, as the queue cap counts it.
    tail_bytes: usize,
    /// The tail keeps at least this many bytes (when that much was
    /// written), and less than this plus one frame.
    retain: usize,
    /// While parked: the session's frames not written yet (what its last
    /// connection had not written whole, then what came since).
    pub held: OutQueue,
    /// While parked: the most `held` may count before the session ends as
    /// a slow consumer (what it held when it parked plus `max_queue_bytes`).
    pub held_cap: usize,
    /// After a resume: how far the connection's queue may go past
    /// `max_queue_bytes` because of the replayed backlog; it shrinks as the
    /// backlog is written.
    pub allowance: usize,
}

impl Session {
    /// A session whose connection queue holds `uncounted` frames that are
    /// not its own (the `welcome` last).
    pub fn new(token: Token, retain: usize, uncounted: usize) -> Self {
        Session {
            token,
            uncounted,
            written: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            retain,
            held: OutQueue::default(),
            held_cap: 0,
            allowance: 0,
        }
    }

    /// The current token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// A resume spent the token: this one replaces it.
    pub fn set_token(&mut self, token: Token) {
        self.token = token;
    }

    /// The transport wrote `payload` whole: counted and kept in the tail,
    /// unless it is one of the connection's own frames.
    pub fn wrote(&mut self, payload: Payload) {
        if self.uncounted > 0 {
            self.uncounted -= 1;
            return;
        }
        self.written += 1;
        self.tail_bytes += OutQueue::cost(&payload);
        self.tail.push_back(payload);
        // Keep at least `retain` bytes: drop the oldest only while the rest
        // still covers it.
        while let Some(front) = self.tail.front() {
            let cost = OutQueue::cost(front);
            if self.tail_bytes - cost < self.retain {
                break;
            }
            self.tail_bytes -= cost;
            self.tail.pop_front();
        }
    }

    /// Bytes held for a resume now: the tail, and the frames queued while
    /// parked.
    pub fn retained_bytes(&self) -> usize {
        self.tail_bytes + self.held.counted_bytes()
    }

    /// Whether a client that read `received` frames can resume, the session
    /// having `pending` frames after the written ones (in its queue, or
    /// held while parked).
    pub fn check(&self, received: u64, pending: usize) -> Result<(), Gap> {
        let first_held = self.written - self.tail.len() as u64;
        let sent = self.written + pending as u64;
        if received < first_held || received > sent {
            return Err(Gap);
        }
        Ok(())
    }

    /// Resumes after `received` frames (checked with [`check`](Self::check)
    /// first): returns the frames to replay, `received + 1` onwards (from
    /// the tail, then `pending`), in order. The client has every frame up
    /// to `received`, so the tail is emptied: the replayed frames are
    /// unwritten again, and counted when they are written anew.
    pub fn replay(&mut self, received: u64, pending: OutQueue) -> Vec<Payload> {
        let first_held = self.written - self.tail.len() as u64;
        let skip = (received - first_held) as usize;
        let mut frames: Vec<Payload> = self
            .tail
            .drain(..)
            .chain(pending.into_payloads())
            .skip(skip)
            .collect();
        frames.shrink_to_fit();
        self.tail_bytes = 0;
        self.written = received;
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8, len: usize) -> Payload {
        vec![n; len].into()
    }

    fn session(retain: usize) -> Session {
        Session::new(Token::generate().expect("the OS gives randomness"), retain, 1)
    }

    #[test]
    fn tokens_are_fresh_and_compared_whole() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(&a.as_str()[..21]));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn the_welcome_is_not_counted_and_the_tail_keeps_at_least_retain() {
        // Frames of 6 bytes, counted with their overhead; keep at least
        // two and a bit.
        let cost = 6 + crate::FRAME_OVERHEAD;
        let mut s = session(2 * cost + 1);
        s.wrote(frame(0, 6)); // the welcome
        for n in 1..=5 {
            s.wrote(frame(n, 6));
        }
        assert_eq!(s.written, 5);
        // 3 frames cover it; 2 would not.
        assert_eq!(s.tail.len(), 3);
        assert_eq!(s.tail[0][0], 3);
        assert_eq!(s.retained_bytes(), 3 * cost);
    }

    #[test]
    fn resume_checks_the_count_and_replays_what_follows_it() {
        let mut s = session(2 * (6 + crate::FRAME_OVERHEAD) + 1);
        s.wrote(frame(0, 6));
        for n in 1..=5 {
            s.wrote(frame(n, 6));
        }
        let mut pending = OutQueue::default();
        pending.push(frame(6, 6));
        pending.push(frame(7, 6));
        // Held: frames 3..=5 in the tail, 6 and 7 pending.
        assert_eq!(s.check(1, 2), Err(Gap));
        assert_eq!(s.check(8, 2), Err(Gap));
        for ok in 2..=7 {
            assert_eq!(s.check(ok, 2), Ok(()));
        }
        let frames = s.replay(3, pending);
        let firsts: Vec<u8> = frames.iter().map(|f| f[0]).collect();
        assert_eq!(firsts, [4, 5, 6, 7]);
        assert_eq!(s.written, 3);
        assert_eq!(s.retained_bytes(), 0);
        // Nothing is held now but what will be written again.
        assert_eq!(s.check(2, 4), Err(Gap));
        assert_eq!(s.check(3, 4), Ok(()));
    }

    #[test]
    fn a_count_past_the_written_frames_skips_into_the_pending_ones() {
        let mut s = session(100);
        s.uncounted = 0;
        s.wrote(frame(1, 1));
        let mut pending = OutQueue::default();
        pending.push(frame(2, 1));
        pending.push(frame(3, 1));
        assert_eq!(s.check(2, 2), Ok(()));
        let frames = s.replay(2, pending);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0][0], 3);
    }
}
