//! The command line: every flag with its default, values checked with
//! errors that name the flag, and the limits select() sets.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use chat::Config;
use clap::Parser;

/// Descriptors kept below `FD_SETSIZE` for the listener, the wake pipe,
/// stdio and the log: the same margin the library's default `max_clients`
/// leaves.
const FD_MARGIN: usize = chat::FD_MARGIN;

/// The most clients one select() loop can watch.
pub const MAX_CLIENTS: usize = chat::FD_SETSIZE - FD_MARGIN;

/// Run a chat server: clients connect over TCP (or TLS, with --tls-cert and
/// --tls-key) and WebSocket (with --ws-listen, which also serves a web
/// client at /), register a nick and talk one to one, to everyone and in
/// rooms.
///
/// Prints `listening on ADDR` as its first line on stdout (and
/// `websocket on ADDR` as its second, with --ws-listen), logs each
/// connection, registration, room change and departure with a timestamp on
/// stderr (at most --log-lines-per-client a second about one client, the
/// rest counted), prints its counters on SIGUSR1, and on SIGINT or SIGTERM
/// tells every client it is shutting down and flushes their queues before
/// it exits.
#[derive(Parser, Debug)]
#[command(name = "chat_server", version, about, long_about)]
pub struct Args {
    /// Where to listen: HOST:PORT, an address or a name (localhost:7878).
    /// Port 0 takes any free port; the first line printed says which.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7878", value_parser = listen_addr)]
    pub listen: SocketAddr,
    /// Most clients connected at once; one more is told `server_full`.
    /// At most 1008 here: select() watches descriptors below FD_SETSIZE
    /// (1024), less 16 kept for the server itself.
    #[arg(long, value_name = "N", default_value_t = MAX_CLIENTS, value_parser = number::<usize>)]
    pub max_clients: usize,
    /// Largest frame payload a client may send, in bytes (64 to 4294967295).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_frame_bytes, value_parser = number::<usize>)]
    pub max_frame_bytes: usize,
    /// Most bytes queued for one client before it is dropped as too slow a
    /// reader (at least --max-frame-bytes + 64, the per-frame overhead the cap counts).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_queue_bytes, value_parser = number::<usize>)]
    pub max_queue_bytes: usize,
    /// Most bytes read from one client per round, so one busy client cannot
    /// starve the others; also the size of each read (up to 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().read_budget, value_parser = number::<usize>)]
    pub read_budget: usize,
    /// Drop clients silent for this long (they are pinged at half of it);
    /// 0: never.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = number::<u64>)]
    pub idle_timeout_ms: u64,
    /// Drop connections that send no valid hello within this; 0: never.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = number::<u64>)]
    pub handshake_timeout_ms: u64,
    /// Flood control: most frames a second from one client (bursts of one
    /// second's worth); 0: off.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = number::<u64>)]
    pub rate_limit_frames: u64,
    /// Flood control: most bytes a second from one client; 0: off.
    #[arg(long, value_name = "BYTES", default_value_t = 0, value_parser = number::<u64>)]
    pub rate_limit_bytes: u64,
    /// Most connections from one IP address; 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = number::<usize>)]
    pub max_per_ip: usize,
    /// How long a resumable session whose connection dropped (disconnect,
    /// timeout, slow consumer) waits for its client to resume it.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = number::<u64>)]
    pub resume_window_ms: u64,
    /// Bytes of written frames each resumable session keeps so that a
    /// resume after a network blip loses nothing (by reference: frames
    /// shared with other clients are not copied).
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().resume_retain_bytes, value_parser = number::<usize>)]
    pub resume_retain_bytes: usize,
    /// Hold every msg/all/room frame for the host, which releases each at
    /// once: a way to measure what interception costs.
    #[arg(long)]
    pub intercept_all: bool,
    /// How long shutting down (SIGINT, SIGTERM) may take to flush queues.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = number::<u64>)]
    pub shutdown_ms: u64,
    /// Most log lines about one client in one second; the rest are counted
    /// and summarized in one line.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = number::<u32>)]
    pub log_lines_per_client: u32,
    /// TLS on every listener: the certificate chain, PEM, leaf first (with
    /// --tls-key). The TCP listener then speaks TLS only, the WebSocket one
    /// is wss://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert, PEM (PKCS#8, SEC1 or RSA).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// A WebSocket listener too: HOST:PORT (port 0 takes any free port; the
    /// second line printed says which). `GET /` on it serves the web client.
    #[arg(long, value_name = "HOST:PORT", value_parser = listen_addr)]
    pub ws_listen: Option<SocketAddr>,
    /// The path WebSocket upgrades are accepted on.
    #[arg(long, value_name = "PATH", default_value = "/chat")]
    pub ws_path: String,
    /// Browser origins allowed to open a WebSocket, comma-separated
    /// (https://chat.example.com,http://localhost:8080); others get 403.
    /// Default: any.
    #[arg(long, value_name = "LIST")]
    pub ws_origins: Option<String>,
    /// Least severe log records shown.
    #[arg(long, value_name = "LEVEL", default_value = "info",
          value_parser = ["off", "error", "warn", "info", "debug", "trace"])]
    pub log_level: String,
}

