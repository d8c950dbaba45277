//! Host authority: whether registrations wait for the host's approval and
//! for how long, whether messages wait for its verdict, and the messages
//! held meanwhile. Nothing calls back into the host: it learns through
//! events and answers with calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::event::{ClientId, HeldMessage};

/// A message waiting for the host's verdict.
#[derive(Debug)]
pub(super) struct Held {
    /// Who sent it.
    pub sender: ClientId,
    /// The client's payload, as it came.
    pub payload: Arc<[u8]>,
}

/// The host's switches and what waits for it.
#[derive(Debug)]
pub(super) struct Authority {
    /// How long a `hello` waits for approval, when registrations need it.
    approval: Option<Duration>,
    /// Whether `msg`, `all` and `room` wait for the host.
    intercept: bool,
    held: HashMap<u64, Held>,
    next_ticket: u64,
}

impl Authority {
    pub fn new(cfg: &Config) -> Self {
        Authority {
            approval: cfg.approve_registrations.then_some(cfg.approval_timeout),
            intercept: cfg.intercept_messages,
            held: HashMap::new(),
            next_ticket: 1,
        }
    }

    /// How long a registration waits for the host; `None` when it does not.
    pub fn approval_timeout(&self) -> Option<Duration> {
        self.approval
    }

    /// Whether routable messages wait for the host.
    pub fn intercepts(&self) -> bool {
        self.intercept
    }

    /// Keeps a payload for the host; returns what its event carries.
    pub fn hold(&mut self, sender: ClientId, payload: Arc<[u8]>) -> HeldMessage {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.held.insert(
            ticket,
            Held {
                sender,
                payload: payload.clone(),
            },
        );
        HeldMessage::new(ticket, payload)
    }

    /// Takes a held message out, for release or discard.
    pub fn take(&mut self, ticket: u64) -> Option<Held> {
        self.held.remove(&ticket)
    }

    /// Held messages follow a session that moved to a new connection.
    pub fn rekey(&mut self, old: ClientId, new: ClientId) {
        for held in self.held.values_mut() {
            if held.sender == old {
                held.sender = new;
            }
        }
    }

    /// Forgets what a client that left was holding.
    pub fn forget_sender(&mut self, id: ClientId) {
        if !self.held.is_empty() {
            self.held.retain(|_, h| h.sender != id);
        }
    }
}
