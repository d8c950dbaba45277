//! Per-client flood control: token buckets on frames and on bytes.
//!
//! A client over its budget is not read from until tokens return, so the
//! flood backs up into its own TCP window (nothing is dropped); the server
//! tells it once per episode with `rate_limited`, and drops it if it stays
//! over for longer than the grace period.

use std::time::{Duration, Instant};

use crate::config::Config;

/// The configured rates, from which each connection gets its own
/// [`Limiter`].
#[derive(Debug, Clone)]
pub(crate) struct RateLimits {
    frames: Option<u64>,
    bytes: Option<u64>,
    grace: Duration,
}

impl RateLimits {
    pub fn new(cfg: &Config) -> Self {
        RateLimits {
            frames: cfg.rate_limit_frames,
            bytes: cfg.rate_limit_bytes,
            grace: cfg.rate_limit_grace,
        }
    }

    /// A new connection's limiter; `None` when nothing is limited.
    pub fn limiter(&self, now: Instant) -> Option<Limiter> {
        Limiter::new(self.frames, self.bytes, now)
    }

    /// How long a client may stay over its limit before it is dropped.
    pub fn grace(&self) -> Duration {
        self.grace
    }
}

/// Tokens refill continuously at `rate` per second, up to one second's
/// worth (the burst a client may send at once).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u64, now: Instant) -> Self {
        TokenBucket {
            rate: rate_per_sec as f64,
            tokens: rate_per_sec as f64,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
    }

    /// Whole tokens available now.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.max(0.0) as u64
    }

    /// Takes `n` tokens (the balance may go below zero: a read can bring
    /// more than was asked for).
    pub fn take(&mut self, n: u64, now: Instant) {
        self.refill(now);
        self.tokens -= n as f64;
    }

    /// The balance at `now`, without recording the refill.
    fn peek(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.rate)
    }

    /// When at least one whole token will be there; `None` if it is now.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        let tokens = self.peek(now);
        if tokens >= 1.0 {
            return None;
        }
        Some(now + Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }

    fn is_full(&self, now: Instant) -> bool {
        self.peek(now) >= self.rate
    }

    /// Whether the bucket has been full for a whole second: the client
    /// sent nothing for a second after it refilled. (A client whose input
    /// the server holds back is read again as soon as one token returns,
    /// so it never gets there.)
    fn idle_a_second_past_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= 2.0 * self.rate
    }
}

/// Both buckets of one client and the state of its current episode.
#[derive(Debug, Clone)]
pub struct Limiter {
    frames: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    /// Start of the current run of throttling; cleared after a calm spell
    /// (buckets full again).
    over_since: Option<Instant>,
    /// Whether this episode's `rate_limited` was sent.
    warned: bool,
}

/// What the hub should do after checking a limiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget.
    Fine,
    /// Newly over budget: tell the client.
    Warn,
    /// Still over budget, already told.
    Throttled,
    /// Over budget for longer than the grace period: drop it.
    Drop,
}

impl Limiter {
    /// A limiter for the given rates (`None`: that dimension is unlimited).
    /// Returns `None` when both are unlimited.
    pub fn new(frames_per_sec: Option<u64>, bytes_per_sec: Option<u64>, now: Instant) -> Option<Self> {
        if frames_per_sec.is_none() && bytes_per_sec.is_none() {
            return None;
        }
        Some(Limiter {
            frames: frames_per_sec.map(|r| TokenBucket::new(r, now)),
            bytes: bytes_per_sec.map(|r| TokenBucket::new(r, now)),
            over_since: None,
            warned: false,
        })
    }

    /// Most bytes worth reading now (at least 1 when reading is allowed).
    pub fn read_allowance(&self, now: Instant) -> usize {
        match &self.bytes {
            Some(b) => b.peek(now).max(1.0) as usize,
            None => usize::MAX,
        }
    }

    /// Ends the current episode if the client sent nothing for a second
    /// after its buckets refilled: it is calm, however long ago it was over.
    /// Called before anything is taken, so a new burst is judged as a new
    /// episode (checking only after the burst would find the buckets
    /// drained and blame the old one).
    fn forgive_if_calm(&mut self, now: Instant) {
        let buckets = [&self.frames, &self.bytes];
        if self.over_since.is_some()
            && buckets
                .into_iter()
                .flatten()
                .all(|b| b.idle_a_second_past_full(now))
        {
            self.over_since = None;
            self.warned = false;
        }
    }

    /// Counts bytes just read.
    pub fn took_bytes(&mut self, n: usize, now: Instant) {
        self.forgive_if_calm(now);
        if let Some(b) = &mut self.bytes {
            b.take(n as u64, now);
        }
    }

