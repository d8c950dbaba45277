//! The chat frames one node relays to others through Redis: a header of
//! words separated by single spaces (no node id, nick or room can hold a
//! space), then the frame exactly as the sender's node encoded it for its
//! own clients, so each node copies it once and shares it among its local
//! recipients.
//!
//! | published on | message |
//! | --- | --- |
//! | the recipient's node channel | `msg NODE FROM TO {"type":"msg",...}` |
//! | the all channel | `all NODE FROM {"type":"all",...}` |
//! | the room's channel | `room NODE FROM ROOM {"type":"room",...}` |
//!
//! NODE is the sender's node, so a node skips its own frames coming back
//! on the channels it subscribes to as well. A word this version does not
//! know is skipped (a later version adds kinds, never changes these).

/// A relayed frame, borrowed from the message that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay<'a> {
    /// A `msg` for one user of the receiving node.
    Msg {
        /// The sender's node.
        node: &'a str,
        /// The sender.
        from: &'a str,
        /// The recipient.
        to: &'a str,
        /// The frame.
        frame: &'a [u8],
    },
    /// An `all`.
    All {
        /// The sender's node.
        node: &'a str,
        /// The sender.
        from: &'a str,
        /// The frame.
        frame: &'a [u8],
    },
    /// A `room` message.
    Room {
        /// The sender's node.
        node: &'a str,
        /// The sender.
        from: &'a str,
        /// The room.
        room: &'a str,
        /// The frame.
        frame: &'a [u8],
    },
}

/// The header of a `msg` (the frame follows it).
pub fn msg_head(node: &str, from: &str, to: &str) -> Vec<u8> {
    head(&["msg", node, from, to])
}

/// The header of an `all`.
pub fn all_head(node: &str, from: &str) -> Vec<u8> {
    head(&["all", node, from])
}

/// The header of a `room` message.
pub fn room_head(node: &str, from: &str, room: &str) -> Vec<u8> {
    head(&["room", node, from, room])
}

fn head(words: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for w in words {
        debug_assert!(!w.is_empty() && !w.contains(' '), "{w:?}");
        out.extend_from_slice(w.as_bytes());
        out.push(b' ');
    }
    out
}

impl<'a> Relay<'a> {
    /// Reads a relayed frame; `None` for anything else (directory events,
    /// unknown kinds, a header that is not words).
    pub fn parse(message: &'a [u8]) -> Option<Relay<'a>> {
        let mut rest = message;
        let mut word = || -> Option<&'a str> {
            let at = rest.iter().position(|&b| b == b' ')?;
            let w = std::str::from_utf8(&rest[..at]).ok().filter(|w| !w.is_empty())?;
            rest = &rest[at + 1..];
            Some(w)
        };
        let relay = match word()? {
            "msg" => {
                let (node, from, to) = (word()?, word()?, word()?);
                Relay::Msg {
                    node,
                    from,
                    to,
                    frame: &[],
                }
            }
            "all" => {
                let (node, from) = (word()?, word()?);
                Relay::All {
                    node,
                    from,
                    frame: &[],
                }
            }
            "room" => {
                let (node, from, room) = (word()?, word()?, word()?);
                Relay::Room {
                    node,
                    from,
                    room,
                    frame: &[],
                }
            }
            _ => return None,
        };
        if rest.is_empty() {
            return None;
        }
        Some(relay.with_frame(rest))
    }

    fn with_frame(self, f: &'a [u8]) -> Relay<'a> {
        match self {
            Relay::Msg { node, from, to, .. } => Relay::Msg {
                node,
                from,
                to,
                frame: f,
            },
            Relay::All { node, from, .. } => Relay::All { node, from, frame: f },
            Relay::Room { node, from, room, .. } => Relay::Room {
                node,
                from,
                room,
                frame: f,
            },
        }
    }

    /// The sender's node.
    pub fn node(&self) -> &'a str {
        match self {
            Relay::Msg { node, .. } | Relay::All { node, .. } | Relay::Room { node, .. } => node,
        }
    }

    /// The frame.
    pub fn frame(&self) -> &'a [u8] {
        match self {
            Relay::Msg { frame, .. } | Relay::All { frame, .. } | Relay::Room { frame, .. } => frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(head: Vec<u8>, frame: &[u8]) -> Vec<u8> {
        [head, frame.to_vec()].concat()
    }

    #[test]
    fn every_kind_reads_back_with_its_frame_untouched() {
        let frame = br#"{"type":"msg","from":"a","to":"b","text":"two  spaces "}"#;
        let m = message(msg_head("n-1", "alice", "Bob"), frame);
        assert_eq!(
            Relay::parse(&m),
            Some(Relay::Msg {
                node: "n-1",
                from: "alice",
                to: "Bob",
                frame
            })
        );
        let m = message(all_head("n-1", "alice"), b"{}");
        assert_eq!(
            Relay::parse(&m).map(|r| (r.node(), r.frame())),
            Some(("n-1", &b"{}"[..]))
        );
        let m = message(room_head("n2", "alice", "#Rust"), b"{ }");
        assert!(matches!(
            Relay::parse(&m),
            Some(Relay::Room {
                room: "#Rust",
                frame: b"{ }",
                ..
            })
        ));
    }

    #[test]
    fn anything_else_is_not_a_relay() {
        for m in [
            &b"dir 7 online n1 alice"[..],
            b"probe n1 3",
            b"msg n1 alice bob ",
            b"msg n1 alice",
            b"all  alice {}",
            b"future n1 {}",
            b"",
        ] {
            assert_eq!(Relay::parse(m), None, "{:?}", String::from_utf8_lossy(m));
        }
    }
}
