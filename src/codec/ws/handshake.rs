//! The HTTP/1.1 side of a WebSocket listener, with no sockets: bytes in
//! until the request head is complete, then the response as bytes, and
//! whether the connection becomes a WebSocket or closes after the reply.
//!
//! Only what a chat listener needs is spoken: the upgrade on one path, the
//! web client page on `/`, and short errors for the rest. No request body
//! is ever read and every reply closes the connection, so a request that
//! announces a body (or a chunked one) is refused: nothing can be smuggled
//! behind it.

use std::sync::Arc;

use base64::Engine;
use sha1::{Digest, Sha1};

use super::page;

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The most headers a request may carry.
const MAX_HEADERS: usize = 48;

/// The default WebSocket path.
pub const DEFAULT_PATH: &str = "/chat";

/// A WebSocket path that cannot be served: it must start with `/`, be at
/// most 256 bytes, and hold only visible ASCII other than `?` and `#`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WebSocket path {0:?} must start with '/', be at most 256 bytes, and hold only visible ASCII other than '?' and '#'")]
pub struct BadPath(pub String);

/// What a WebSocket listener answers: the upgrade path, the Origin
/// allow-list, and the web client page (built once, shared by every reply).
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    path: String,
    origins: Option<Vec<String>>,
    page: Arc<[u8]>,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig::new(DEFAULT_PATH).expect("the default path is valid")
    }
}

impl HandshakeConfig {
    /// Upgrades on `path` (the page served on `/` connects back to it);
    /// any Origin is accepted.
    pub fn new(path: &str) -> Result<HandshakeConfig, BadPath> {
        let valid = path.starts_with('/')
            && path.len() <= 256
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !valid {
            return Err(BadPath(path.to_string()));
        }
        Ok(HandshakeConfig {
            path: path.to_string(),
            origins: None,
            page: page::render(path),
        })
    }

    /// Accepts upgrades only from these origins (`scheme://host[:port]`,
    /// compared without regard to ASCII case; `null` for pages with an
    /// opaque origin). A request without `Origin` (not from a browser) is
    /// still accepted: browsers always send it, and the list exists to
    /// keep other sites' pages out.
    pub fn with_origins<S: AsRef<str>>(mut self, origins: impl IntoIterator<Item = S>) -> HandshakeConfig {
        let list = origins
            .into_iter()
            .map(|o| o.as_ref().trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        self.origins = Some(list);
        self
    }

    /// The upgrade path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The Origin allow-list, if one is set (lowercase).
    pub fn origins(&self) -> Option<&[String]> {
        self.origins.as_deref()
    }

    /// The web client page as served (the path filled in).
    pub fn page(&self) -> &Arc<[u8]> {
        &self.page
    }

    fn origin_allowed(&self, origin: Option<&[u8]>) -> bool {
        match (&self.origins, origin) {
            (None, _) | (Some(_), None) => true,
            (Some(list), Some(origin)) => {
                let origin = trim(origin);
                list.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
            }
        }
    }
}

/// An HTTP response to write whole, after which the server closes the
/// connection: `head`, then `body` (shared: the page is never copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Status line and headers, ending with the blank line.
    pub head: Vec<u8>,
    /// The body (empty for `HEAD`).
    pub body: Arc<[u8]>,
}

impl Reply {
    /// Head and body in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], &self.body[..]].concat()
    }
}

/// How a handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A WebSocket: write `response` (`101 Switching Protocols`), then feed
    /// `rest` (bytes the client sent after its request head, already
    /// frames) to a new [`Decoder`](super::Decoder) before anything read
    /// later.
    Upgrade {
        /// The 101 response.
        response: Vec<u8>,
        /// Bytes that followed the request head.
        rest: Vec<u8>,
    },
    /// Not a WebSocket: write the reply, then close the connection.
    Reply(Reply),
}

/// The state of one connection before its upgrade: the request head so far
/// (at most [`Handshake::MAX_HEAD`] bytes).
#[derive(Debug, Default)]
pub struct Handshake {
    buf: Vec<u8>,
    done: bool,
}

impl Handshake {
    /// The largest request head accepted; a longer one gets 431.
    pub const MAX_HEAD: usize = 8192;

    /// A handshake waiting for its request.
    pub fn new() -> Handshake {
        Handshake::default()
    }

    /// Takes bytes read; `None` while the request head is incomplete, then
    /// the outcome, once. Bytes after an outcome are ignored.
    pub fn input(&mut self, bytes: &[u8], cfg: &HandshakeConfig) -> Option<Outcome> {
        if self.done {
            return None;
        }
        let take = bytes.len().min(Self::MAX_HEAD - self.buf.len());
        self.buf.extend_from_slice(&bytes[..take]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let (outcome, used) = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(used)) => (answer(&req, cfg), used),
            Ok(httparse::Status::Partial) if self.buf.len() < Self::MAX_HEAD => return None,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                (Answer::Error(431, "the request head is too large", &[]), 0)
            }
            Err(_) => (Answer::Error(400, "not an HTTP/1.1 request", &[]), 0),
        };
        self.done = true;
        let buf = std::mem::take(&mut self.buf);
        Some(match outcome {
            Answer::Upgrade(response) => {
                let mut rest = buf[used..].to_vec();
                rest.extend_from_slice(&bytes[take..]);
                Outcome::Upgrade { response, rest }
            }
            Answer::Page { head_only } => Outcome::Reply(page_reply(cfg, head_only)),
            Answer::Error(status, why, extra) => Outcome::Reply(error_reply(status, why, extra)),
        })
    }

    /// Bytes of the request head held so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// The decision on a complete request, before it is turned into bytes.
