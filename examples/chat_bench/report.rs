//! The figures of a run: for people (a few aligned lines) and for scripts
//! (one JSON line, with `--json`).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::bandwidth::Bandwidth;
use crate::load::{Plan, Scenario, Tally};
use crate::procfs::Cpu;
use crate::stamp::text_len;
use crate::Args;

/// Everything measured around one load run.
pub struct Figures {
    /// What the clients counted.
    pub tally: Tally,
    /// Time to connect and register everyone.
    pub setup: Duration,
    /// `/proc/loadavg` when the run began.
    pub load_avg: String,
    /// The server's CPU time over the measured phase.
    pub server_cpu: Option<Cpu>,
    /// The generator's own CPU time over the measured phase.
    pub own_cpu: Option<Cpu>,
    /// The server's peak resident memory so far.
    pub server_hwm_kib: Option<u64>,
    /// The server's resident memory before any client connected.
    pub rss_before_kib: Option<u64>,
    /// ... and once every client was set up.
    pub rss_after_setup_kib: Option<u64>,
    /// The server's system calls over the measured phase, total first.
    pub syscalls: Option<Vec<(String, u64)>>,
}

fn us(h: &Histogram<u64>, q: f64) -> Value {
    if h.is_empty() {
        Value::Null
    } else {
        json!(h.value_at_quantile(q) as f64 / 1000.0)
    }
}

