//! Test programs in C under tests/c/: built with gcc's strict flags
//! against include/chat.h and libchat.a, and run to their end with a
//! deadline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use super::{artifact_dir, built_library, DEADLINE};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `source` into `<target>/debug/<dir>/<name>` with the
/// strict flags and `extra`; panics with gcc's output if it does not compile
/// cleanly.
pub fn compile(dir: &str, source: &str, name: &str, extra: &[&str]) -> PathBuf {
    let out_dir = artifact_dir().join(dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(name);
    let result = Command::new("gcc")
        .current_dir(crate_dir())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .args(extra)
        .arg("-Iinclude")
        .arg(source)
        .arg("-o")
        .arg(&out)
        .arg(built_library("libchat.a"))
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .expect("run gcc");
    assert!(
        result.status.success(),
        "gcc {source} failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// Runs `bin` to its end, killing it at the deadline; returns whether it
/// succeeded, its stdout and its stderr.
pub fn run(bin: &Path) -> (bool, String, String) {
    let mut child = Command::new(bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let (tx, rx) = mpsc::channel();
    for (which, mut pipe) in [
        (0, Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>),
        (1, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send((which, text));
        });
    }
    let mut out = [String::new(), String::new()];
    for _ in 0..2 {
        // Both pipes close when the program exits.
        match rx.recv_timeout(DEADLINE * 3) {
            Ok((which, text)) => out[which] = text,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not finish before the deadline", bin.display());
            }
        }
    }
    let status = child.wait().unwrap();
    let [stdout, stderr] = out;
    (status.success(), stdout, stderr)
}
