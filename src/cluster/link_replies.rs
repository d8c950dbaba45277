//! What a link does with each reply and pushed message.

use std::time::Instant;

use super::{write_eval, Expect, Link, ProbeState, Step, SubKind};
use crate::cluster::link_config::Role;
use crate::cluster::link_event::{DownReason, LinkEvent, Phase, PubMessage, Token};
use crate::codec::resp::Reply;

impl Link {
    pub(super) fn on_reply(&mut self, reply: Reply, now: Instant) {
        if self.cfg.role == Role::Subscriber {
            if let Some(msg) = as_message(&reply) {
                return self.on_message(msg, now);
            }
        }
        let Some((what, _)) = self.in_flight.pop_front() else {
            return self.go_down(DownReason::Unexpected("a reply to no command"), now);
        };
        match what {
            Expect::User(token) => self.reply(token, reply),
            Expect::Eval {
                token,
                script,
                tail,
                nargs,
            } if reply.is_error_code("NOSCRIPT") => {
                // Someone flushed the scripts: EVAL loads it again.
                self.stats.noscript += 1;
                let source = self.cfg.scripts[script].source.as_bytes();
                self.outbox.push(Expect::User(token), true, now, |b| {
                    write_eval(b, b"EVAL", source, &tail, nargs)
                });
            }
            Expect::Eval { token, .. } => self.reply(token, reply),
            Expect::Handshake(step) => {
                if let Some(e) = reply.as_error() {
                    return self.go_down(DownReason::Refused(format!("{step:?}: {e}")), now);
                }
                if let Step::Load(i) = step {
                    match reply.as_bytes() {
                        Some(sha) if sha.len() == 40 => self.shas[i] = Some(sha.to_vec()),
                        _ => return self.go_down(DownReason::Unexpected("SCRIPT LOAD answered no SHA"), now),
                    }
                }
                self.handshake_step_done(now);
            }
            Expect::Ping => {
                let pong = reply.as_bytes() == Some(b"PONG")
                    || reply.as_array().and_then(|a| a.first()).and_then(Reply::as_bytes) == Some(b"pong");
                if !pong {
                    self.go_down(DownReason::Unexpected("PING answered no PONG"), now);
                }
            }
            Expect::Sub {
                kind,
                left,
                handshake,
            } => {
                if let Some(e) = reply.as_error() {
                    return self.go_down(DownReason::Refused(format!("{kind:?}: {e}")), now);
                }
                let word = reply.as_array().and_then(|a| a.first()).and_then(Reply::as_bytes);
                if word != Some(kind.word()) {
                    return self.go_down(
                        DownReason::Unexpected("a subscription confirmation of another kind"),
                        now,
                    );
                }
                if kind == SubKind::Subscribe && !handshake {
                    let channel = reply.as_array().and_then(|a| a.get(1)).and_then(Reply::as_bytes);
                    self.events
                        .push_back(LinkEvent::Subscribed(channel.unwrap_or_default().to_vec()));
                }
                if left > 1 {
                    let rest = Expect::Sub {
                        kind,
                        left: left - 1,
                        handshake,
                    };
                    let due = self.connected_at.max(now) + self.cfg.reply_timeout;
                    self.in_flight.push_front((rest, due));
                } else if handshake {
                    self.handshake_step_done(now);
                }
            }
        }
    }

    fn reply(&mut self, token: Token, reply: Reply) {
        self.stats.replies += 1;
        self.events.push_back(LinkEvent::Reply { token, reply });
    }

    fn handshake_step_done(&mut self, now: Instant) {
        self.handshake_left = self.handshake_left.saturating_sub(1);
        if self.handshake_left > 0 {
            return;
        }
        match &self.cfg.probe {
            Some(p) if self.cfg.role == Role::Subscriber => {
                self.probe_nonce += 1;
                let mut payload = p.prefix.clone();
                payload.push(b' ');
                payload.extend_from_slice(self.cfg.client_name.as_bytes());
                payload.push(b' ');
                payload.extend_from_slice(self.probe_nonce.to_string().as_bytes());
                self.probe = ProbeState::Wanted(payload);
            }
            _ => self.become_ready(now),
        }
    }

    fn become_ready(&mut self, now: Instant) {
        self.attempt = 0;
        self.enter(Phase::Ready, now);
        self.stats.down_since = None;
        self.stats.readies += 1;
        self.events.push_back(LinkEvent::Ready);
    }

    fn on_message(&mut self, msg: PubMessage, now: Instant) {
        if let Some(p) = &self.cfg.probe {
            let ours = msg.channel == p.channel
                && msg.payload.len() > p.prefix.len()
                && msg.payload.starts_with(&p.prefix)
                && msg.payload[p.prefix.len()] == b' ';
            if ours {
                // An older connection's probe is ignored.
                if matches!(&self.probe, ProbeState::Sent(want, _) if *want == msg.payload) {
                    self.probe = ProbeState::Idle;
                    self.become_ready(now);
                }
                return;
            }
        }
        self.stats.messages += 1;
        self.events.push_back(LinkEvent::Message(msg));
    }
}

/// `message`/`pmessage` pushes in RESP2's subscribed mode.
fn as_message(reply: &Reply) -> Option<PubMessage> {
    let items = reply.as_array()?;
    let bytes = |i: usize| items.get(i).and_then(Reply::as_bytes).map(<[u8]>::to_vec);
    match (items.first()?.as_bytes()?, items.len()) {
        (b"message", 3) => Some(PubMessage {
            channel: bytes(1)?,
            pattern: None,
            payload: bytes(2)?,
        }),
        (b"pmessage", 4) => Some(PubMessage {
            pattern: Some(bytes(1)?),
            channel: bytes(2)?,
            payload: bytes(3)?,
        }),
        _ => None,
    }
}
