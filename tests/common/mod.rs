//! Shared test helpers: a blocking framed-JSON client with deadlines, a
//! server pumped on its own thread, and paths to built artifacts. Every wait
//! here is on a condition with a deadline, never a sleep.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

    /// The next frame, or `None` if the server closed the connection.
    /// Panics if nothing arrives within [`DEADLINE`].
    pub fn try_recv(&mut self) -> Option<Value> {
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

/// A program started by a test, killed if the test ends first. Its
/// stdout is read line by line on a thread, so every wait has a deadline.
pub struct Spawned {
    pub child: Child,
    lines: Receiver<String>,
}

impl Spawned {
    /// Wraps a child started with `stdout(Stdio::piped())`.
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
        Spawned { child, lines }
    }

    /// The next stdout line (without the newline); panics at EOF or at the
    /// deadline.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line.trim_end_matches('\r').to_string(),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no stdout line before the deadline"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("program closed stdout"),
        }
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
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a program whose first stdout line is `listening on ADDR`; returns
/// it and ADDR.
pub fn spawn_listening(mut cmd: Command) -> (Spawned, SocketAddr) {
    cmd.stdout(Stdio::piped());
    let mut p = Spawned::new(cmd.spawn().expect("spawn"));
    let line = p.line();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .parse()
        .expect("an address");
    (p, addr)
}