impl Args {
    /// The library's config for these flags, or what is wrong with them in
    /// the flags' own words.
    pub fn config(&self) -> Result<Config, String> {
        if self.max_clients == 0 {
            return Err("--max-clients must be at least 1".into());
        }
        if self.max_clients > MAX_CLIENTS {
            return Err(format!(
                "--max-clients {} is more than one select() loop can watch: select() takes \
                 descriptors below FD_SETSIZE ({}), and {FD_MARGIN} of those are kept for the \
                 listener, the wake pipe and stdio, so at most {MAX_CLIENTS}",
                self.max_clients,
                chat::FD_SETSIZE
            ));
        }
        if !(64..=u32::MAX as usize).contains(&self.max_frame_bytes) {
            return Err(format!(
                "--max-frame-bytes must be between 64 and {} (got {})",
                u32::MAX,
                self.max_frame_bytes
            ));
        }
        if self.max_queue_bytes < self.max_frame_bytes + chat::FRAME_OVERHEAD {
            return Err(format!(
                "--max-queue-bytes {} cannot hold one whole frame: it must be at least \
                 --max-frame-bytes + {} ({})",
                self.max_queue_bytes,
                chat::FRAME_OVERHEAD,
                self.max_frame_bytes + chat::FRAME_OVERHEAD
            ));
        }
        if self.read_budget == 0 {
            return Err("--read-budget must be at least 1".into());
        }
        if !self.ws_path.starts_with('/') {
            return Err(format!("--ws-path {:?} must start with /", self.ws_path));
        }
        if self.resume_window_ms == 0 {
            return Err("--resume-window-ms must be at least 1".into());
        }
        if self.resume_retain_bytes == 0 {
            return Err("--resume-retain-bytes must be at least 1".into());
        }
        if self.log_lines_per_client == 0 {
            return Err("--log-lines-per-client must be at least 1".into());
        }
        let ms = |ms: u64| Some(ms).filter(|&ms| ms > 0).map(Duration::from_millis);
        let cfg = Config {
            listen_addr: self.listen,
            max_clients: self.max_clients,
            max_frame_bytes: self.max_frame_bytes,
            max_queue_bytes: self.max_queue_bytes,
            read_budget: self.read_budget,
            idle_timeout: ms(self.idle_timeout_ms),
            handshake_timeout: ms(self.handshake_timeout_ms),
            rate_limit_frames: Some(self.rate_limit_frames).filter(|&n| n > 0),
            rate_limit_bytes: Some(self.rate_limit_bytes).filter(|&n| n > 0),
            max_per_ip: Some(self.max_per_ip).filter(|&n| n > 0),
            intercept_messages: self.intercept_all,
            tls: self.tls()?,
            ws_listen_addr: self.ws_listen,
            ws_path: self.ws_path.clone(),
            ws_allowed_origins: self.ws_origins.as_ref().map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            resume_window: Duration::from_millis(self.resume_window_ms),
            resume_retain_bytes: self.resume_retain_bytes,
            ..Config::default()
        };
        // Anything the checks above missed, in the library's words.
        cfg.validate()
            .map_err(|e| format!("the settings do not work together: {e}"))?;
        Ok(cfg)
    }

    /// The certificate and key files' contents, read now so that a missing
    /// file is named before anything starts.
    fn tls(&self) -> Result<Option<chat::TlsPem>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
        };
        Ok(Some(chat::TlsPem {
            cert_chain: read("--tls-cert", cert)?,
            private_key: read("--tls-key", key)?,
        }))
    }

    pub fn log_level(&self) -> log::LevelFilter {
        self.log_level.parse().unwrap_or(log::LevelFilter::Info)
    }
}

/// A whole number, with an error a person can read.
fn number<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number (say 100)"))?;
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// `HOST:PORT`: an address as it is, or a name resolved. The library
/// listens on one address: a name's first IPv4 address (localhost is
/// 127.0.0.1), else its first.
fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let usage = || format!("{s:?} is not HOST:PORT (say 127.0.0.1:7878 or localhost:0)");
    let (_, port) = s.rsplit_once(':').ok_or_else(usage)?;
    port.parse::<u16>().map_err(|_| usage())?;
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s} names no address"))
}
