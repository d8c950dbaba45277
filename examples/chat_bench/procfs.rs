//! What `/proc` tells about a process: CPU time and memory.

use std::fs;

/// Ticks per second of the CPU times in `/proc/PID/stat` (`USER_HZ`, fixed
/// at 100 on Linux whatever the kernel's own tick rate).
const USER_HZ: f64 = 100.0;

/// CPU seconds a process (all its threads) has used so far, with its
/// page faults and context switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// In user mode (10 ms resolution).
    pub user: f64,
    /// In the kernel on its behalf (system calls, and the loopback TCP
    /// work done in their context; 10 ms resolution).
    pub sys: f64,
    /// Both, from the scheduler's nanosecond accounting: the figure to
    /// use, as short runs make the tick counts above coarse.
    pub exact: f64,
    /// Minor page faults (pages the kernel had to map in: a sign of memory
    /// handed back and taken again).
    pub minflt: f64,
    /// Context switches, voluntary (it waited: a `select` that slept) and
    /// not (preempted), summed over threads.
    pub switches: (f64, f64),
}

impl Cpu {
    /// Of `pid` (a number or `self`).
    pub fn of(pid: &str) -> Option<Cpu> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: fields are counted after its ')'.
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // minflt is field 10 of the line, the 8th after the name; utime and
        // stime are fields 14 and 15, the 12th and 13th.
        Some(Cpu {
            user: ticks(11)? / USER_HZ,
            sys: ticks(12)? / USER_HZ,
            exact: on_cpu_ns(pid)? as f64 / 1e9,
            minflt: ticks(7)?,
            switches: switches(pid).unwrap_or_default(),
        })
    }

    /// What was used between `self` (earlier) and `later`.
    pub fn until(self, later: Cpu) -> Cpu {
        Cpu {
            user: later.user - self.user,
            sys: later.sys - self.sys,
            exact: later.exact - self.exact,
            minflt: later.minflt - self.minflt,
            switches: (
                later.switches.0 - self.switches.0,
                later.switches.1 - self.switches.1,
            ),
        }
    }

    /// User and system together, in nanosecond resolution.
    pub fn total(self) -> f64 {
        self.exact
    }
}

/// Nanoseconds on a CPU, summed over every thread (the first field of each
/// thread's `schedstat`).
fn on_cpu_ns(pid: &str) -> Option<u64> {
    let mut sum = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        sum += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// Voluntary and involuntary context switches, summed over every thread.
fn switches(pid: &str) -> Option<(f64, f64)> {
    let mut sum = (0.0, 0.0);
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        for line in status.lines() {
            let count = |key: &str| line.strip_prefix(key)?.trim().parse::<f64>().ok();
            if let Some(n) = count("voluntary_ctxt_switches:") {
                sum.0 += n;
            } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                sum.1 += n;
            }
        }
    }
    Some(sum)
}

/// A `Vm*` line of `/proc/PID/status` in KiB (`VmRSS`: now, `VmHWM`: peak).
pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The 1, 5 and 15-minute load averages, as `uptime` shows them.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
