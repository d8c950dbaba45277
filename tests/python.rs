//! The Python binding, run from `cargo test`: its unittest suite, and
//! examples/python_host.py driven over loopback by TestClient. Both need
//! `python3` and the cdylib this `cargo test` built.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{artifact_dir, TestClient, DEADLINE};
use serde_json::{json, Value};

/// The whole unittest suite (1000 servers in the leak test, a C compiler
/// run for the layout check) is bounded by this.
const SUITE_DEADLINE: Duration = Duration::from_secs(120);

/// libchat.so of this build. `cargo test` builds the cdylib in the same
/// rustc run as the rlib the tests link, but only `cargo build` copies it
/// from `<target>/debug/deps` up to `<target>/debug`, and that copy may be
/// stale: so `deps` first.
fn libchat() -> PathBuf {
    let dir = artifact_dir();
    let candidates = [dir.join("deps").join("libchat.so"), dir.join("libchat.so")];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "libchat.so is in neither {} nor {}",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// `python3` in the crate root, using this build's library and leaving no
/// bytecode in the source tree.
fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CHAT_LIB", libchat())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Reads a pipe to its end on a thread, so the caller can wait with a deadline.
fn read_all_async(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

#[test]
fn python_unittest_suite_passes() {
    let mut child = python()
        .args(["-m", "unittest", "discover", "-s", "bindings/python/tests", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let stdout = read_all_async(child.stdout.take().unwrap());
    let stderr = read_all_async(child.stderr.take().unwrap());
    let end = Instant::now() + SUITE_DEADLINE;
    let mut wait_for =
        |rx: &Receiver<String>| match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(text) => text,
            Err(_) => {
                let _ = child.kill();
                panic!("the Python suite did not finish within {SUITE_DEADLINE:?}");
            }
        };
    let out = wait_for(&stdout);
    let err = wait_for(&stderr);
    // Both pipes closed: the process is exiting.
    let status = child.wait().unwrap();
    assert!(status.success(), "python unittest failed ({status}):\n{out}{err}");
    assert!(err.contains("OK"), "no OK from unittest:\n{out}{err}");
}

/// examples/python_host.py as a child: stdin piped, stdout lines read on a
/// thread so every read has a deadline. Killed when dropped.
struct PyHost {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl PyHost {
    fn start() -> (PyHost, SocketAddr) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python_host.py");
        let mut child = python()
            .arg(script)
            .arg("127.0.0.1:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let host = PyHost { child, stdin, lines };
        let first = host.line();
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line was {first:?}"))
            .parse()
            .expect("an address");
        (host, addr)
    }

    fn line(&self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no output line before the deadline"),
            Err(RecvTimeoutError::Disconnected) => panic!("python_host closed stdout"),
        }
    }

    /// The next line, split into `n` space-separated fields (the last takes
    /// the rest); panics unless it starts with `word`.
    fn fields(&self, word: &str, n: usize) -> Vec<String> {
        let line = self.line();
        let fields: Vec<String> = line.splitn(n, ' ').map(str::to_string).collect();
        assert!(
            fields.len() == n && fields[0] == word,
            "expected `{word} ...`, got {line:?}"
        );
        fields
    }

    fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("write to stdin");
        stdin.flush().unwrap();
    }

    fn expect_eof(&self) {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => panic!("unexpected line after the end: {line:?}"),
            Err(RecvTimeoutError::Timeout) => panic!("stdout did not close before the deadline"),
            Err(RecvTimeoutError::Disconnected) => {}
        }
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                panic!("python_host did not exit before the deadline");
            }
            // Child has no blocking wait with a timeout; this runs only
            // after stdout closed, when the exit is imminent.
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl Drop for PyHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `connected ID PEER` for this client; returns ID.
fn expect_connected(host: &PyHost, client: &TestClient) -> String {
    let f = host.fields("connected", 3);
    assert_eq!(f[2], client.stream.local_addr().unwrap().to_string());
    f[1].clone()
}

fn expect_message(host: &PyHost, id: &str, nick: &str, payload: &Value) {
    let f = host.fields("message", 4);
    assert_eq!((f[1].as_str(), f[2].as_str()), (id, nick));
    let logged: Value = serde_json::from_str(&f[3]).expect("JSON in the message line");
    assert_eq!(&logged, payload);
}

#[test]
fn python_host_serves_two_users() {
    let (mut host, addr) = PyHost::start();

    let mut alice = TestClient::hello(addr, "alice");
    assert_eq!(alice.recv(), json!({"type":"banner","text":"welcome, alice"}));
    let a = expect_connected(&host, &alice);
    assert_eq!(host.line(), format!("registered {a} alice"));

    let mut bob = TestClient::hello(addr, "bob");
    assert_eq!(bob.recv(), json!({"type":"banner","text":"welcome, bob"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"online"})
    );
    let b = expect_connected(&host, &bob);
    assert_ne!(a, b);
    assert_eq!(host.line(), format!("registered {b} bob"));

    alice.send(&json!({"type":"msg","to":"bob","text":"hi bob"}));
    let unicast = json!({"type":"msg","from":"alice","to":"bob","text":"hi bob"});
    assert_eq!(bob.recv(), unicast);
    expect_message(&host, &a, "alice", &unicast);

    bob.send(&json!({"type":"all","text":"hello all"}));
    let all = json!({"type":"all","from":"bob","text":"hello all"});
    assert_eq!(alice.recv(), all);
    expect_message(&host, &b, "bob", &all);

    host.command("/say hello everyone");
    let said = json!({"type":"all","from":"host","text":"hello everyone"});
    assert_eq!(alice.recv(), said);
    assert_eq!(bob.recv(), said);

    host.command("/kick bob");
    let last = bob
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("kicked")),
        "{last}"
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","state":"offline","reason":"kicked"})
    );
    assert_eq!(host.line(), format!("disconnected {b} bob kicked"));

    // End of stdin: graceful shutdown.
    host.stdin = None;
    let last = alice
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(
        (&last["type"], &last["code"]),
        (&json!("error"), &json!("shutdown")),
        "{last}"
    );
    assert_eq!(host.line(), format!("disconnected {a} alice shutdown"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success(), "python_host exits 0");
}

#[test]
fn python_host_stops_on_sigterm() {
    let (mut host, addr) = PyHost::start();
    let mut carol = TestClient::hello(addr, "carol");
    assert_eq!(carol.recv(), json!({"type":"banner","text":"welcome, carol"}));
    let c = expect_connected(&host, &carol);
    assert_eq!(host.line(), format!("registered {c} carol"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let last = carol
        .expect_closed()
        .pop()
        .expect("an error frame before the close");
    assert_eq!(last["code"], "shutdown", "{last}");
    assert_eq!(host.line(), format!("disconnected {c} carol shutdown"));
    assert_eq!(host.line(), "stopped");
    host.expect_eof();
    assert!(host.wait().success(), "python_host exits 0 on SIGTERM");
}
