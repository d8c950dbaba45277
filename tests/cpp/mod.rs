//! Building C++ programs against the library with g++, and driving one as a
//! child process whose stdout lines are read with a deadline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::built_library;

/// The flags every C++ file must build cleanly with.
const CXXFLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// How a program gets the library.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// libchat.a, plus what the Rust standard library needs from libc.
    Static,
    /// libchat.so, found at run time through an rpath.
    Shared,
}

/// A file of this crate, by its path from the crate root.
pub fn source(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Builds one C++ file into `<target>/tmp/cpp/<name>`; panics with g++'s
/// output if it does not build cleanly.
pub fn compile(src: &str, name: &str, link: Link) -> PathBuf {
    compile_with(src, name, link, &[])
}

/// As [`compile`], with more flags (sanitizers, say).
pub fn compile_with(src: &str, name: &str, link: Link, extra: &[&str]) -> PathBuf {
    let lib = built_library(match link {
        Link::Static => "libchat.a",
        Link::Shared => "libchat.so",
    });
    let lib_dir = lib.parent().unwrap();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cpp");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(name);

    let mut cmd = Command::new("g++");
    cmd.args(CXXFLAGS)
        .args(extra)
        .arg("-I")
        .arg(source("include"))
        .arg("-I")
        .arg(source("bindings/cpp"))
        .arg(source(src))
        .arg("-o")
        .arg(&out);
    match link {
        Link::Static => {
            cmd.arg(&lib).args(["-lpthread", "-ldl", "-lm"]);
        }
        Link::Shared => {
            // -l: names the file exactly, so the linker cannot pick libchat.a.
            cmd.arg("-L")
                .arg(lib_dir)
                .arg("-l:libchat.so")
                .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
                // DT_RPATH, not RUNPATH: it wins over LD_LIBRARY_PATH, which
                // cargo sets to include <target>/debug, where an older
                // `cargo build` may have left a stale libchat.so.
                .arg("-Wl,--disable-new-dtags");
        }
    }
    let built = cmd.output().expect("run g++");
    assert!(
        built.status.success(),
        "g++ failed to build {src}:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    out
}