enum Answer {
    Upgrade(Vec<u8>),
    Page { head_only: bool },
    Error(u16, &'static str, &'static [(&'static str, &'static str)]),
}

/// Decides what a complete request head gets.
fn answer(req: &httparse::Request<'_, '_>, cfg: &HandshakeConfig) -> Answer {
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    let headers = Headers(req.headers);
    if headers.any("transfer-encoding") || headers.all("content-length").any(|v| trim(v) != b"0") {
        return Answer::Error(400, "request bodies are not accepted", &[]);
    }
    let hosts = headers.all("host").count();
    if hosts > 1 || (hosts == 0 && req.version == Some(1)) {
        return Answer::Error(400, "exactly one Host header is required", &[]);
    }
    let Some(path) = target.split('?').next().filter(|p| p.starts_with('/')) else {
        return Answer::Error(400, "the request target must be a path", &[]);
    };
    let wants_upgrade = headers.has_token("upgrade", "websocket");
    if path == cfg.path && (wants_upgrade || path != "/") {
        if method != "GET" {
            return Answer::Error(405, "only GET upgrades to a WebSocket", &[("Allow", "GET")]);
        }
        return upgrade(req, &headers, cfg);
    }
    if wants_upgrade {
        return Answer::Error(404, "no WebSocket on this path", &[]);
    }
    if path == "/" {
        return match method {
            "GET" => Answer::Page { head_only: false },
            "HEAD" => Answer::Page { head_only: true },
            _ => Answer::Error(
                405,
                "only GET and HEAD are served here",
                &[("Allow", "GET, HEAD")],
            ),
        };
    }
    Answer::Error(404, "not found", &[])
}

/// Checks an upgrade request on the WebSocket path (RFC 6455 4.2.1).
fn upgrade(req: &httparse::Request<'_, '_>, headers: &Headers<'_, '_>, cfg: &HandshakeConfig) -> Answer {
    if !headers.has_token("upgrade", "websocket") {
        return Answer::Error(
            426,
            "this path speaks WebSocket only",
            &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        );
    }
    if req.version != Some(1) {
        return Answer::Error(400, "a WebSocket upgrade needs HTTP/1.1", &[]);
    }
    if !headers.has_token("connection", "upgrade") {
        return Answer::Error(400, "the Connection header must include Upgrade", &[]);
    }
    let mut versions = headers.all("sec-websocket-version");
    if !(versions.next().is_some_and(|v| trim(v) == b"13") && versions.next().is_none()) {
        return Answer::Error(
            426,
            "only WebSocket version 13 is spoken",
            &[("Sec-WebSocket-Version", "13")],
        );
    }
    let mut keys = headers.all("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(trim(key)) => trim(key),
        _ => return Answer::Error(400, "Sec-WebSocket-Key must be 16 bytes in base64", &[]),
    };
    let mut origins = headers.all("origin");
    let origin = origins.next();
    if origins.next().is_some() || !cfg.origin_allowed(origin) {
        return Answer::Error(403, "this origin may not connect", &[]);
    }
    let mut response = Vec::with_capacity(160);
    response.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    response.extend_from_slice(accept_key(key).as_bytes());
    response.extend_from_slice(b"\r\n\r\n");
    Answer::Upgrade(response)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1 of
/// the key and the RFC's GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A key is 16 random bytes in base64 (24 characters with padding).
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// The request's headers, looked up by lowercase name.
struct Headers<'h, 'b>(&'h [httparse::Header<'b>]);

impl<'b> Headers<'_, 'b> {
    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn any(&self, name: &str) -> bool {
        self.all(name).next().is_some()
    }

    /// Whether a comma-separated header (every copy of it) lists `token`,
    /// without regard to ASCII case: Firefox sends `Connection: keep-alive,
    /// Upgrade`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The page's headers: never cached (a new server version is picked up at
/// once), and a content security policy that allows only the page's own
/// inline script and style and WebSocket connections.
const PAGE_HEADERS: &str = "Content-Type: text/html; charset=utf-8\r\n\
Cache-Control: no-cache\r\n\
X-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n\
Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n\
Connection: close\r\n";

fn page_reply(cfg: &HandshakeConfig, head_only: bool) -> Reply {
    let head = format!(
        "HTTP/1.1 200 OK\r\n{PAGE_HEADERS}Content-Length: {}\r\n\r\n",
        cfg.page.len()
    );
    Reply {
        status: 200,
        head: head.into_bytes(),
        body: if head_only {
            Arc::from(&[][..])
        } else {
            cfg.page.clone()
        },
    }
}

fn error_reply(status: u16, why: &str, extra: &[(&str, &str)]) -> Reply {
    let body = format!("{status} {}: {why}\n", status_text(status));
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        status_text(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Reply {
        status,
        head: head.into_bytes(),
        body: Arc::from(body.into_bytes()),
    }
}
