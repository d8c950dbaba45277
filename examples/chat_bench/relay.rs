//! What the generator says to the floor, `bench/relay.c`: length-prefixed
//! frames the relay copies, unread, to every other client. There is no
//! hello and no reply of its own, so the payloads are the generator's
//! private protocol: a message is its text alone (the stamp, then
//! padding), and the set-up ends with a probe `online NAME` from the last
//! client, which every other client getting it proves the relay had
//! accepted them all.

use crate::stamp::Stamp;
use crate::wire::Incoming;

/// What the probe payload starts with.
const PROBE: &[u8] = b"online ";

/// Appends one frame whose payload `fill` writes (the chat protocol's
/// framing: a 4-byte big-endian length, then the payload).
pub fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    fill(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends one message: its text, nothing around it.
pub fn message(out: &mut Vec<u8>, stamp: Stamp, size: usize) {
    frame(out, |p| stamp.write_text(p, size));
}

/// Appends the probe that ends the set-up, sent by the last client.
pub fn probe(out: &mut Vec<u8>, name: &str) {
    frame(out, |p| {
        p.extend_from_slice(PROBE);
        p.extend_from_slice(name.as_bytes());
    });
}

/// Splits one complete frame off the front of `buf`.
pub fn next(buf: &[u8]) -> Option<(usize, Incoming)> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let payload = buf.get(4..4 + len)?;
    let what = match payload.strip_prefix(PROBE) {
        Some(name) => Incoming::Online(String::from_utf8_lossy(name).into_owned()),
        None => Stamp::parse(payload).map_or(Incoming::Other, Incoming::Delivery),
    };
    Some((4 + len, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_the_probe() {
        let stamp = Stamp {
            sender: 3,
            seq: 9,
            sent_ns: 27,
        };
        let mut buf = Vec::new();
        message(&mut buf, stamp, 64);
        probe(&mut buf, "r7");
        assert_eq!(buf.len(), 4 + 64 + 4 + 9);
        let (n, m) = next(&buf).unwrap();
        assert!(matches!(m, Incoming::Delivery(s) if s == stamp));
        let (n2, m) = next(&buf[n..]).unwrap();
        assert!(matches!(m, Incoming::Online(ref name) if name == "r7"));
        assert_eq!(n + n2, buf.len());
        assert!(next(&buf[..n - 1]).is_none());
    }
}