fn per(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Prints a load run's figures.
pub fn load(args: &Args, plan: &Plan, f: &Figures) {
    let t = &f.tally;
    let secs = t.elapsed.as_secs_f64();
    let deliveries = t.deliveries as f64;
    let payload = deliveries * text_len(plan.size) as f64;
    let cpu = f.server_cpu.map(|c| c.total());
    let calls = f
        .syscalls
        .as_ref()
        .and_then(|s| s.first())
        .map(|&(_, n)| n as f64);
    let rss_per_client = match (f.rss_before_kib, f.rss_after_setup_kib) {
        (Some(a), Some(b)) if plan.clients > 0 => Some((b as f64 - a as f64) * 1024.0 / plan.clients as f64),
        _ => None,
    };
    let mut v = json!({
        "label": args.label,
        "target": format!("{:?}", plan.target).to_lowercase(),
        "scenario": format!("{:?}", plan.scenario).to_lowercase(),
        "clients": plan.clients,
        "senders": match plan.scenario {
            Scenario::Unicast => plan.clients,
            Scenario::Idle => 0,
            _ => plan.senders,
        },
        "messages": plan.messages,
        "size": text_len(plan.size),
        "window": plan.window,
        "pingers": if plan.scenario == Scenario::Rtt { plan.pingers } else { 0 },
        "loadavg": f.load_avg,
        "setup_s": f.setup.as_secs_f64(),
        "elapsed_s": secs,
        "deliveries": t.deliveries,
        "expected": t.expected,
        "deliveries_per_s": per(deliveries, secs),
        "payload_mb_per_s": per(payload / 1e6, secs),
        "wire_mb_per_s": per(t.bytes_in as f64 / 1e6, secs),
        "lat_p50_us": us(&t.latency, 0.5),
        "lat_p99_us": us(&t.latency, 0.99),
        "lat_p999_us": us(&t.latency, 0.999),
        "lat_max_us": us(&t.latency, 1.0),
        "rtt_count": t.rtt.len(),
        "rtt_p50_us": us(&t.rtt, 0.5),
        "rtt_p99_us": us(&t.rtt, 0.99),
        "rtt_p999_us": us(&t.rtt, 0.999),
        "server_cpu_s": cpu,
        "server_user_s": f.server_cpu.map(|c| c.user),
        "server_sys_s": f.server_cpu.map(|c| c.sys),
        "server_cpu_ns_per_delivery": cpu.and_then(|c| per(c * 1e9, deliveries)),
        "deliveries_per_server_cpu_s": cpu.and_then(|c| per(deliveries, c)),
        "server_hwm_kib": f.server_hwm_kib,
        "server_rss_before_kib": f.rss_before_kib,
        "server_rss_setup_kib": f.rss_after_setup_kib,
        "server_rss_per_client_bytes": rss_per_client,
        "syscalls": calls,
        "syscalls_per_delivery": calls.and_then(|c| per(c, deliveries)),
        "syscall_breakdown": f.syscalls.as_ref().map(|s| {
            s.iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>()
        }),
        "generator_cpu_s": f.own_cpu.map(|c| c.total()),
        "errors": t.errors,
        "first_error": t.first_error,
        "timed_out": t.timed_out,
    });
    v["transport"] = json!(format!("{:?}", args.transport).to_lowercase());
    // Set apart: one more json! entry would pass the macro's recursion limit.
    v["server_minflt"] = json!(f.server_cpu.map(|c| c.minflt));
    v["server_minflt_per_delivery"] = json!(f.server_cpu.and_then(|c| per(c.minflt, deliveries)));
    v["server_voluntary_switches"] = json!(f.server_cpu.map(|c| c.switches.0));
    v["server_involuntary_switches"] = json!(f.server_cpu.map(|c| c.switches.1));
    println!(
        "{} {} · {} clients, {} sender(s) × {} msgs of {} B, window {} · load {}",
        v["target"].as_str().unwrap_or(""),
        v["scenario"].as_str().unwrap_or(""),
        plan.clients,
        v["senders"],
        plan.messages,
        text_len(plan.size),
        plan.window,
        f.load_avg
    );
    if plan.scenario == Scenario::Idle {
        println!("  set-up       {:.2} s", f.setup.as_secs_f64());
    } else {
        print_traffic(&v, f, secs);
    }
    if let Some(hwm) = f.server_hwm_kib {
        print!("  server rss   peak {:.1} MiB", hwm as f64 / 1024.0);
        match rss_per_client {
            Some(b) => println!(", {b:.0} B per client after set-up"),
            None => println!(),
        }
    }
    if t.errors > 0 || t.timed_out {
        println!(
            "  PROBLEMS     {} errors{}; first: {}",
            t.errors,
            if t.timed_out { ", time bound reached" } else { "" },
            t.first_error.as_deref().unwrap_or("-")
        );
    }
    if args.json {
        println!("{v}");
    }
}

/// The lines about traffic, latency and cost.
fn print_traffic(v: &Value, f: &Figures, secs: f64) {
    let t = &f.tally;
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "  deliveries   {} of {} in {secs:.3} s: {:.3} M/s, {:.1} MB/s payload (set-up {:.2} s)",
        t.deliveries,
        t.expected,
        num("deliveries_per_s") / 1e6,
        num("payload_mb_per_s"),
        f.setup.as_secs_f64()
    );
    if !t.latency.is_empty() {
        println!(
            "  latency µs   p50 {}  p99 {}  p99.9 {}  max {}",
            v["lat_p50_us"], v["lat_p99_us"], v["lat_p999_us"], v["lat_max_us"]
        );
    }
    if !t.rtt.is_empty() {
        println!(
            "  ping rtt µs  p50 {}  p99 {}  p99.9 {}  ({} pings)",
            v["rtt_p50_us"],
            v["rtt_p99_us"],
            v["rtt_p999_us"],
            t.rtt.len()
        );
    }
    if let Some(c) = f.server_cpu {
        println!(
            "  server cpu   {:.2} s (user {:.2}, sys {:.2}): {:.0} ns/delivery, {:.3} M deliveries/cpu-s",
            c.total(),
            c.user,
            c.sys,
            num("server_cpu_ns_per_delivery"),
            num("deliveries_per_server_cpu_s") / 1e6
        );
        println!(
            "  server       {:.0} minor faults ({:.3} per delivery), {:.0} voluntary + {:.0} involuntary switches",
            c.minflt,
            num("server_minflt_per_delivery"),
            c.switches.0,
            c.switches.1
        );
    }
    if let Some(s) = &f.syscalls {
        let parts: Vec<String> = s
            .iter()
            .skip(1)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "  syscalls     {:.4} per delivery ({} in all: {})",
            num("syscalls_per_delivery"),
            s[0].1,
            parts.join(", ")
        );
    }
    if let Some(c) = f.own_cpu {
        println!(
            "  generator    {:.2} cpu-s over {secs:.2} s ({:.0}% of a core)",
            c.total(),
            per(c.total() * 100.0, secs).unwrap_or(0.0)
        );
    }
}

/// Prints the bandwidth baseline.
pub fn bandwidth(args: &Args, bw: &Bandwidth, load_avg: &str) {
    let secs = bw.elapsed.as_secs_f64();
    let mbs = per(bw.bytes as f64 / 1e6, secs);
    println!(
        "tcp bandwidth · one loopback stream, writes of {} B · load {load_avg}\n  {} bytes in {secs:.3} s: {:.1} MB/s{}",
        args.size,
        bw.bytes,
        mbs.unwrap_or(0.0),
        if bw.timed_out { " (time bound reached)" } else { "" }
    );
    if args.json {
        let v = json!({
            "label": args.label,
            "target": "tcp",
            "scenario": "bandwidth",
            "size": args.size,
            "loadavg": load_avg,
            "bytes": bw.bytes,
            "elapsed_s": secs,
            "payload_mb_per_s": mbs,
            "timed_out": bw.timed_out,
        });
        println!("{v}");
    }
}
