//! Load generator for the chat protocol, and for Redis pub/sub and a bare
//! relay of frames (`bench/relay.c`, the floor) as the peers it is compared
//! with: `cargo run --release --example chat_bench -- --help`.
//!
//! One process, one thread, every client socket on one edge-triggered poll.
//! Scenarios: `fanout` (senders broadcast, everyone else counts deliveries),
//! `unicast` (pairs message each other), `rtt` (ping round trips during a
//! fan-out), `idle` (server memory per registered client), `bandwidth`
//! (raw loopback TCP, the ceiling for payload bytes). Each stops by itself,
//! at its message count or its time bound, and prints its figures (with
//! `--json`, also one JSON line last).
//!
//! Loopback only.

// The parts live in examples/chat_bench/ (a root file's modules would
// otherwise be looked for beside it, among the other examples).
#[path = "common/any_certificate.rs"]
mod any_certificate;
#[path = "chat_bench/bandwidth.rs"]
mod bandwidth;
#[path = "chat_bench/conn.rs"]
mod conn;
#[path = "chat_bench/link.rs"]
mod link;
#[path = "chat_bench/load.rs"]
mod load;
#[path = "chat_bench/perfstat.rs"]
mod perfstat;
#[path = "chat_bench/procfs.rs"]
mod procfs;
#[path = "chat_bench/relay.rs"]
mod relay;
#[path = "chat_bench/report.rs"]
mod report;
#[path = "chat_bench/stamp.rs"]
mod stamp;
#[path = "chat_bench/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use load::{Load, Plan, Scenario};
use procfs::Cpu;
use wire::Target;

/// Drives a chat server (or Redis) with many clients and reports
/// throughput, latency and the server's cost.
#[derive(Parser, Debug)]
#[command(about)]
pub struct Args {
    /// Which server speaks at --addr.
    #[arg(long, value_enum, default_value = "chat")]
    target: Target,
    /// The server's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// What to run.
    #[arg(long, value_enum, default_value = "fanout")]
    scenario: Scenario,
    /// Receiving clients (fanout, rtt, idle), or all clients (unicast:
    /// rounded up to an even number, each paired with the next).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Broadcasting clients (fanout, rtt), in addition to --clients.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages per sender (rtt without senders: pings per pinger;
    /// bandwidth: writes).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Bytes of message text (at least 40: the stamp), or of each write
    /// (bandwidth).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Most messages per sender in flight (sent, not yet delivered to all).
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Receivers that also ping, one ping in flight each (rtt).
    #[arg(long, default_value_t = 4)]
    pingers: usize,
    /// Size of each client's reads (a slower reader, e.g. 16384, lets
    /// output queue up in the server). 64 KiB reads take some hundred
    /// small frames at once.
    #[arg(long, default_value_t = 64 * 1024)]
    read_bytes: usize,
    /// What the chat clients speak under the protocol: plain TCP, TLS
    /// (the server started with --tls-cert; any certificate is accepted),
    /// or WebSocket (--addr is the server's --ws-listen address).
    #[arg(long, value_enum, default_value = "plain")]
    transport: link::Transport,
    /// The path of the WebSocket upgrade (--transport ws).
    #[arg(long, default_value = "/chat")]
    ws_path: String,
    /// Bound on the whole run, set-up included.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// The server's process id: its CPU time and memory are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Count the server's system calls during the measured phase with
    /// `perf stat` (needs --server-pid and perf).
    #[arg(long)]
    syscalls: bool,
    /// Print one JSON line with every figure at the end.
    #[arg(long)]
    json: bool,
    /// Free text copied into the JSON line (e.g. a run id).
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    let load_avg = procfs::loadavg();
    if args.scenario == Scenario::Bandwidth || args.target == Target::Tcp {
        let bw = bandwidth::measure(args.size, args.messages, deadline)?;
        report::bandwidth(args, &bw, &load_avg);
        return Ok(());
    }
    if args.target == Target::Relay && matches!(args.scenario, Scenario::Unicast | Scenario::Rtt) {
        return Err(std::io::Error::other(
            "the relay copies every frame to everyone: only fanout and idle measure it",
        ));
    }
    if args.transport != link::Transport::Plain && args.target != Target::Chat {
        return Err(std::io::Error::other(
            "--transport tls and ws are for --target chat",
        ));
    }
    if !args.addr.ip().is_loopback() {
        return Err(std::io::Error::other("only loopback addresses are allowed"));
    }
    let plan = Plan {
        target: args.target,
        addr: args.addr,
        scenario: args.scenario,
        clients: if args.scenario == Scenario::Unicast {
            args.clients.div_ceil(2) * 2
        } else {
            args.clients
        },
        senders: args.senders,
        messages: args.messages,
        size: args.size,
        window: args.window,
        pingers: args.pingers,
        read_bytes: args.read_bytes,
        deadline,
        link: link::Link::new(args.transport, &args.ws_path)?,
    };
    let pid = args.server_pid.map(|p| p.to_string());
    let pid = pid.as_deref();
    let mut counter = match (args.syscalls, args.server_pid) {
        (true, Some(p)) => Some(perfstat::SyscallCounter::attach(p)?),
        (true, None) => return Err(std::io::Error::other("--syscalls needs --server-pid")),
        _ => None,
    };
    let rss_before = pid.and_then(|p| procfs::status_kib(p, "VmRSS"));
    let mut load = Load::new(&plan)?;
    load.set_up()?;
    let setup = started.elapsed();
    let rss_after_setup = pid.and_then(|p| procfs::status_kib(p, "VmRSS"));

    let server_cpu0 = pid.and_then(Cpu::of);
    let own_cpu0 = Cpu::of("self");
    if let Some(c) = counter.as_mut() {
        c.enable()?;
    }
    let tally = load.measure()?;
    if let Some(c) = counter.as_mut() {
        c.disable()?;
    }
    let server_cpu = pid.and_then(Cpu::of).zip(server_cpu0).map(|(b, a)| a.until(b));
    let own_cpu = Cpu::of("self").zip(own_cpu0).map(|(b, a)| a.until(b));
    let syscalls = counter.map(|c| c.finish()).transpose()?;
    let figures = report::Figures {
        tally,
        setup,
        load_avg,
        server_cpu,
        own_cpu,
        server_hwm_kib: pid.and_then(|p| procfs::status_kib(p, "VmHWM")),
        rss_before_kib: rss_before,
        rss_after_setup_kib: rss_after_setup,
        syscalls,
    };
    report::load(args, &plan, &figures);
    Ok(())
}
