//! The protocols the generator speaks, behind one small interface: the
//! chat protocol of PROTOCOL.md, Redis pub/sub over RESP3, and the bare
//! frames of the relay that is the benchmarks' floor (`crate::relay`). Decoding takes
//! a fast path for message deliveries (the only frames that come in
//! millions) and parses everything else fully.

use crate::stamp::{text_len, Stamp};

/// Which server is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Our server (PROTOCOL.md).
    Chat,
    /// Redis pub/sub (SUBSCRIBE/PUBLISH over RESP3).
    Redis,
    /// The floor, `bench/relay.c`: every frame copied, unparsed, to every
    /// other client (no hello; `fanout` and `idle` only).
    Relay,
    /// No server: raw loopback TCP (the `bandwidth` scenario only).
    Tcp,
}

/// One decoded frame or reply, as far as the generator cares.
#[derive(Debug)]
pub enum Incoming {
    /// A benchmark message delivered to this connection.
    Delivery(Stamp),
    /// A ping answered; the id is the ping's send time in ns.
    Pong(u64),
    /// A step of the handshake done (welcome, HELLO reply, subscription).
    Ready,
    /// Someone came online (chat only): their nick.
    Online(String),
    /// An error from the server.
    Error(String),
    /// Anything else (presence, PUBLISH counts, ...).
    Other,
}

/// Splits one complete frame off the front of `buf` (`None`: incomplete);
/// returns how many bytes it took and what it was.
pub fn next(target: Target, buf: &[u8]) -> Option<(usize, Incoming)> {
    match target {
        Target::Chat => chat::next(buf),
        Target::Redis => redis::next(buf),
        Target::Relay => crate::relay::next(buf),
        Target::Tcp => None,
    }
}

