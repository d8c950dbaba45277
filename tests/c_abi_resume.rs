//! The C ABI of protocol 1.2's sessions and commands from C:
//! tests/c/misuse_resume.c, built with gcc against include/chat.h and
//! libchat.a (plainly, and with ASan+UBSan on the C side), calls
//! `chat_notice` and `chat_notice_all` wrongly and rightly and drives a
//! session through `CHAT_EVENT_PARKED`, `CHAT_EVENT_RESUMED` and
//! `CHAT_EVENT_RENAMED` over its own loopback clients.

mod common;

use common::c_program::{compile, run};

fn misuse_resume(name: &str, extra: &[&str]) {
    let bin = compile("c_abi_resume", "tests/c/misuse_resume.c", name, extra);
    let (ok, out, err) = run(&bin);
    assert!(ok, "{name} failed:\n{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn notices_and_session_events_from_c() {
    misuse_resume("misuse_resume", &[]);
}

/// The same checks with the C side under AddressSanitizer and UBSan. The
/// library itself is not instrumented, but LeakSanitizer intercepts every
/// malloc, so anything these calls leak (a failed `chat_server_new`, a
/// freed server) fails the run too.
#[test]
fn notices_and_session_events_from_c_under_sanitizers() {
    misuse_resume(
        "misuse_resume-asan",
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
}
