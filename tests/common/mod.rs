//! Shared test helpers: a blocking framed-JSON client with deadlines, a
//! server pumped on its own thread, and paths to built artifacts. Every wait
//! here is on a condition with a deadline, never a sleep.
#![allow(dead_code)]

pub mod c_program;
pub mod strace;
pub mod tls;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat::{Config, Event, Server, Waker};
use serde_json::{json, Value};

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A config listening on a free loopback port.
pub fn loopback_config() -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

/// A registered client whose receive buffer was set to `rcvbuf` bytes
/// before connecting, so the window it advertises is small from the
/// start: a stalled reader backs up into the server after little data.
/// With 1 the kernel's minimum is asked for, and checked.
pub fn small_window_client(addr: SocketAddr, nick: &str, rcvbuf: usize) -> TestClient {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 loopback expected")
    };
    let fd = socket::socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    socket::setsockopt(&fd, sockopt::RcvBuf, &rcvbuf).unwrap();
    if rcvbuf == 1 {
        let got = socket::getsockopt(&fd, sockopt::RcvBuf).unwrap();
        assert!(got <= 4608, "SO_RCVBUF {got} is not the minimum");
    }
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut c = TestClient { stream };
    c.send(&json!({"type": "hello", "nick": nick}));
    assert_eq!(c.recv()["type"], "welcome");
    c
}

/// A framed-JSON client over a blocking socket whose reads time out.
pub struct TestClient {
    pub stream: TcpStream,
}

impl TestClient {
    pub fn connect(addr: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_nodelay(true).unwrap();
        TestClient { stream }
    }

    /// Connects and registers; panics unless `welcome` comes back.
    pub fn hello(addr: SocketAddr, nick: &str) -> TestClient {
        let mut c = TestClient::connect(addr);
        c.send(&json!({"type": "hello", "nick": nick}));
        let w = c.recv();
        assert_eq!(w["type"], "welcome", "hello as {nick}: {w}");
        c
    }

    pub fn send(&mut self, v: &Value) {
        self.send_payload(v.to_string().as_bytes());
    }

    pub fn send_payload(&mut self, payload: &[u8]) {
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(payload);
        self.stream.write_all(&buf).expect("send");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send raw");
    }

    /// The next frame's payload as the server wrote it, or `None` if the
    /// server closed the connection (or reset it). Panics if nothing arrives
    /// within [`DEADLINE`].
    pub fn try_recv_raw(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ) =>
            {
                return None
            }
            Err(e) => panic!("waiting for a frame: {e}"),
        }
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut payload).expect("frame payload");
        Some(payload)
    }

    /// The next frame, or `None` if the server closed the connection.
    /// Panics if nothing arrives within [`DEADLINE`].
    pub fn try_recv(&mut self) -> Option<Value> {
        let payload = self.try_recv_raw()?;
        Some(serde_json::from_slice(&payload).expect("server sent JSON"))
    }

    /// The next frame; panics if the connection closed.
    pub fn recv(&mut self) -> Value {
        self.try_recv()
            .expect("connection closed while waiting for a frame")
    }

    /// Skips frames until one matches; panics at the deadline.
    pub fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < end, "no matching frame before the deadline");
            let v = self.recv();
            if pred(&v) {
                return v;
            }
        }
    }

    /// Expects the server to close the connection (after any frames, which
    /// are returned).
    pub fn expect_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(v) = self.try_recv() {
            seen.push(v);
            assert!(seen.len() < 100_000, "connection never closed");
        }
        seen
    }
}

/// What a conformance test does with a client, over a real socket
/// ([`TestClient`]) or the core's in-memory pipe (`chat::testing::PipeClient`),
/// so the shared checks take either.
pub trait Wire {
    fn send(&mut self, v: &Value);
    fn send_payload(&mut self, payload: &[u8]);
    fn send_raw(&mut self, bytes: &[u8]);
    fn try_recv_raw(&mut self) -> Option<Vec<u8>>;
    fn try_recv(&mut self) -> Option<Value>;
    fn recv(&mut self) -> Value;
    fn expect_closed(&mut self) -> Vec<Value>;
}

