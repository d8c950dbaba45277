//! Helpers for the tests that drive the WebSocket echo example with
//! clients nobody here wrote: Python packages installed on demand (pinned
//! in a requirements file), and programs run to their end with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The crate root, where the requirement files and scripts live.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The proxy variables a client could pick up: the tests talk to loopback
/// only, so they are removed from every client's environment.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ws_proxy",
    "wss_proxy",
];

/// `python3` with no proxy in its environment.
pub fn python() -> Command {
    let mut cmd = Command::new("python3");
    without_proxies(&mut cmd);
    cmd
}

/// Takes the proxy variables out of a client's environment.
pub fn without_proxies(cmd: &mut Command) {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
}

/// Whether `check` (a Python snippet) runs without error.
fn python_ok(check: &str) -> bool {
    python()
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure the packages pinned in `requirements` (relative to the crate
/// root) are installed, checked by `check` (a Python snippet that fails
/// unless the right versions are importable); installs them with pip if
/// not, and panics, saying what to install, if that fails.
pub fn ensure_python_packages(requirements: &str, check: &str) {
    if python_ok(check) {
        return;
    }
    let file = root().join(requirements);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
        ])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (install Python 3 with pip): {e}"));
    assert!(
        out.status.success() && python_ok(check),
        "could not install the Python packages this test needs: run `python3 -m pip install -r {}`\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` to its end and returns its output; kills it and panics if it
/// has not ended within `deadline`.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{what} did not finish within {deadline:?}");
        }
    }
}

/// A path under the crate root, as a string for a command line.
pub fn arg(path: &str) -> String {
    Path::new(&root()).join(path).display().to_string()
}

/// The echo example, built now (so a test run alone never uses a stale
/// binary) for this build's profile.
pub fn ws_echo_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_ws_echo).clone()
}

fn build_ws_echo() -> PathBuf {
    let dir = crate::common::artifact_dir();
    // Without the variables cargo sets for tests: with them ring's build
    // script reruns, and ring and all above it are rebuilt every run.
    let mut cmd = crate::common::cargo();
    cmd.args(["build", "--quiet", "--example", "ws_echo", "--manifest-path"])
        .arg(root().join("Cargo.toml"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build --example ws_echo");
    assert!(status.success(), "cargo build --example ws_echo failed");
    crate::common::example_bin("ws_echo")
}

/// The version pinned for `package` in a requirements file (`name==X`).
pub fn pinned(requirements: &str, package: &str) -> String {
    let text = std::fs::read_to_string(root().join(requirements)).expect("requirements file");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(package)?.strip_prefix("=="))
        .unwrap_or_else(|| panic!("{requirements} pins no {package}"))
        .trim()
        .to_string()
}

/// The example server with a WebSocket listener, both on free loopback
/// ports: (server, TCP address, URL of the web client it serves at `/`).
pub fn chat_server_with_page() -> (crate::common::Spawned, std::net::SocketAddr, String) {
    let mut cmd = Command::new(crate::common::fresh_example("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0"]);
    let p = crate::common::Spawned::start(cmd);
    let tcp = p.listening_addr();
    let line = p.line();
    let ws = line
        .strip_prefix("websocket on ")
        .unwrap_or_else(|| panic!("second line: {line:?}"))
        .to_string();
    (p, tcp, format!("http://{ws}/"))
}
