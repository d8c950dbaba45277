//! The rooms and host-authority functions of the C ABI from C:
//! tests/c/misuse_rooms.c, built with gcc against include/chat.h and
//! libchat.a (plainly, and with ASan+UBSan on the C side), calls each one
//! wrongly and rightly over its own loopback clients and checks the named
//! error codes.

mod common;

use common::c_program::{compile, run};

fn misuse_rooms(name: &str, extra: &[&str]) {
    let bin = compile("c_abi_rooms", "tests/c/misuse_rooms.c", name, extra);
    let (ok, out, err) = run(&bin);
    assert!(ok, "{name} failed:\n{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn rooms_and_authority_misuse_gets_named_error_codes() {
    misuse_rooms("misuse_rooms", &[]);
}

/// The same checks with the C side under AddressSanitizer and UBSan. The
/// library itself is not instrumented, but LeakSanitizer intercepts every
/// malloc, so anything these calls leak (a failed `chat_server_new`, a
/// freed server) fails the run too.
#[test]
fn rooms_and_authority_misuse_under_sanitizers() {
    misuse_rooms(
        "misuse_rooms-asan",
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
}
