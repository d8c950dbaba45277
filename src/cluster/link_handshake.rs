//! What a link sends first on every connection.

use std::time::Instant;

use super::{write_sub, Expect, Link, Step, SubKind};
use crate::cluster::link_config::Role;
use crate::cluster::outbox::Outbox;
use crate::codec::resp;

impl Link {
    /// AUTH, SELECT and CLIENT SETNAME as the config asks, then SCRIPT LOAD
    /// of every script (commands) or the subscriptions (subscriber); a PING
    /// if that is nothing, so every connection proves itself once.
    pub(super) fn handshake(&self, now: Instant) -> Outbox<Expect> {
        let mut hs = Outbox::new();
        let url = &self.cfg.url;
        if let Some(pass) = &url.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &url.user {
                args.push(user.as_bytes());
            }
            args.push(pass.as_bytes());
            hs.push(Expect::Handshake(Step::Auth), false, now, |b| {
                resp::write_command(b, &args)
            });
        }
        if url.db != 0 {
            let db = url.db.to_string();
            hs.push(Expect::Handshake(Step::Select), false, now, |b| {
                resp::write_command(b, &[b"SELECT", db.as_bytes()])
            });
        }
        if !self.cfg.client_name.is_empty() {
            let name = self.cfg.client_name.as_bytes();
            hs.push(Expect::Handshake(Step::SetName), false, now, |b| {
                resp::write_command(b, &[b"CLIENT", b"SETNAME", name])
            });
        }
        match self.cfg.role {
            Role::Commands => {
                for (i, s) in self.cfg.scripts.iter().enumerate() {
                    hs.push(Expect::Handshake(Step::Load(i)), false, now, |b| {
                        resp::write_command(b, &[b"SCRIPT", b"LOAD", s.source.as_bytes()])
                    });
                }
            }
            Role::Subscriber => {
                for (kind, set) in [
                    (SubKind::Subscribe, &self.subs),
                    (SubKind::PSubscribe, &self.psubs),
                ] {
                    if !set.is_empty() {
                        let expect = Expect::Sub {
                            kind,
                            left: set.len(),
                            handshake: true,
                        };
                        hs.push(expect, false, now, |b| write_sub(b, kind, set.iter()));
                    }
                }
            }
        }
        if hs.front().is_none() {
            hs.push(Expect::Handshake(Step::Ping), false, now, |b| {
                resp::write_command(b, &[b"PING"])
            });
        }
        hs
    }
}
