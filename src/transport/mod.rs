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
use crate::protocol::{Chunk, Core, LogFraming, Output, Written};

pub(crate) mod length_prefix;
pub(crate) mod tls;
pub(crate) mod websocket;

use length_prefix::LengthPrefix;
use tls::Tls;
use websocket::WebSocket;

/// Most payloads gathered into one write: a whole round's worth for a
/// client in most cases (one `sendmsg` instead of several; at 256 messages
/// in flight per sender, fan-out gained a third in deliveries per CPU-second
/// over 128), and two iovecs each stays within `IOV_MAX` (1024).
const PAYLOADS_PER_WRITE: usize = 512;
/// Longest header any framing puts before a payload.
pub(crate) const MAX_HEADER: usize = 14;

/// Where a transport writes: takes gathered slices, returns how many bytes
/// it took (fewer than offered when the socket buffer is full).
pub(crate) type Sink<'a> = dyn FnMut(&[IoSlice<'_>]) -> io::Result<usize> + 'a;

/// How payloads are framed on a connection.
#[derive(Debug)]
pub(crate) enum Framing {
    /// Each payload after its 4-byte big-endian length.
    LengthPrefix(LengthPrefix),
    /// Each payload one WebSocket text message.
    WebSocket(Box<WebSocket>),
}

/// One connection's transport: its framing, inside TLS or not.
#[derive(Debug)]
pub(crate) struct Transport {
    framing: Framing,
    tls: Option<Box<Tls>>,
}

impl Transport {
    /// A plain TCP connection's transport.
    pub fn length_prefix(cfg: &Config) -> Self {
        Transport {
            framing: Framing::LengthPrefix(LengthPrefix::new(cfg.max_frame_bytes)),
            tls: None,
        }
    }

    /// A connection just upgraded to WebSocket; `response` (the 101) is
    /// written first.
    pub fn websocket(cfg: &Config, response: Vec<u8>) -> Self {
        Transport {
            framing: Framing::WebSocket(Box::new(WebSocket::new(cfg.max_frame_bytes, response))),
            tls: None,
        }
    }

    /// The same framing inside a TLS session whose handshake is done.
    pub fn inside(mut self, tls: Tls) -> Self {
        self.tls = Some(Box::new(tls));
        self
    }

    /// Bytes read from the connection: decrypted if TLS, decoded, and
    /// handed to the core as far as it takes them.
    pub fn received(&mut self, core: &mut Core, id: ClientId, bytes: &mut [u8], now: Instant) {
        let Some(tls) = &mut self.tls else {
            return self.framing.received(core, id, bytes, now);
        };
        let result = tls.receive(bytes);
        self.framing.received(core, id, tls.plaintext(), now);
        match result {
            Ok(received) if received.peer_closed => core.peer_gone(id, now),
            Ok(_) => {}
            Err(_) => core.transport_failed(id, now),
        }
        core.transport_holds(id, tls.buffered());
    }

    /// What the connection sent right after its handshake, already out of
    /// TLS (the plaintext that came with the handshake's last flight, or
    /// the bytes after a WebSocket upgrade request): decoded and handed to
    /// the core as far as it takes them, never fed to TLS again.
    pub fn received_after_handshake(
        &mut self,
        core: &mut Core,
        id: ClientId,
        plaintext: &mut [u8],
        now: Instant,
    ) {
        if !plaintext.is_empty() {
            self.framing.received(core, id, plaintext, now);
        }
        if let Some(tls) = &self.tls {
            if tls.peer_closed() {
                // close_notify came with the handshake's end.
                core.peer_gone(id, now);
            }
            core.transport_holds(id, tls.buffered());
        }
    }

    /// Hands the core what was decoded but held back (a rate limit), if it
    /// takes it now.
    pub fn resume(&mut self, core: &mut Core, id: ClientId, now: Instant) {
        self.framing.received(core, id, &mut [], now);
    }

