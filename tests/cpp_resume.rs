//! The protocol 1.2 part of the C++ wrapper (bindings/cpp/chat.hpp):
//! tests/cpp/resume_check.cpp, built with g++ against libchat.a, calls
//! `notice`/`notice_all` and drives a resumable session of its own through
//! the `parked`, `resumed` and `renamed` events.

mod common;
// Shared with cpp_host.rs, which uses all of it.
#[allow(dead_code)]
mod cpp;

use std::process::Command;

use cpp::{compile, Link};

#[test]
fn wrapper_notices_and_session_events() {
    let bin = compile("tests/cpp/resume_check.cpp", "resume_check", Link::Static);
    let out = Command::new(&bin).output().expect("run resume_check");
    assert!(
        out.status.success(),
        "resume_check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
