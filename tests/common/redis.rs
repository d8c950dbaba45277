//! Redis for tests: a `redis-server` of our own on a free loopback port
//! (installed with apt-get if missing; a test fails loudly if it cannot
//! be), which can be stopped (SIGSTOP), continued, killed and restarted
//! empty on the same port; a black-hole proxy that can swallow everything;
//! a small blocking RESP client for assertions. Every wait has a deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use chat::codec::resp::{self, Decoder, Limits, Reply};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long Redis may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The `redis-server` binary, installed with apt-get if it is not there.
pub fn redis_server_bin() -> PathBuf {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if which("redis-server").is_some() {
            return;
        }
        eprintln!("redis-server is missing: installing the Debian package redis-server");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !apt(&["install", "-y", "-q", "redis-server"]) {
            apt(&["update", "-q"]);
            apt(&["install", "-y", "-q", "redis-server"]);
        }
    });
    which("redis-server").unwrap_or_else(|| {
        panic!("redis-server is not installed and apt-get could not install it: run `apt-get install redis-server`")
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server --port P --save '' --appendonly no` of the test's own.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    log: Option<Receiver<String>>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        let bin = redis_server_bin();
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("chat-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                port,
                child: None,
                log: None,
                dir,
            };
            server.spawn(&bin);
            if server.wait_ready() {
                return server;
            }
            // Someone took the port between our bind and Redis'.
            server.kill9();
        }
        panic!("redis-server did not start on any of 5 free ports (its log is above)");
    }

    fn spawn(&mut self, bin: &PathBuf) {
        let mut child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--dir",
                self.dir.to_str().unwrap(),
                "--daemonize",
                "no",
                "--logfile",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        // Its log lines, so a start can wait for "Ready to accept" (or for
        // the end of the log: it exited) without polling.
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.log = Some(rx);
        self.child = Some(child);
    }

    /// Whether it says it is ready before the deadline (false if it
    /// exited), and then answers PING.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_DEADLINE;
        let log = self.log.as_ref().expect("spawned");
        let mut seen = Vec::new();
        loop {
            match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("Ready to accept connections") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    eprintln!(
                        "redis-server on port {} did not start:\n{}",
                        self.port,
                        seen.join("\n")
                    );
                    return false;
                }
            }
        }
        let mut c = RespClient::connect(self.addr());
        c.cmd(&["PING"]).as_bytes() == Some(b"PONG")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A client of its own.
    pub fn client(&self) -> RespClient {
        RespClient::connect(self.addr())
    }

    fn signal(&self, sig: Signal) {
        if let Some(child) = &self.child {
            kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        }
    }

    /// SIGSTOP: it keeps accepting TCP connections (the kernel does) and
    /// never answers.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// kill -9, and wait for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then start again empty on the same port.
    pub fn restart_empty(&mut self) {
        self.kill9();
        let bin = redis_server_bin();
        self.spawn(&bin);
        assert!(
            self.wait_ready(),
            "redis-server did not restart on port {}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy to `target` that can be switched to swallow everything: it
/// then reads and discards both ways and writes nothing, as a black-holing
/// network would (no RST, no FIN, no answer).
pub struct BlackHole {
    addr: SocketAddr,
    swallow: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<thread::JoinHandle<()>>>>,
}

impl BlackHole {
    /// Listens on a free loopback port.
    pub fn start(target: SocketAddr) -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let swallow = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (sw, st, th) = (swallow.clone(), stop.clone(), threads.clone());
        let accept = thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), Ok(upstream)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                for (from, to) in [(&client, &upstream), (&upstream, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let (sw, st) = (sw.clone(), st.clone());
                    th.lock()
                        .unwrap()
                        .push(thread::spawn(move || pump(from, to, &sw, &st)));
                }
            }
        });
        threads.lock().unwrap().push(accept);
        BlackHole {
            addr,
            swallow,
            stop,
            threads,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, swallow everything (`true`) or relay again (`false`).
    pub fn swallow(&self, on: bool) {
        self.swallow.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes or the proxy stops; while
/// swallowing, reads and drops.
fn pump(mut from: TcpStream, mut to: TcpStream, swallow: &AtomicBool, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if !swallow.load(Ordering::SeqCst) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

/// A blocking RESP client whose every read has a deadline.
pub struct RespClient {
    stream: TcpStream,
    decoder: Decoder,
}

impl RespClient {
    /// Connects, or fails.
    pub fn try_connect(addr: SocketAddr) -> io::Result<RespClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(RespClient {
            stream,
            decoder: Decoder::new(Limits::default()),
        })
    }

    /// Connects, or panics.
    pub fn connect(addr: SocketAddr) -> RespClient {
        RespClient::try_connect(addr).unwrap_or_else(|e| panic!("cannot connect to Redis at {addr}: {e}"))
    }

    /// Sends a command without reading its reply.
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = Vec::new();
        resp::write_command(&mut out, args);
        self.stream.write_all(&out).unwrap();
    }

    /// The next reply, waiting up to `timeout`; `None` if none came.
    pub fn read_within(&mut self, timeout: Duration) -> io::Result<Option<Reply>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(r) = self.decoder.next_reply().map_err(io::Error::other)? {
                return Ok(Some(r));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next reply within 10 s, or panics.
    pub fn read(&mut self) -> Reply {
        self.read_within(Duration::from_secs(10))
            .unwrap()
            .expect("no reply from Redis within 10 s")
    }

    /// A command and its reply (within 10 s).
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd_bytes(&args)
    }

    /// A command of byte strings and its reply.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read()
    }
}

/// The bulk strings of an array reply, as text.
pub fn strings(reply: &Reply) -> Vec<String> {
    reply
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {reply:?}"))
        .iter()
        .map(|r| {
            String::from_utf8_lossy(r.as_bytes().unwrap_or_else(|| panic!("not a string: {r:?}")))
                .into_owned()
        })
        .collect()
}
