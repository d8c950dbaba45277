//! Shared by the packaging tests (tests/install.rs, tests/python_package.rs):
//! running commands with their output kept for the failure message, the
//! crate's version, `make install` into a temporary prefix, and making sure
//! a system tool is there (installing it with apt-get, or failing loudly).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::common::artifact_dir;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crate's version, which every installed file carries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SONAME of libchat.so: `libchat.so.MAJOR`.
pub fn soname() -> String {
    format!("libchat.so.{}", env!("CARGO_PKG_VERSION_MAJOR"))
}

/// The real file name of the installed shared library.
pub fn realname() -> String {
    format!(
        "libchat.so.{}.{}.{}",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH")
    )
}

/// Runs `cmd`; panics with its command line and whole output unless it
/// exits 0. Returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to its end with stdin closed; panics only if it cannot start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The cargo target directory of this `cargo test`: `make` and `pip`
/// build there (`release/` for the programs, `dist/` for the library with
/// its SONAME), so their builds are shared between runs and with the
/// developer's own `cargo build --release`.
pub fn target_dir() -> PathBuf {
    artifact_dir()
        .parent()
        .expect("the artifact dir is inside the target dir")
        .to_path_buf()
}

/// `make VARS... TARGET` in the crate, building in [`target_dir`].
pub fn make(target: &str, vars: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new("make");
    cmd.current_dir(crate_dir())
        .arg("--no-print-directory")
        .arg(format!("CARGO_TARGET_DIR={}", target_dir().display()))
        .arg(target);
    for (name, value) in vars {
        cmd.arg(format!("{name}={}", value.display()));
    }
    // $CARGO (set by cargo test) is what the Makefile runs: the same cargo.
    run(&mut cmd)
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("chat-{label}-"))
        .tempdir()
        .expect("create a temporary directory")
}

/// Every file (not directory) under `dir`, as paths relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// apt-get runs one at a time (its lock), even from parallel tests.
static APT: Mutex<()> = Mutex::new(());

/// Makes `works()` true, installing the Debian package `package` if it is
/// not; panics saying what to install when that fails too. Never skips.
pub fn ensure(what: &str, package: &str, works: impl Fn() -> bool) {
    if works() {
        return;
    }
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if works() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !install() {
        // The package lists may be missing or stale on a fresh machine.
        let _ = Command::new("apt-get").arg("update").output();
        install();
    }
    assert!(
        works(),
        "this test needs {what}, and `apt-get install {package}` did not provide it: \
         install {package} and run the test again"
    );
}

/// Makes sure `program --version` runs, installing `package` if not.
pub fn ensure_tool(program: &str, package: &str) {
    ensure(program, package, || {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
}
