//! What every benchmark message carries at the start of its text: who sent
//! it, its sequence number, and when (a monotonic clock of this process),
//! as fixed-width hex so it needs no escaping in JSON or RESP and parses
//! without allocating.

/// Hex digits of a stamp: sender (8), sequence (16), send time in ns (16).
pub const STAMP_LEN: usize = 40;

/// The identity and send time of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending connection among the senders.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u64,
    /// Nanoseconds since the generator's clock base.
    pub sent_ns: u64,
}

impl Stamp {
    /// Appends the text of a message of `size` bytes (at least
    /// [`STAMP_LEN`]): the stamp, then padding.
    pub fn write_text(&self, out: &mut Vec<u8>, size: usize) {
        hex(out, u64::from(self.sender), 8);
        hex(out, self.seq, 16);
        hex(out, self.sent_ns, 16);
        out.resize(out.len() + size.saturating_sub(STAMP_LEN), b'x');
    }

    /// The stamp at the start of a message text.
    pub fn parse(text: &[u8]) -> Option<Stamp> {
        let t = text.get(..STAMP_LEN)?;
        Some(Stamp {
            sender: u32::try_from(unhex(&t[..8])?).ok()?,
            seq: unhex(&t[8..24])?,
            sent_ns: unhex(&t[24..40])?,
        })
    }
}

/// Length of a message text of `size` bytes as actually sent.
pub fn text_len(size: usize) -> usize {
    size.max(STAMP_LEN)
}

fn hex(out: &mut Vec<u8>, v: u64, digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(DIGITS[((v >> (i * 4)) & 0xf) as usize]);
    }
}

fn unhex(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let s = Stamp {
            sender: 7,
            seq: 123_456,
            sent_ns: u64::MAX - 5,
        };
        let mut out = Vec::new();
        s.write_text(&mut out, 64);
        assert_eq!(out.len(), 64);
        assert_eq!(Stamp::parse(&out), Some(s));
        assert_eq!(Stamp::parse(&out[..39]), None);
    }
}