/// Appends what a new connection sends first; returns how many
/// [`Incoming::Ready`] replies mean it is set up.
pub fn handshake(target: Target, out: &mut Vec<u8>, name: &str, subscribe: Option<&str>) -> usize {
    match target {
        Target::Chat => {
            chat::frame(out, |p| {
                p.extend_from_slice(br#"{"type":"hello","nick":""#);
                p.extend_from_slice(name.as_bytes());
                p.extend_from_slice(br#""}"#);
            });
            1
        }
        Target::Redis => {
            redis::command(out, &[b"HELLO", b"3"]);
            match subscribe {
                Some(channel) => {
                    redis::command(out, &[b"SUBSCRIBE", channel.as_bytes()]);
                    2
                }
                None => 1,
            }
        }
        // Nothing to say: the relay knows no hello.
        Target::Relay | Target::Tcp => 0,
    }
}

/// Appends one message of `size` text bytes: to everyone (`to` is `None`;
/// Redis: the channel `all`) or to one client by name (Redis: its channel).
pub fn message(target: Target, out: &mut Vec<u8>, to: Option<&str>, stamp: Stamp, size: usize) {
    match target {
        Target::Chat => chat::frame(out, |p| {
            match to {
                None => p.extend_from_slice(br#"{"type":"all","text":""#),
                Some(nick) => {
                    p.extend_from_slice(br#"{"type":"msg","to":""#);
                    p.extend_from_slice(nick.as_bytes());
                    p.extend_from_slice(br#"","text":""#);
                }
            }
            stamp.write_text(p, size);
            p.extend_from_slice(br#""}"#);
        }),
        Target::Redis => {
            let channel = to.unwrap_or(FANOUT_CHANNEL).as_bytes();
            out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
            redis::bulk(out, channel);
            out.push(b'$');
            redis::decimal(out, text_len(size));
            out.extend_from_slice(b"\r\n");
            stamp.write_text(out, size);
            out.extend_from_slice(b"\r\n");
        }
        // The relay sends every frame to everyone: `to` cannot be honoured
        // (the generator refuses unicast for it).
        Target::Relay => crate::relay::message(out, stamp, size),
        Target::Tcp => {}
    }
}

/// Appends a ping whose id is `id`.
pub fn ping(target: Target, out: &mut Vec<u8>, id: u64) {
    match target {
        Target::Chat => chat::frame(out, |p| {
            p.extend_from_slice(format!(r#"{{"type":"ping","id":{id}}}"#).as_bytes())
        }),
        Target::Redis => redis::command(out, &[b"PING", id.to_string().as_bytes()]),
        // No pong from a relay (the generator refuses rtt for it).
        Target::Relay | Target::Tcp => {}
    }
}

/// The Redis channel every fan-out subscriber listens on.
pub const FANOUT_CHANNEL: &str = "all";

mod chat {
    use super::Incoming;
    use crate::stamp::Stamp;

    /// Appends one length-prefixed frame whose payload `fill` writes.
    pub fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        fill(out);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn next(buf: &[u8]) -> Option<(usize, Incoming)> {
        let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
        let payload = buf.get(4..4 + len)?;
        Some((4 + len, classify(payload)))
    }

    fn classify(p: &[u8]) -> Incoming {
        // The server writes `type` first (serde's internally tagged enum);
        // anything laid out differently still takes the full parse below.
        if p.starts_with(br#"{"type":"all","#) || p.starts_with(br#"{"type":"msg","#) {
            if let Some(stamp) = find(p, br#""text":""#).and_then(|i| Stamp::parse(&p[i..])) {
                return Incoming::Delivery(stamp);
            }
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(p) else {
            return Incoming::Error(format!("unparsable frame {}", String::from_utf8_lossy(p)));
        };
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        match v["type"].as_str().unwrap_or_default() {
            "welcome" => Incoming::Ready,
            "pong" => Incoming::Pong(v["id"].as_u64().unwrap_or(0)),
            "presence" if v["state"] == "online" && v.get("room").is_none() => Incoming::Online(text("nick")),
            "all" | "msg" => match Stamp::parse(text("text").as_bytes()) {
                Some(stamp) => Incoming::Delivery(stamp),
                None => Incoming::Other,
            },
            "error" => Incoming::Error(format!("{} {}", text("code"), text("message"))),
            _ => Incoming::Other,
        }
    }

    /// Index just past the first occurrence of `needle` in `hay`.
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + needle.len())
    }
}

mod redis {
    use super::Incoming;
    use crate::stamp::Stamp;

    /// Appends a command as a RESP array of bulk strings.
    pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            bulk(out, a);
        }
    }

    pub fn bulk(out: &mut Vec<u8>, s: &[u8]) {
        out.push(b'$');
        decimal(out, s.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(s);
        out.extend_from_slice(b"\r\n");
    }

    pub fn next(buf: &[u8]) -> Option<(usize, Incoming)> {
        let (kind, line, mut at) = header(buf, 0)?;
        let what = match kind {
            b'>' | b'*' => {
                let n = int(line)?;
                let mut first: [Option<&[u8]>; 3] = [None; 3];
                for i in 0..usize::try_from(n).unwrap_or(0) {
                    let (e, end) = element(buf, at)?;
                    at = end;
                    if let Some(slot) = first.get_mut(i) {
                        *slot = e;
                    }
                }
                match first {
                    [Some(b"message"), _, Some(payload)] if n == 3 => match Stamp::parse(payload) {
                        Some(stamp) => Incoming::Delivery(stamp),
                        None => Incoming::Other,
                    },
                    [Some(b"subscribe"), ..] => Incoming::Ready,
                    _ => Incoming::Other,
                }
            }
            b'$' => {
                let len = usize::try_from(int(line)?).ok()?;
                let body = buf.get(at..at + len + 2)?;
                at += len + 2;
                let id = std::str::from_utf8(&body[..len])
                    .ok()
                    .and_then(|s| s.parse().ok());
                id.map_or(Incoming::Other, Incoming::Pong)
            }
            b'%' => {
                // The HELLO reply: a map, read past whole.
                for _ in 0..2 * int(line)? {
                    at = skip(buf, at)?;
                }
                Incoming::Ready
            }
            b'-' => Incoming::Error(String::from_utf8_lossy(line).into_owned()),
            _ => {
                at = skip(buf, 0)?;
                Incoming::Other
            }
        };
        Some((at, what))
    }

    /// Appends `n` in decimal, without allocating (once per PUBLISH).
    pub fn decimal(out: &mut Vec<u8>, n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[i..]);
    }

    /// The type byte, the rest of the first line, and where the next begins.
    fn header(buf: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
        let kind = *buf.get(at)?;
        let end = at + 1 + buf.get(at + 1..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((kind, &buf[at + 1..end], end + 2))
    }

    fn int(line: &[u8]) -> Option<i64> {
        std::str::from_utf8(line).ok()?.parse().ok()
    }

    /// One element of an array: a bulk string's bytes (`None` for other
    /// kinds, which are skipped) and where the next begins.
    fn element(buf: &[u8], at: usize) -> Option<(Option<&[u8]>, usize)> {
        let (kind, line, body) = header(buf, at)?;
        if kind == b'$' {
            let len = usize::try_from(int(line)?).ok()?;
            buf.get(body..body + len + 2)?;
            return Some((Some(&buf[body..body + len]), body + len + 2));
        }
        Some((None, skip(buf, at)?))
    }

    /// Where the value starting at `at` ends (`None`: incomplete).
    fn skip(buf: &[u8], at: usize) -> Option<usize> {
        let (kind, line, mut next) = header(buf, at)?;
        let items = match kind {
            b'$' | b'=' | b'!' => {
                let len = int(line)?;
                if len < 0 {
                    return Some(next);
                }
                let end = next + len as usize + 2;
                buf.get(..end)?;
                return Some(end);
            }
            b'*' | b'>' | b'~' => int(line)?,
            b'%' | b'|' => 2 * int(line)?,
            _ => 0,
        };
        for _ in 0..items.max(0) {
            next = skip(buf, next)?;
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            sender: 1,
            seq: 2,
            sent_ns: 3,
        }
    }

    #[test]
    fn chat_delivery_and_others() {
        let mut buf = Vec::new();
        chat::frame(&mut buf, |p| {
            p.extend_from_slice(br#"{"type":"all","from":"s0","text":""#);
            stamp().write_text(p, 64);
            p.extend_from_slice(br#""}"#);
        });
        chat::frame(&mut buf, |p| p.extend_from_slice(br#"{"type":"pong","id":42}"#));
        let (n, m) = next(Target::Chat, &buf).unwrap();
        assert!(matches!(m, Incoming::Delivery(s) if s == stamp()));
        let (n2, m) = next(Target::Chat, &buf[n..]).unwrap();
        assert!(matches!(m, Incoming::Pong(42)));
        assert_eq!(n + n2, buf.len());
        assert!(next(Target::Chat, &buf[..n - 1]).is_none());
    }

    #[test]
    fn redis_push_and_replies() {
        let mut text = Vec::new();
        stamp().write_text(&mut text, 64);
        let mut buf = b">3\r\n$7\r\nmessage\r\n$3\r\nall\r\n$64\r\n".to_vec();
        buf.extend_from_slice(&text);
        buf.extend_from_slice(b"\r\n:12\r\n$2\r\n99\r\n>3\r\n$9\r\nsubscribe\r\n$3\r\nall\r\n:1\r\n");
        buf.extend_from_slice(b"%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n");
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((n, m)) = next(Target::Redis, &buf[at..]) {
            at += n;
            got.push(format!("{m:?}"));
        }
        assert_eq!(at, buf.len(), "{got:?}");
        assert_eq!(got.len(), 5);
        assert!(got[0].starts_with("Delivery"));
        assert_eq!(got[2], "Pong(99)");
        assert_eq!(got[3], "Ready");
        assert_eq!(got[4], "Ready");
        assert!(next(Target::Redis, &buf[..20]).is_none());
    }
}
