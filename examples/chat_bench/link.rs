//! What the generator's chat clients speak under the chat protocol: plain
//! TCP with the 4-byte length prefix, TLS around it (rustls, any
//! certificate accepted: the benchmark measures cost, not trust), or
//! WebSocket (one text message per payload, the client's frames masked as
//! RFC 6455 requires). The handshakes are blocking, at connect time (set-up
//! is not measured); after them the socket is nonblocking on the shared
//! poll, and [`Conn`](crate::conn::Conn) reads and writes through a
//! [`Session`].

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::any_certificate::AnyCertificate;

/// How the chat clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Length-prefixed frames over TCP.
    Plain,
    /// Length-prefixed frames inside TLS (the server with --tls-cert).
    Tls,
    /// WebSocket text messages (the server's --ws-listen address).
    Ws,
}

/// Made once per run: what every connection of a run needs to connect.
#[derive(Clone)]
pub enum Link {
    Plain,
    Tls(Arc<ClientConfig>),
    Ws { path: String },
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::Plain => "plain",
            Link::Tls(_) => "tls",
            Link::Ws { .. } => "ws",
        })
    }
}

impl Link {
    pub fn new(transport: Transport, ws_path: &str) -> io::Result<Link> {
        Ok(match transport {
            Transport::Plain => Link::Plain,
            Transport::Tls => Link::Tls(tls_config()?),
            Transport::Ws => Link::Ws {
                path: ws_path.to_string(),
            },
        })
    }

    /// Runs the handshake on a connected blocking socket; returns the
    /// session and any bytes that came after the handshake (already
    /// application data).
    pub fn handshake(&self, sock: &mut TcpStream) -> io::Result<(Session, Vec<u8>)> {
        match self {
            Link::Plain => Ok((Session::Plain, Vec::new())),
            Link::Tls(config) => {
                let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                let mut conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                // The generator's windows bound what it queues.
                conn.set_buffer_limit(None);
                while conn.is_handshaking() {
                    conn.complete_io(sock)?;
                }
                Ok((Session::Tls(Box::new(conn)), Vec::new()))
            }
            Link::Ws { path } => {
                let addr = sock.peer_addr()?;
                write!(
                    sock,
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )?;
                let mut got = Vec::new();
                let mut chunk = [0u8; 1024];
                let end = loop {
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = sock.read(&mut chunk)?;
                    if n == 0 || got.len() > 16 * 1024 {
                        return Err(io::Error::other("the WebSocket upgrade got no complete answer"));
                    }
                    got.extend_from_slice(&chunk[..n]);
                };
                if !got.starts_with(b"HTTP/1.1 101") {
                    let line = String::from_utf8_lossy(&got[..end])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    return Err(io::Error::other(format!("WebSocket upgrade refused: {line}")));
                }
                Ok((Session::Ws(WsState::default()), got.split_off(end)))
            }
        }
    }
}

/// One connection's state above TCP.
pub enum Session {
    Plain,
    Tls(Box<ClientConnection>),
    Ws(WsState),
}

/// A WebSocket connection's buffers: frames read but not yet unwrapped,
/// and frames written but not yet sent.
#[derive(Default)]
pub struct WsState {
    /// Raw bytes from the socket not yet unwrapped into payloads.
    pub raw: Vec<u8>,
    /// Masked frames to write.
    pub wire: Vec<u8>,
    pub wpos: usize,
    /// Reused for the payloads of one unwrap.
    pub unwrapped: Vec<u8>,
    /// The mask of the next frame (changes every frame).
    mask: u32,
}

