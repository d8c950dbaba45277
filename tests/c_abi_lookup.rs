//! The version 1.2 additions of the C ABI from C: tests/c/misuse_lookup.c,
//! built with gcc against include/chat.h and libchat.a (plainly, and with
//! ASan+UBSan on the C side), checks `ChatEvent.struct_size`, the lookups
//! and the log callback over its own loopback clients.

mod common;

use common::c_program::{compile, run};

fn misuse_lookup(name: &str, extra: &[&str]) {
    let bin = compile("c_abi_lookup", "tests/c/misuse_lookup.c", name, extra);
    let (ok, out, err) = run(&bin);
    assert!(ok, "{name} failed:\n{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn lookups_event_sizes_and_logging_from_c() {
    misuse_lookup("misuse_lookup", &[]);
}

/// The same under AddressSanitizer and UBSan on the C side: a string the
/// library handed out and then freed would be read here.
#[test]
fn lookups_event_sizes_and_logging_from_c_under_sanitizers() {
    misuse_lookup(
        "misuse_lookup-asan",
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
}
