//! Two calls for the backplane: a `PUBLISH` whose message is a header and
//! a shared payload written back to back, and cancelling chosen commands
//! that wait.

use std::time::Instant;

use super::{token_of, Expect, Link};
use crate::cluster::link_config::Role;
use crate::cluster::link_event::{Failure, LinkEvent, SendError, Token};
use crate::codec::resp;

impl Link {
    /// Queues `PUBLISH channel HEAD+BODY` on a command link: the message is
    /// the two parts written back to back, so a caller's header and a
    /// shared payload are copied once, straight into the output.
    pub fn publish(
        &mut self,
        now: Instant,
        channel: &[u8],
        head: &[u8],
        body: &[u8],
    ) -> Result<Token, SendError> {
        let bulk_len = |n: usize| 5 + digits(n) + n;
        let message = head.len() + body.len();
        let len = 4 + bulk_len(7) + bulk_len(channel.len()) + bulk_len(message);
        self.check_room(Role::Commands, len)?;
        let token = self.token();
        self.outbox.push(Expect::User(token), true, now, |b| {
            resp::write_array_len(b, 3);
            resp::write_bulk(b, b"PUBLISH");
            resp::write_bulk(b, channel);
            b.push(b'$');
            b.extend_from_slice(message.to_string().as_bytes());
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(head);
            b.extend_from_slice(body);
            b.extend_from_slice(b"\r\n");
        });
        Ok(token)
    }

    /// Fails, as [`Failure::Cancelled`], every command of the caller's not
    /// yet written whose token `which` picks (a partly written one goes
    /// on): for commands whose answer would come too late to matter.
    pub fn cancel_where(&mut self, mut which: impl FnMut(Token) -> bool) {
        let events = &mut self.events;
        self.outbox.remove_user_where(
            |e| token_of(&e.what).is_some_and(&mut which),
            |e| {
                if let Some(token) = token_of(&e.what) {
                    events.push_back(LinkEvent::Failed {
                        token,
                        why: Failure::Cancelled,
                    });
                }
            },
        );
    }
}

/// How many decimal digits `n` has.
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}