macro_rules! wire_by_inherent_methods {
    ($t:ty) => {
        impl Wire for $t {
            fn send(&mut self, v: &Value) {
                <$t>::send(self, v)
            }
            fn send_payload(&mut self, payload: &[u8]) {
                <$t>::send_payload(self, payload)
            }
            fn send_raw(&mut self, bytes: &[u8]) {
                <$t>::send_raw(self, bytes)
            }
            fn try_recv_raw(&mut self) -> Option<Vec<u8>> {
                <$t>::try_recv_raw(self)
            }
            fn try_recv(&mut self) -> Option<Value> {
                <$t>::try_recv(self)
            }
            fn recv(&mut self) -> Value {
                <$t>::recv(self)
            }
            fn expect_closed(&mut self) -> Vec<Value> {
                <$t>::expect_closed(self)
            }
        }
    };
}
wire_by_inherent_methods!(TestClient);
wire_by_inherent_methods!(chat::testing::PipeClient);

/// Where a test reads the host's events: a [`ServerThread`] or the pipe.
pub trait Events {
    fn next_event(&self) -> Event;
    fn event_until(&self, pred: impl Fn(&Event) -> bool) -> Event;
}

impl Events for ServerThread {
    fn next_event(&self) -> Event {
        ServerThread::next_event(self)
    }
    fn event_until(&self, pred: impl Fn(&Event) -> bool) -> Event {
        ServerThread::event_until(self, pred)
    }
}

impl Events for chat::testing::Pipe {
    fn next_event(&self) -> Event {
        chat::testing::Pipe::next_event(self)
    }
    fn event_until(&self, pred: impl Fn(&Event) -> bool) -> Event {
        chat::testing::Pipe::event_until(self, pred)
    }
}

/// A request to run on the server thread.
type Job = Box<dyn FnOnce(&mut Server) + Send>;

/// A server pumped by its own thread; events arrive on a channel.
pub struct ServerThread {
    pub addr: SocketAddr,
    events: Receiver<Event>,
    jobs: Sender<Job>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ServerThread {
    pub fn start(cfg: Config) -> ServerThread {
        let mut server = Server::new(cfg).expect("server starts");
        let addr = server.local_addr();
        let waker = server.waker();
        let stop = Arc::new(AtomicBool::new(false));
        let (event_tx, events) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                server.poll_once(None).expect("poll_once");
                while let Ok(job) = job_rx.try_recv() {
                    job(&mut server);
                }
                for ev in server.events() {
                    let _ = event_tx.send(ev);
                }
            }
            server
                .shutdown_and_wait(Duration::from_secs(2))
                .expect("shutdown");
        });
        ServerThread {
            addr,
            events,
            jobs,
            waker,
            stop,
            handle: Some(handle),
        }
    }

    pub fn default() -> ServerThread {
        ServerThread::start(loopback_config())
    }

    /// Runs `f` on the server thread and returns its result.
    pub fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Server) -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .unwrap();
        self.waker.wake().unwrap();
        rx.recv_timeout(DEADLINE).expect("server thread answered")
    }

    /// Drops every event waiting now; returns how many there were. For tests
    /// that measure memory: events nobody takes pile up in the channel.
    pub fn discard_events(&self) -> usize {
        self.events.try_iter().count()
    }

    /// Every event waiting now, without waiting for more.
    pub fn take_events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// The next event; panics at the deadline.
    pub fn next_event(&self) -> Event {
        self.events
            .recv_timeout(DEADLINE)
            .expect("an event before the deadline")
    }

    /// Skips events until one matches; panics at the deadline.
    pub fn event_until(&self, pred: impl Fn(&Event) -> bool) -> Event {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let ev = self
                .events
                .recv_timeout(left)
                .expect("a matching event before the deadline");
            if pred(&ev) {
                return ev;
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The folder holding this build's artifacts (`target/debug`), found from
/// the test executable (`target/debug/deps/NAME-HASH`).
pub fn artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf()
}

/// A library file of this build (`libchat.a`, `libchat.so`). `cargo test`
/// builds the crate's staticlib and cdylib in the same rustc run as the rlib
/// the tests link, but leaves them in `<target>/debug/deps`: only `cargo
/// build` copies them up to `<target>/debug`, and that copy may be older
/// than the sources. So the `deps` copy comes first.
pub fn built_library(file: &str) -> PathBuf {
    let dir = artifact_dir();
    let candidates = [dir.join("deps").join(file), dir.join(file)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{file} is in neither {} nor {}: the crate's library was not built",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// A built example program (`cargo test` builds examples).
pub fn example_bin(name: &str) -> PathBuf {
    let path = artifact_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built (cargo test builds examples)",
        path.display()
    );
    path
}

/// `cargo`, without the variables cargo sets for a test while it runs
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `OUT_DIR`, ...): ring's build script reruns
/// when they change, so a build with them would rebuild ring and all above
/// it, and the next plain `cargo build` would again.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_TARGET_TMPDIR",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "OUT_DIR";
        if set_for_tests {
            cmd.env_remove(&var);
        }
    }
    cmd
}

