//! The chat server as a program: `cargo run --release --example chat_server`.
//!
//! Prints `listening on ADDR` as its first line on stdout, logs through the
//! `log` facade (timestamped lines on stderr, the library's records in the
//! same format), and stops cleanly (telling every client) on SIGINT or
//! SIGTERM. `--help` lists every flag with its default.

mod flags;
mod logger;
mod quiet;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use chat::{EventKind, Server};
use clap::Parser;
use log::info;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

use flags::Args;
use quiet::Quiet;

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

fn run(args: &Args, cfg: chat::Config) -> Result<(), chat::Error> {
    let mut server = Server::new(cfg)?;
    WAKE_FD.store(server.waker().as_raw_fd(), Ordering::SeqCst);
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1] {
        // SAFETY: the handler only stores to atomics and calls write(2).
        unsafe { signal::sigaction(sig, &action) }.map_err(std::io::Error::from)?;
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.local_addr());
    if let Some(ws) = server.ws_addr() {
        let _ = writeln!(stdout, "websocket on {ws}");
    }
    let _ = stdout.flush();

    let mut quiet = Quiet::new(args.log_lines_per_client);
    while !STOP.load(Ordering::SeqCst) {
        // Held log lines are summarized when their second is over, even if
        // nothing else happens by then.
        let wait = quiet
            .next_due()
            .map(|due| due.saturating_duration_since(Instant::now()));
        server.poll_once(wait)?;
        for ticket in log_events(&mut server, &mut quiet) {
            // The sender may have left meanwhile: its message went with it.
            let _ = server.release(ticket);
        }
        quiet.flush(Instant::now());
        if DUMP_STATS.swap(false, Ordering::SeqCst) {
            log_stats(&server);
        }
    }
    info!("shutting down");
    server.shutdown_and_wait(Duration::from_millis(args.shutdown_ms))?;
    log_events(&mut server, &mut quiet);
    log_stats(&server);
    Ok(())
}

/// One line of counters (on SIGUSR1 and at exit).
fn log_stats(server: &Server) {
    let s = server.stats();
    let by_reason: Vec<String> = chat::Reason::ALL
        .iter()
        .map(|r| format!("{r}={}", s.disconnects_for(*r)))
        .collect();
    info!(
        "stats: clients {} registered {} accepted {} refused {} failed handshakes {} \
         frames in {} out {} bytes in {} out {} queued {} peak queued {} disconnects {} \
         sessions parked {} resumed {} resume_failed {} retained {} draining {} drained {}",
        s.clients,
        s.registered,
        s.accepted,
        s.refused,
        s.failed_handshakes,
        s.frames_in,
        s.frames_out,
        s.bytes_in,
        s.bytes_out,
        s.queued_bytes,
        s.peak_queued_bytes,
        by_reason.join(" "),
        s.parked,
        s.resumed,
        s.resume_failed,
        s.retained_bytes,
        s.draining,
        s.drained_bytes
    );
    if s.cluster != chat::ClusterState::Off {
        info!(
            "stats: cluster {} nodes {} users {} relayed out {} in {} failed {} reconnects {}",
            s.cluster.as_str(),
            s.cluster_nodes,
            s.cluster_users,
            s.relayed_out,
            s.relayed_in,
            s.relay_failed,
            s.cluster_reconnects
        );
    }
}

/// Logs what happened (clients by number, `client 3`: only room names are
/// written with `#`); returns the tickets of held messages (only with
/// --intercept-all), for the caller to release.
fn log_events(server: &mut Server, quiet: &mut Quiet) -> Vec<u64> {
    let mut held = Vec::new();
    let now = Instant::now();
    for event in server.events() {
        let id = event.client;
        // Messages are most events and are not logged: no string for them
        // (formatting the nick of every message cost a tenth of the
        // server's instructions per unicast delivery).
        if matches!(event.kind, EventKind::Message(_)) {
            continue;
        }
        let who = event.nick.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
        match event.kind {
            EventKind::Connected if quiet.allow(id, &who, now) => {
                info!("client {id} connected from {}{}", event.via.scheme(), event.peer)
            }
            EventKind::Registered if quiet.allow(id, &who, now) => {
                info!("client {id} registered as{who}")
            }
            EventKind::Joined { room } if quiet.allow(id, &who, now) => {
                info!("client {id}{who} joined {room}")
            }
            EventKind::Parted { room } if quiet.allow(id, &who, now) => {
                info!("client {id}{who} parted {room}")
            }
            EventKind::Renamed { old } if quiet.allow(id, &who, now) => {
                info!("client {id} renamed {old} to{who}")
            }
            EventKind::Parked { reason } if quiet.allow(id, &who, now) => {
                info!("client {id}{who} parked ({reason}): its session waits for a resume")
            }
            // The session keeps its log budget under its new number.
            EventKind::Resumed { previous } => {
                quiet.forget(previous);
                if quiet.allow(id, &who, now) {
                    info!("client {id}{who} resumed the session of client {previous}")
                }
            }
            // Always said, after the count of anything held back.
            EventKind::Disconnected { reason } => {
                quiet.forget(id);
                info!("client {id}{who} left ({reason})");
            }
            EventKind::Intercepted(message) => held.push(message.ticket),
            // Routed inside the library; approval is off in this server.
            _ => {}
        }
    }
    held
}

fn main() -> ExitCode {
    let args = Args::parse();
    logger::init(args.log_level());
    let cfg = match args.config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("chat_server: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}