impl WsState {
    /// Wraps the length-prefixed frames in `out` as masked text messages,
    /// appended to the bytes to write; empties `out`.
    pub fn wrap(&mut self, out: &mut Vec<u8>) {
        let mut at = 0;
        while at + 4 <= out.len() {
            let len = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            let payload = &out[at + 4..at + 4 + len];
            self.wire.push(0x81); // FIN, text
            if len < 126 {
                self.wire.push(0x80 | len as u8);
            } else if len <= 0xffff {
                self.wire.push(0x80 | 126);
                self.wire.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                self.wire.push(0x80 | 127);
                self.wire.extend_from_slice(&(len as u64).to_be_bytes());
            }
            // Not a secret, only different from frame to frame, as a
            // client's must be: the server must unmask every byte.
            self.mask = self.mask.wrapping_mul(0x9E37_79B9).wrapping_add(0x7F4A_7C15);
            let key = self.mask.to_be_bytes();
            self.wire.extend_from_slice(&key);
            let start = self.wire.len();
            self.wire.extend_from_slice(payload);
            for (i, b) in self.wire[start..].iter_mut().enumerate() {
                *b ^= key[i & 3];
            }
            at += 4 + len;
        }
        out.clear();
    }

    /// Moves the server's complete frames out of `raw` into `into` as
    /// length-prefixed payloads (what the chat decoder reads); control
    /// frames are skipped, except a close, which is `Err`.
    pub fn unwrap(&mut self, into: &mut Vec<u8>) -> io::Result<()> {
        let mut at = 0;
        loop {
            let b = &self.raw[at..];
            if b.len() < 2 {
                break;
            }
            let opcode = b[0] & 0x0f;
            let masked = b[1] & 0x80 != 0;
            let (len, mut head) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if masked {
                head += 4;
            }
            if b.len() < head + len {
                break;
            }
            match opcode {
                0x0..=0x2 => {
                    into.extend_from_slice(&(len as u32).to_be_bytes());
                    let start = into.len();
                    into.extend_from_slice(&b[head..head + len]);
                    if masked {
                        // Servers do not mask; unmasked all the same.
                        let key: [u8; 4] = b[head - 4..head].try_into().unwrap();
                        for (i, c) in into[start..].iter_mut().enumerate() {
                            *c ^= key[i & 3];
                        }
                    }
                }
                0x8 => return Err(io::Error::other("the server closed the WebSocket")),
                _ => {}
            }
            at += head + len;
        }
        self.raw.drain(..at);
        Ok(())
    }
}

/// Reads what TLS has decrypted, after feeding it what the socket has:
/// `Ok(0)` is the end of the stream, `WouldBlock` nothing more for now.
pub fn tls_read(conn: &mut ClientConnection, sock: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match conn.read_tls(sock)? {
            0 => return Ok(0),
            _ => {
                conn.process_new_packets().map_err(io::Error::other)?;
            }
        }
    }
}

/// Writes TLS records until the socket is full (`Ok(false)`) or nothing
/// is left (`Ok(true)`).
pub fn tls_flush(conn: &mut ClientConnection, sock: &mut impl Write) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// TLS 1.3 or 1.2 with ring, trusting any certificate (signatures are still
/// checked): the generator measures the cost of TLS, not who is trusted.
fn tls_config() -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_frames_wrap_masked_and_unwrap_back_to_length_prefixed() {
        let mut out = Vec::new();
        for len in [3usize, 200, 70_000] {
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.extend(std::iter::repeat_n(b'x', len));
        }
        let expected = out.clone();
        let mut ws = WsState::default();
        ws.wrap(&mut out);
        assert!(out.is_empty());
        assert_eq!(ws.wire[0], 0x81);
        assert_eq!(ws.wire[1], 0x80 | 3, "masked, 3 bytes");
        assert_ne!(&ws.wire[6..9], b"xxx", "the payload is masked");
        // Unmask as the server would, then unwrap as frames from it.
        let mut back = WsState::default();
        back.raw = ws.wire.clone();
        let mut into = Vec::new();
        back.unwrap(&mut into).unwrap();
        assert_eq!(into, expected);
        // Partial frames stay in `raw`.
        let mut part = WsState::default();
        part.raw = ws.wire[..5].to_vec();
        let mut none = Vec::new();
        part.unwrap(&mut none).unwrap();
        assert!(none.is_empty());
        assert_eq!(part.raw.len(), 5);
    }
}
