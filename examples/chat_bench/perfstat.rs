//! Counts a server's system calls over exactly the measured interval:
//! `perf stat` attached to the process with its counters disabled, then
//! enabled and disabled through its control FIFO (each step acknowledged),
//! so neither perf's start-up nor the set-up phase is counted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};

/// Tracepoints counted: the total, then the calls an event loop makes.
const EVENTS: &[&str] = &[
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_select",
    "syscalls:sys_enter_pselect6",
    "syscalls:sys_enter_poll",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_readv",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_accept4",
];

/// A running `perf stat` on one process.
pub struct SyscallCounter {
    child: Child,
    ctl: File,
    acks: Receiver<()>,
    dir: PathBuf,
}

impl SyscallCounter {
    /// Attaches to `pid` with counting off.
    pub fn attach(pid: u32) -> io::Result<SyscallCounter> {
        let dir = std::env::temp_dir().join(format!("chat_bench_perf_{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (ctl_path, ack_path) = (dir.join("ctl"), dir.join("ack"));
        for p in [&ctl_path, &ack_path] {
            let _ = std::fs::remove_file(p);
            mkfifo(p, Mode::S_IRUSR | Mode::S_IWUSR).map_err(io::Error::from)?;
        }
        let control = format!("fifo:{},{}", ctl_path.display(), ack_path.display());
        let child = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-D",
                "-1",
                "--control",
                &control,
                "-p",
                &pid.to_string(),
            ])
            .args(EVENTS.iter().flat_map(|e| ["-e", e]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // O_RDWR: opening a FIFO so never blocks, even if perf died early.
        let ctl = OpenOptions::new().read(true).write(true).open(&ctl_path)?;
        let ack = OpenOptions::new().read(true).write(true).open(&ack_path)?;
        let (tx, acks) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(ack).lines() {
                if line.is_err() || tx.send(()).is_err() {
                    return;
                }
            }
        });
        Ok(SyscallCounter {
            child,
            ctl,
            acks,
            dir,
        })
    }

    fn command(&mut self, word: &str) -> io::Result<()> {
        writeln!(self.ctl, "{word}")?;
        self.acks
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::other(format!("perf did not acknowledge {word}")))
    }

    /// Starts counting.
    pub fn enable(&mut self) -> io::Result<()> {
        self.command("enable")
    }

    /// Stops counting.
    pub fn disable(&mut self) -> io::Result<()> {
        self.command("disable")
    }

    /// Ends perf; returns each tracepoint's count, the total first, with
    /// the `syscalls:sys_enter_` prefix dropped.
    pub fn finish(mut self) -> io::Result<Vec<(String, u64)>> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err)?;
        }
        self.child.wait()?;
        let _ = std::fs::remove_dir_all(&self.dir);
        let counts: Vec<(String, u64)> = err
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                let event = f.get(2)?;
                let name = event.strip_prefix("syscalls:sys_enter_").unwrap_or(event);
                let name = if *event == "raw_syscalls:sys_enter" {
                    "total"
                } else {
                    name
                };
                Some((name.to_string(), f[0].parse().unwrap_or(0)))
            })
            .collect();
        if counts.first().is_none_or(|(n, _)| n != "total") {
            return Err(io::Error::other(format!("perf stat said: {}", err.trim())));
        }
        Ok(counts)
    }
}