/// A built example program, built now with cargo if this process has not
/// yet (a test run alone, `cargo test --test NAME`, builds no examples, and
/// an older build of one may be lying there), for this build's profile.
pub fn fresh_example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut cmd = cargo();
        cmd.args(["build", "--quiet", "--example", name, "--manifest-path"])
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if artifact_dir().file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_string());
    }
    example_bin(name)
}

/// A program started by a test, killed if the test ends first. Its stdout
/// is read line by line on a thread (and its stderr whole, if piped), so
/// every wait has a deadline; its stdin, if piped, takes console lines.
pub struct Spawned {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// All of stderr, sent once it closes; `None` unless it was piped.
    stderr: Option<Receiver<String>>,
}

impl Spawned {
    /// Wraps a child started with `stdout(Stdio::piped())` (stdin and
    /// stderr may be piped too).
    pub fn new(mut child: Child) -> Spawned {
        let stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().map(|mut stderr| {
            let (tx, text) = mpsc::channel();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stderr.read_to_end(&mut bytes);
                let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
            });
            text
        });
        Spawned {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    /// Starts `cmd` with stdin, stdout and stderr piped.
    pub fn start(mut cmd: Command) -> Spawned {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = format!("{:?}", cmd.get_program());
        Spawned::new(cmd.spawn().unwrap_or_else(|e| panic!("start {program}: {e}")))
    }

    /// The next stdout line (without the newline); panics at EOF (with the
    /// program's stderr, when piped) or at the deadline.
    pub fn line(&self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line.trim_end_matches('\r').to_string(),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no stdout line before the deadline"),
            Err(mpsc::RecvTimeoutError::Disconnected) => match &self.stderr {
                Some(stderr) => panic!(
                    "the program closed stdout; its stderr:\n{}",
                    stderr.recv_timeout(DEADLINE).unwrap_or_default()
                ),
                None => panic!("the program closed stdout"),
            },
        }
    }

    /// Reads the first line, `listening on ADDR`, and returns ADDR.
    pub fn listening_addr(&self) -> SocketAddr {
        let line = self.line();
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line was {line:?}"))
            .parse()
            .expect("an address")
    }

    /// Expects stdout to end with no further line.
    pub fn expect_eof(&self) {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => panic!("unexpected line after the end: {line:?}"),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout did not close before the deadline"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
    }

    /// Writes one console line to the program's stdin.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin piped and still open");
        writeln!(stdin, "{line}").expect("write to stdin");
        stdin.flush().unwrap();
    }

    /// The program's stdin, for a test that writes to it from elsewhere.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin piped and not taken yet")
    }

    /// All of the program's stderr, once it closes it (exits); panics at
    /// the deadline.
    pub fn stderr(&mut self) -> String {
        let rx = self.stderr.take().expect("stderr piped and not read yet");
        rx.recv_timeout(DEADLINE)
            .expect("stderr closed before the deadline")
    }

    /// Closes the program's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the exit status, killing the program at the deadline.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                panic!("program did not exit before the deadline");
            }
            // Polling a child's exit: std::process::Child has no blocking
            // wait with a timeout.
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; returns its status, the stdout lines not read
    /// yet, and all of stderr (empty unless piped).
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        let end = Instant::now() + DEADLINE;
        let rest: Vec<String> = std::iter::from_fn(|| {
            match self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(line) => Some(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("program kept stdout open past the deadline"),
            }
        })
        .collect();
        let stderr = self.stderr.as_ref().map_or(String::new(), |rx| {
            rx.recv_timeout(end.saturating_duration_since(Instant::now()))
                .expect("stderr closed before the deadline")
        });
        (self.wait(), rest, stderr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a program whose first stdout line is `listening on ADDR`, with
/// the stdin and stderr `cmd` says; returns it and ADDR.
pub fn spawn_listening(mut cmd: Command) -> (Spawned, SocketAddr) {
    cmd.stdout(Stdio::piped());
    let p = Spawned::new(cmd.spawn().expect("spawn"));
    let addr = p.listening_addr();
    (p, addr)
}

/// [`spawn_listening`] with stdin and stderr piped ([`Spawned::start`]).
pub fn start_listening(cmd: Command) -> (Spawned, SocketAddr) {
    let p = Spawned::start(cmd);
    let addr = p.listening_addr();
    (p, addr)
}
pub mod backplane;
pub mod cluster_server;
pub mod redis;