    /// Whether decoded input waits for the core.
    pub fn has_pending_input(&self) -> bool {
        match &self.framing {
            Framing::LengthPrefix(t) => t.has_pending_input(),
            Framing::WebSocket(t) => t.has_pending_input(),
        }
    }

    /// Whether the transport has bytes of its own to write (TLS records,
    /// WebSocket control frames), whatever the core's queue holds.
    pub fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
            || matches!(&self.framing, Framing::WebSocket(ws) if ws.wants_write())
    }

    /// Writes what the core has queued for `id`, framed (and encrypted),
    /// until everything is out (`true`) or the socket takes less than
    /// offered (`false`).
    pub fn flush(&mut self, core: &mut Core, id: ClientId, sink: &mut Sink<'_>) -> io::Result<bool> {
        let Some(tls) = &mut self.tls else {
            return self.framing.flush(core, id, sink);
        };
        let done = loop {
            if !tls.write_records(sink)? {
                break false;
            }
            let before = tls.buffered();
            let mut into_session = |slices: &[IoSlice<'_>]| Ok(tls.send(slices));
            let all = self.framing.flush(core, id, &mut into_session)?;
            if tls.buffered() == before && !tls.wants_write() {
                break all;
            }
        };
        core.transport_holds(id, tls.buffered());
        Ok(done)
    }

    /// The transport's last bytes before the connection closes, after the
    /// core's last payload: a WebSocket close frame, a TLS close_notify.
    pub fn goodbye(&mut self, reason: Reason) -> Option<Vec<u8>> {
        let last = match &mut self.framing {
            Framing::LengthPrefix(_) => Vec::new(),
            Framing::WebSocket(ws) => ws.goodbye(reason),
        };
        match &mut self.tls {
            Some(tls) => Some(tls.seal_goodbye(&last)),
            None => (!last.is_empty()).then_some(last),
        }
    }
}

impl Framing {
    fn received(&mut self, core: &mut Core, id: ClientId, bytes: &mut [u8], now: Instant) {
        match self {
            Framing::LengthPrefix(t) => t.received(core, id, bytes, now),
            Framing::WebSocket(t) => t.received(core, id, bytes, now),
        }
    }

    fn flush(&mut self, core: &mut Core, id: ClientId, sink: &mut Sink<'_>) -> io::Result<bool> {
        match self {
            Framing::LengthPrefix(_) => {
                write_framed(core, id, length_prefix::header, LogFraming::LengthPrefix, sink)
            }
            Framing::WebSocket(ws) => ws.flush(core, id, sink),
        }
    }
}

