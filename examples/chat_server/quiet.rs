//! At most so many log lines about one client per second: a client that
//! joins and parts rooms in a loop cannot grow the log without bound. What
//! is held back is counted and summarized in one line when its second is
//! over (or when the client leaves).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat::ClientId;

const WINDOW: Duration = Duration::from_secs(1);

pub struct Quiet {
    per_second: u32,
    clients: HashMap<ClientId, Window>,
}

struct Window {
    start: Instant,
    shown: u32,
    held: u64,
    /// Who the held lines were about, for the summary.
    name: String,
}

impl Quiet {
    pub fn new(per_second: u32) -> Quiet {
        Quiet {
            per_second,
            clients: HashMap::new(),
        }
    }

    /// Whether a line about `client` may be logged now (else it is counted).
    pub fn allow(&mut self, client: ClientId, name: &str, now: Instant) -> bool {
        let w = self.clients.entry(client).or_insert_with(|| Window {
            start: now,
            shown: 0,
            held: 0,
            name: String::new(),
        });
        if now.duration_since(w.start) >= WINDOW {
            summarize(client, w);
            w.start = now;
            w.shown = 0;
        }
        w.name = name.to_string();
        if w.shown < self.per_second {
            w.shown += 1;
            true
        } else {
            w.held += 1;
            false
        }
    }

    /// The client left: its summary now, and its window goes.
    pub fn forget(&mut self, client: ClientId) {
        if let Some(mut w) = self.clients.remove(&client) {
            summarize(client, &mut w);
        }
    }

    /// Summaries of the windows that are over.
    pub fn flush(&mut self, now: Instant) {
        for (client, w) in &mut self.clients {
            if w.held > 0 && now.duration_since(w.start) >= WINDOW {
                summarize(*client, w);
            }
        }
    }

    /// When the next summary is due, if any lines are held.
    pub fn next_due(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter(|w| w.held > 0)
            .map(|w| w.start + WINDOW)
            .min()
    }
}

fn summarize(client: ClientId, w: &mut Window) {
    if w.held > 0 {
        let lines = if w.held == 1 { "line" } else { "lines" };
        log::info!(
            "client {client}{}: suppressed {} {lines} (more than the limit in one second)",
            w.name,
            w.held
        );
        w.held = 0;
    }
}
