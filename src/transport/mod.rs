//! Transports: how each kind of connection carries the core's payloads.
//! Input goes through the transport's decoder before the core sees a
//! payload; output is the core's queue of shared payloads, which the
//! transport frames as it writes them: a header of its own before each
//! payload (4 bytes for the length prefix; next, WebSocket headers, then TLS
//! records), gathered with the shared payloads into one write, so a
//! broadcast is still encoded once whatever its recipients speak.
//!
//! A transport holds no socket: the server gives it the bytes it read and
//! a sink to write to (a socket's `sendmsg`, or memory in the tests).

use std::io::{self, IoSlice};
use std::time::Instant;

use crate::config::Config;
use crate::event::{ClientId, Reason};
use crate::protocol::Core;

pub(crate) mod length_prefix;

use length_prefix::LengthPrefix;

/// Most payloads gathered into one write.
const PAYLOADS_PER_WRITE: usize = 128;
/// Longest header any framing puts before a payload.
pub(crate) const MAX_HEADER: usize = 14;

/// Where a transport writes: takes gathered slices, returns how many bytes
/// it took (fewer than offered when the socket buffer is full).
pub(crate) type Sink<'a> = dyn FnMut(&[IoSlice<'_>]) -> io::Result<usize> + 'a;

/// The framing of one connection.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP: each payload after its 4-byte big-endian length.
    LengthPrefix(LengthPrefix),
}

impl Transport {
    /// A plain TCP connection's transport.
    pub fn length_prefix(cfg: &Config) -> Self {
        Transport::LengthPrefix(LengthPrefix::new(cfg.max_frame_bytes))
    }

    /// Bytes read from the connection: decoded, and handed to the core as
    /// far as it takes them.
    pub fn received(&mut self, core: &mut Core, id: ClientId, bytes: &[u8], now: Instant) {
        match self {
            Transport::LengthPrefix(t) => t.received(core, id, bytes, now),
        }
    }

    /// Hands the core what was decoded but held back (a rate limit), if it
    /// takes it now.
    pub fn resume(&mut self, core: &mut Core, id: ClientId, now: Instant) {
        self.received(core, id, &[], now);
    }

    /// Whether decoded input waits for the core.
    pub fn has_pending_input(&self) -> bool {
        match self {
            Transport::LengthPrefix(t) => t.has_pending_input(),
        }
    }

    /// Writes what the core has queued for `id`, framed, until the queue
    /// is empty (`true`) or the sink takes less than offered (`false`).
    pub fn flush(&mut self, core: &mut Core, id: ClientId, sink: &mut Sink<'_>) -> io::Result<bool> {
        match self {
            Transport::LengthPrefix(_) => write_framed(core, id, &length_prefix::header, sink),
        }
    }

    /// The transport's last bytes before the connection closes, after the
    /// core's last payload (a WebSocket close frame, a TLS close_notify).
    pub fn goodbye(&mut self, _reason: Reason) -> Option<Vec<u8>> {
        match self {
            Transport::LengthPrefix(_) => None,
        }
    }
}

/// Writes the payloads queued for `id`, each after the header `header`
/// writes for its length, in gathered writes of up to
/// [`PAYLOADS_PER_WRITE`] payloads, until the queue is empty (`true`) or
/// the sink takes less than offered (`false`). The queue keeps how far
/// into its first payload's frame the last write got, so a frame cut by a
/// full socket resumes where it stopped.
fn write_framed(
    core: &mut Core,
    id: ClientId,
    header: &dyn Fn(usize, &mut [u8; MAX_HEADER]) -> usize,
    sink: &mut Sink<'_>,
) -> io::Result<bool> {
    let mut headers = [[0u8; MAX_HEADER]; PAYLOADS_PER_WRITE];
    let mut header_lens = [0usize; PAYLOADS_PER_WRITE];
    loop {
        let Some(queue) = core.output(id) else {
            return Ok(true);
        };
        if queue.is_empty() {
            return Ok(true);
        }
        let count = queue.len().min(PAYLOADS_PER_WRITE);
        for (i, payload) in queue.iter().take(count).enumerate() {
            header_lens[i] = header(payload.len(), &mut headers[i]);
        }
        let skip = queue.head_written();
        let mut slices = [IoSlice::new(&[]); 2 * PAYLOADS_PER_WRITE];
        let mut used = 0;
        let mut offered = 0;
        for (i, payload) in queue.iter().take(count).enumerate() {
            let head = &headers[i][..header_lens[i]];
            let start = if i == 0 { skip } else { 0 };
            let (head, body) = if start < head.len() {
                (&head[start..], &payload[..])
            } else {
                (&[][..], &payload[start - head.len()..])
            };
            for part in [head, body] {
                if !part.is_empty() {
                    slices[used] = IoSlice::new(part);
                    used += 1;
                    offered += part.len();
                }
            }
        }
        let written = sink(&slices[..used])?;
        let mut left = written;
        let mut whole = 0;
        let mut head_written = 0;
        for (i, payload) in queue.iter().take(count).enumerate() {
            let start = if i == 0 { skip } else { 0 };
            let rest = header_lens[i] + payload.len() - start;
            if left < rest {
                head_written = start + left;
                break;
            }
            left -= rest;
            whole += 1;
        }
        core.written(id, whole, head_written, written);
        if written < offered {
            return Ok(false);
        }
    }
}