/// Writes the payloads queued for `id`, each after the header `header`
/// writes for its length, in gathered writes of up to
/// [`PAYLOADS_PER_WRITE`] entries, until the queue is empty (`true`) or
/// the sink takes less than offered (`false`). A run of the round's log
/// goes out as its frames lie there in `framing` (the one `header`
/// writes), one slice. The queue keeps how far into its first frame the
/// last write got, so a frame cut by a full socket resumes where it
/// stopped.
pub(crate) fn write_framed(
    core: &mut Core,
    id: ClientId,
    header: impl Fn(usize, &mut [u8; MAX_HEADER]) -> usize + Copy,
    framing: LogFraming,
    sink: &mut Sink<'_>,
) -> io::Result<bool> {
    loop {
        let step = core.write_out(id, |queue| write_some(queue, header, framing, sink));
        match step {
            None | Some(Ok(Step::Done)) => return Ok(true),
            Some(Ok(Step::Blocked)) => return Ok(false),
            Some(Ok(Step::More)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

/// Where one gathered write left a queue.
enum Step {
    /// Everything was offered and taken: the queue is empty.
    Done,
    /// The sink took less than offered.
    Blocked,
    /// All of one batch was taken, and more waits.
    More,
}

/// One gathered write from the front of a queue, in the batch size that
/// fits what waits.
fn write_some(
    queue: Output<'_>,
    header: impl Fn(usize, &mut [u8; MAX_HEADER]) -> usize + Copy,
    framing: LogFraming,
    sink: &mut Sink<'_>,
) -> io::Result<(Option<Written>, Step)> {
    // The headers and slices live on the stack in arrays sized for the
    // batch: arrays for the largest batch (27 KiB, zeroed on every call)
    // cost more than the write itself when a round queues a few small
    // payloads per client, as a fan-out does (2.4x the user-space
    // instructions per delivery at 100 clients).
    let waiting = queue.entries();
    if waiting == 0 {
        return Ok((None, Step::Done));
    }
    if waiting == 1 {
        let first = queue.chunks(framing).next();
        if let Some(Chunk::Run(payloads, framed)) = first {
            // What a round's fan-out leaves in a client's queue: one slice
            // of the log, no headers to build or frames to stage.
            let skip = queue.head_written();
            let offered = framed.len() - skip;
            let written = sink(&[IoSlice::new(&framed[skip..])])?;
            let (whole, head_written) = if written == offered {
                (payloads.len(), 0)
            } else {
                let frames = payloads
                    .iter()
                    .map(|p| header(p.len(), &mut [0; MAX_HEADER]) + p.len());
                progress(frames, skip, written)
            };
            let step = if written == offered {
                Step::Done
            } else {
                Step::Blocked
            };
            let wrote = Written {
                whole,
                head_written,
                wire_bytes: written,
            };
            return Ok((Some(wrote), step));
        }
    }
    let ((wrote, taken), batch) = if waiting <= SMALL_BATCH {
        let step = write_batch::<SMALL_BATCH, { 2 * SMALL_BATCH }>(queue, header, framing, sink)?;
        (step, SMALL_BATCH)
    } else if waiting <= MEDIUM_BATCH {
        let step = write_batch::<MEDIUM_BATCH, { 2 * MEDIUM_BATCH }>(queue, header, framing, sink)?;
        (step, MEDIUM_BATCH)
    } else {
        let step =
            write_batch::<PAYLOADS_PER_WRITE, { 2 * PAYLOADS_PER_WRITE }>(queue, header, framing, sink)?;
        (step, PAYLOADS_PER_WRITE)
    };
    let step = match (taken, waiting <= batch) {
        (false, _) => Step::Blocked,
        (true, true) => Step::Done,
        (true, false) => Step::More,
    };
    Ok((Some(wrote), step))
}

/// Frames (header and payload) up to this long are copied into one
/// staging buffer per write instead of being gathered as two slices each.
/// 64 B fan-out to 100 clients: two iovecs per frame cost the kernel more
/// than the copy costs here.
const COPY_FRAMES_UP_TO: usize = 512;
/// The staging buffer is kept between writes up to this capacity.
const STAGE_KEEP: usize = 256 * 1024;

thread_local! {
    /// The staging buffer of small frames, reused from write to write.
    static STAGE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Batch sizes below [`PAYLOADS_PER_WRITE`] with arrays of their own.
const SMALL_BATCH: usize = 8;
const MEDIUM_BATCH: usize = 64;

/// One gathered write of up to `N` entries from the front of a queue
/// (which holds at least one), in up to `SLICES` (`2 * N`: a header and a
/// body each, or a run and the staged frames before it) slices; `false`
/// if the sink took less than offered.
fn write_batch<const N: usize, const SLICES: usize>(
    queue: Output<'_>,
    header: impl Fn(usize, &mut [u8; MAX_HEADER]) -> usize,
    framing: LogFraming,
    sink: &mut Sink<'_>,
) -> io::Result<(Written, bool)> {
    let mut headers = [[0u8; MAX_HEADER]; N];
    let mut header_lens = [0usize; N];
    let skip = queue.head_written();
    const { assert!(SLICES == 2 * N) };
    let mut slices = [IoSlice::new(&[]); SLICES];
    // The unwritten part of a frame: its header, its body.
    fn unwritten<'a>(head: &'a [u8], payload: &'a [u8], start: usize) -> (&'a [u8], &'a [u8]) {
        if start < head.len() {
            (&head[start..], payload)
        } else {
            (&[], &payload[start - head.len()..])
        }
    }
    // Small frames are copied, header and body, into one staging buffer,
    // so that a run of them is one slice instead of two per frame: fewer
    // iovecs for the kernel to walk (and for TLS to gather), as many bytes.
    let mut stage = STAGE.take();
    stage.clear();
    let mut count = 0;
    let mut frames = 0;
    for (i, item) in queue.chunks(framing).take(N).enumerate() {
        count += 1;
        let Chunk::One(payload) = item else {
            if let Chunk::Run(payloads, _) = item {
                frames += payloads.len();
            }
            continue;
        };
        frames += 1;
        header_lens[i] = header(payload.len(), &mut headers[i]);
        let (head, body) = unwritten(
            &headers[i][..header_lens[i]],
            payload,
            if i == 0 { skip } else { 0 },
        );
        if head.len() + body.len() <= COPY_FRAMES_UP_TO {
            stage.extend_from_slice(head);
            stage.extend_from_slice(body);
        }
    }
    let mut used = 0;
    let mut offered = 0;
    let mut staged = 0..0;
    for (i, item) in queue.chunks(framing).take(count).enumerate() {
        let start = if i == 0 { skip } else { 0 };
        let parts = match item {
            Chunk::One(payload) => {
                let (head, body) = unwritten(&headers[i][..header_lens[i]], payload, start);
                let len = head.len() + body.len();
                if len <= COPY_FRAMES_UP_TO {
                    staged.end += len;
                    continue;
                }
                [head, body]
            }
            Chunk::Run(_, framed) => [&framed[start..], &[][..]],
        };
        if !staged.is_empty() {
            slices[used] = IoSlice::new(&stage[staged.clone()]);
            used += 1;
            offered += staged.len();
            staged = staged.end..staged.end;
        }
        for part in parts {
            if !part.is_empty() {
                slices[used] = IoSlice::new(part);
                used += 1;
                offered += part.len();
            }
        }
    }
    if !staged.is_empty() {
        slices[used] = IoSlice::new(&stage[staged.clone()]);
        used += 1;
        offered += staged.len();
    }
    let written = sink(&slices[..used]);
    if stage.capacity() <= STAGE_KEEP {
        STAGE.set(stage);
    }
    let written = written?;
    if written == offered {
        // All of it (the usual case): no need to find where it stopped.
        let wrote = Written {
            whole: frames,
            head_written: 0,
            wire_bytes: written,
        };
        return Ok((wrote, true));
    }
    // Where it stopped: whole frames, and how far into the next.
    let header = &header;
    let frames = queue
        .chunks(framing)
        .take(count)
        .enumerate()
        .flat_map(|(i, item)| {
            let (payloads, one) = match item {
                Chunk::One(payload) => (std::slice::from_ref(payload), Some(header_lens[i])),
                Chunk::Run(payloads, _) => (payloads, None),
            };
            payloads
                .iter()
                .map(move |p| one.unwrap_or_else(|| header(p.len(), &mut [0; MAX_HEADER])) + p.len())
        });
    let (whole, head_written) = progress(frames, skip, written);
    let wrote = Written {
        whole,
        head_written,
        wire_bytes: written,
    };
    Ok((wrote, written >= offered))
}

/// How far a write of `written` bytes got into frames of these lengths
/// (header and payload), the first of them `skip` bytes in already: the
/// frames written whole, and how far into the next.
fn progress(frames: impl Iterator<Item = usize>, skip: usize, written: usize) -> (usize, usize) {
    let mut left = written;
    let mut start = skip;
    let mut whole = 0;
    for len in frames {
        let rest = len - start;
        if left < rest {
            return (whole, start + left);
        }
        left -= rest;
        whole += 1;
        start = 0;
    }
    (whole, 0)
}
