//! Watching a running program's system calls with strace, for checks of
//! what a program does while nothing happens: a host blocked in its wait
//! makes no call at all however long it idles, and one that spins (polls
//! with no timeout, reads a stdin at its end again) makes hundreds, so the
//! check is a count of calls, not a timing. strace is installed with
//! apt-get if missing; a test fails loudly if it cannot be.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::DEADLINE;

/// The system calls a loop blocks in, and `read`.
const TRACED: &str = "/^(poll|ppoll|select|pselect6|epoll_wait|epoll_pwait|epoll_pwait2|read)$";

/// How long [`assert_idle`] watches. A correct host makes no call in it
/// whatever its length; a spinning one shows within milliseconds.
const IDLE: Duration = Duration::from_millis(300);

/// Checks that the program `pid` (with nothing to do now: no client sends
/// anything, no timer is due) sits in its wait: at most the one wait it was
/// in when strace attached, and no read of stdin.
pub fn assert_idle(pid: u32, name: &str) {
    let trace = Trace::attach(pid, name);
    // Not a synchronisation: the window in which a spinning program would
    // show itself. Nothing is waited for.
    std::thread::sleep(IDLE);
    let calls = trace.finish();
    assert_eq!(
        calls.stdin_reads, 0,
        "{name} read stdin while idle:\n{:?}",
        calls.lines
    );
    assert!(
        calls.waits <= 2,
        "{name} waited {} times in {IDLE:?} of idleness: spinning?\n{:?}",
        calls.waits,
        calls.lines
    );
}

/// The calls a loop blocks in.
const WAITS: [&str; 7] = [
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
];

/// The `strace` binary, installed with apt-get if it is not there.
fn strace_bin() -> PathBuf {
    static INSTALL: Once = Once::new();
    let which = || {
        ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    };
    INSTALL.call_once(|| {
        if which().is_some() {
            return;
        }
        eprintln!("strace is missing: installing the Debian package strace");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !apt(&["install", "-y", "-q", "strace"]) {
            apt(&["update", "-q"]);
            apt(&["install", "-y", "-q", "strace"]);
        }
    });
    which().unwrap_or_else(|| {
        panic!("strace is not installed and apt-get could not install it: run `apt-get install strace`")
    })
}

/// strace attached to a running process, writing what it sees to a file.
pub struct Trace {
    child: Child,
    file: PathBuf,
    _stderr: mpsc::Receiver<String>,
}

/// What a program did while traced.
#[derive(Debug)]
pub struct Calls {
    /// Waits: poll, ppoll, select, pselect6, epoll_wait and the like.
    pub waits: usize,
    /// Reads of descriptor 0 (stdin).
    pub stdin_reads: usize,
    /// Every traced line, for a failure message.
    pub lines: Vec<String>,
}

impl Trace {
    /// Attaches to every thread of `pid` for the waits and reads
    /// [`assert_idle`] counts; returns once strace says it is attached
    /// (panics at the deadline).
    pub fn attach(pid: u32, name: &str) -> Trace {
        Trace::attach_for(pid, name, TRACED)
    }

    /// Attaches to every thread of `pid` for the system calls `calls`
    /// (strace's `-e trace=` syntax); returns once strace says it is
    /// attached (panics at the deadline).
    pub fn attach_for(pid: u32, name: &str, calls: &str) -> Trace {
        let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{pid}.strace"));
        let mut child = Command::new(strace_bin())
            .args(["-f", "-e", &format!("trace={calls}"), "-o"])
            .arg(&file)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strace");
        let stderr = child.stderr.take().unwrap();
        let (attached, lines) = mpsc::channel();
        std::thread::spawn(move || forward(stderr, attached));
        match lines.recv_timeout(DEADLINE) {
            Ok(line) if line.contains("attached") => {}
            other => {
                let _ = child.kill();
                panic!("strace did not attach to {pid}: {other:?} (is ptrace allowed here?)");
            }
        }
        Trace {
            child,
            file,
            _stderr: lines,
        }
    }

    /// Detaches (SIGINT, as a person stopping strace would) and counts.
    pub fn finish(mut self) -> Calls {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        // Each call is "PID name(args) = result", or "PID name(args
        // <unfinished ...>" followed later by "PID <... name resumed>".
        let name = |l: &str| -> String {
            let rest = l.split_once(' ').map_or(l, |(_, r)| r).trim_start();
            rest.split('(').next().unwrap_or("").to_string()
        };
        let waits = lines.iter().filter(|l| WAITS.contains(&name(l).as_str())).count();
        let stdin_reads = lines.iter().filter(|l| l.contains(" read(0,")).count();
        Calls {
            waits,
            stdin_reads,
            lines,
        }
    }
}

/// Sends strace's stderr on line by line (the first says it attached).
fn forward(stderr: ChildStderr, to: mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if to.send(line).is_err() {
            break;
        }
    }
}