    /// Takes a token for one frame if there is one.
    #[cfg(test)]
    pub fn try_frame(&mut self, now: Instant) -> bool {
        let ok = self.frame_allowed(now);
        if ok {
            self.took_frame(now);
        }
        ok
    }

    /// Whether a token for one more frame is there (none is taken).
    pub fn frame_allowed(&mut self, now: Instant) -> bool {
        self.forgive_if_calm(now);
        self.frames.as_mut().is_none_or(|f| f.available(now) >= 1)
    }

    /// Takes the token for a frame just handled.
    pub fn took_frame(&mut self, now: Instant) {
        if let Some(f) = &mut self.frames {
            f.take(1, now);
        }
    }

    /// When the client may be read again; `None` if now.
    pub fn blocked_until(&self, now: Instant) -> Option<Instant> {
        [&self.frames, &self.bytes]
            .into_iter()
            .flatten()
            .filter_map(|b| b.ready_at(now))
            .max()
    }

    /// Where the client stands, given the grace period for staying over.
    pub fn check(&mut self, now: Instant, grace: Duration) -> Verdict {
        if self.blocked_until(now).is_none() {
            self.warned = false;
            if [&self.frames, &self.bytes]
                .into_iter()
                .flatten()
                .all(|b| b.is_full(now))
            {
                self.over_since = None;
            }
            return Verdict::Fine;
        }
        let since = *self.over_since.get_or_insert(now);
        if now.saturating_duration_since(since) > grace {
            Verdict::Drop
        } else if !self.warned {
            self.warned = true;
            Verdict::Warn
        } else {
            Verdict::Throttled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_up_to_one_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert_eq!(b.available(t0), 10);
        b.take(10, t0);
        assert_eq!(b.available(t0), 0);
        let at = b.ready_at(t0).unwrap();
        assert!(at > t0 && at <= t0 + Duration::from_millis(101));
        assert_eq!(b.available(t0 + Duration::from_millis(500)), 5);
        assert_eq!(b.available(t0 + Duration::from_secs(60)), 10);
    }

    #[test]
    fn limiter_warns_per_episode_and_drops_a_steady_flooder() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(2);
        let mut l = Limiter::new(Some(2), None, t0).unwrap();
        assert!(l.try_frame(t0) && l.try_frame(t0));
        assert!(!l.try_frame(t0));
        assert_eq!(l.check(t0, grace), Verdict::Warn);
        assert_eq!(l.check(t0, grace), Verdict::Throttled);
        // A flooder takes every token as soon as it returns: each episode
        // warns, and with no calm spell it is dropped after the grace.
        let mut verdicts = Vec::new();
        for step in 1..=5 {
            let t = t0 + Duration::from_millis(500 * step);
            assert_eq!(l.check(t, grace), Verdict::Fine);
            assert!(l.try_frame(t) && !l.try_frame(t));
            verdicts.push(l.check(t, grace));
        }
        assert_eq!(
            verdicts,
            [
                Verdict::Warn,
                Verdict::Warn,
                Verdict::Warn,
                Verdict::Warn,
                Verdict::Drop
            ]
        );
    }

    #[test]
    fn a_calm_spell_forgives() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(2);
        let mut l = Limiter::new(Some(2), Some(100), t0).unwrap();
        l.took_bytes(150, t0);
        assert_eq!(l.check(t0, grace), Verdict::Warn);
        // Quiet long enough for both buckets to fill: the record is clean.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(l.check(t1, grace), Verdict::Fine);
        l.took_bytes(150, t1);
        assert_eq!(l.check(t1, grace), Verdict::Warn);
        assert_eq!(
            l.check(t1 + Duration::from_millis(400), grace),
            Verdict::Throttled
        );
    }

    #[test]
    fn a_quiet_spell_forgives_even_without_a_check_in_between() {
        // Over once, then silent for longer than the grace: the next burst
        // is a new episode (warned), not the old one gone on (dropped).
        let t0 = Instant::now();
        let grace = Duration::from_secs(1);
        let mut l = Limiter::new(Some(2), None, t0).unwrap();
        assert!(l.try_frame(t0) && l.try_frame(t0) && !l.try_frame(t0));
        assert_eq!(l.check(t0, grace), Verdict::Warn);
        let t1 = t0 + Duration::from_secs(3);
        assert!(l.try_frame(t1) && l.try_frame(t1) && !l.try_frame(t1));
        assert_eq!(l.check(t1, grace), Verdict::Warn);
    }

    #[test]
    fn no_limits_no_limiter() {
        assert!(Limiter::new(None, None, Instant::now()).is_none());
    }
}
