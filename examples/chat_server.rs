//! The chat server as a program: `cargo run --release --example chat_server`.
//!
//! Prints `listening on ADDR` as its first line on stdout, logs joins and
//! leaves to stderr, and stops cleanly (telling every client) on SIGINT or
//! SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use chat::{Config, EventKind, Server};
use clap::Parser;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// An embeddable chat server, run on its own.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Most clients connected at once.
    #[arg(long)]
    max_clients: Option<usize>,
    /// Largest frame payload a client may send, in bytes.
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Most bytes queued for one client before it is dropped as slow.
    #[arg(long)]
    max_queue_bytes: Option<usize>,
    /// Most bytes read from one client per round (the library's
    /// `read_budget`); also the size of each read.
    #[arg(long)]
    read_budget: Option<usize>,
    /// Drop clients silent for this long (they are pinged at half of it);
    /// 0 or absent: never.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Drop connections that send no valid hello within this (0: never).
    #[arg(long, default_value_t = 30_000)]
    handshake_timeout_ms: u64,
    /// Flood control: most frames per second from one client (off by default).
    #[arg(long)]
    rate_limit_frames: Option<u64>,
    /// Flood control: most bytes per second from one client (off by default).
    #[arg(long)]
    rate_limit_bytes: Option<u64>,
    /// Most connections from one IP address (off by default).
    #[arg(long)]
    max_per_ip: Option<usize>,
    /// Hold every msg/all/room frame for the host, which releases each at
    /// once: a way to measure what interception costs (docs/performance.md).
    #[arg(long)]
    intercept_all: bool,
    /// How long `shutdown` may take to flush queues on SIGINT/SIGTERM.
    #[arg(long, default_value_t = 2000)]
    shutdown_ms: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);
static DUMP_STATS: AtomicBool = AtomicBool::new(false);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGUSR1 {
        DUMP_STATS.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a static byte
        // and `fd` is the server's wake pipe, open for the program's life.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
}

fn config(args: &Args) -> Config {
    let mut cfg = Config {
        listen_addr: args.listen,
        ..Config::default()
    };
    if let Some(n) = args.max_clients {
        cfg.max_clients = n;
    }
    if let Some(n) = args.max_frame_bytes {
        cfg.max_frame_bytes = n;
    }
    if let Some(n) = args.max_queue_bytes {
        cfg.max_queue_bytes = n;
    }
    if let Some(n) = args.read_budget {
        cfg.read_budget = n;
    }
    cfg.idle_timeout = args
        .idle_timeout_ms
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    cfg.handshake_timeout = Some(args.handshake_timeout_ms)
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    cfg.rate_limit_frames = args.rate_limit_frames;
    cfg.rate_limit_bytes = args.rate_limit_bytes;
    cfg.max_per_ip = args.max_per_ip;
    cfg.intercept_messages = args.intercept_all;
    cfg
}

fn run(args: Args) -> Result<(), chat::Error> {
    let mut server = Server::new(config(&args))?;
    WAKE_FD.store(server.waker().as_raw_fd(), Ordering::SeqCst);
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1] {
        // SAFETY: the handler only stores to atomics and calls write(2).
        unsafe { signal::sigaction(sig, &action) }.map_err(std::io::Error::from)?;
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.local_addr());
    let _ = stdout.flush();

    while !STOP.load(Ordering::SeqCst) {
        server.poll_once(None)?;
        for ticket in log_events(&mut server) {
            // The sender may have left meanwhile: its message went with it.
            let _ = server.release(ticket);
        }
        if DUMP_STATS.swap(false, Ordering::SeqCst) {
            print_stats(&server);
        }
    }
    eprintln!("shutting down");
    server.shutdown_and_wait(Duration::from_millis(args.shutdown_ms))?;
    log_events(&mut server);
    print_stats(&server);
    Ok(())
}

/// One line of counters on stderr (on SIGUSR1 and at exit).
fn print_stats(server: &Server) {
    let s = server.stats();
    let by_reason: Vec<String> = chat::Reason::ALL
        .iter()
        .map(|r| format!("{r}={}", s.disconnects_for(*r)))
        .collect();
    eprintln!(
        "stats: clients {} registered {} accepted {} refused {} frames in {} out {} \
         bytes in {} out {} queued {} peak queued {} disconnects {}",
        s.clients,
        s.registered,
        s.accepted,
        s.refused,
        s.frames_in,
        s.frames_out,
        s.bytes_in,
        s.bytes_out,
        s.queued_bytes,
        s.peak_queued_bytes,
        by_reason.join(" ")
    );
}

/// Logs what happened; returns the tickets of held messages (only with
/// --intercept-all), for the caller to release.
fn log_events(server: &mut Server) -> Vec<u64> {
    let mut held = Vec::new();
    for event in server.events() {
        let nick = event.nick.as_deref().unwrap_or("-");
        match event.kind {
            EventKind::Connected => eprintln!("connect #{} from {}", event.client, event.peer),
            EventKind::Registered => eprintln!("join #{} {nick}", event.client),
            EventKind::Disconnected { reason } => eprintln!("leave #{} {nick} ({reason})", event.client),
            EventKind::Joined { room } => eprintln!("room #{} {nick} joined {room}", event.client),
            EventKind::Parted { room } => eprintln!("room #{} {nick} parted {room}", event.client),
            EventKind::Intercepted(message) => held.push(message.ticket),
            // Routed inside the library; approval is off in this server.
            EventKind::Message(_) | EventKind::ApprovalRequested { .. } => {}
        }
    }
    held
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}
