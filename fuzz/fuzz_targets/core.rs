//! The whole server state (`chat::testing::Core`) driven by a script of
//! operations from several fake clients and the host, decoded with
//! `arbitrary`; invariants checked after every step (see
//! `harness/core_script.rs`).
#![no_main]

// The script's Outcome is for the regression tests; the fuzzer only needs
// the invariants checked on the way.
#[allow(dead_code)]
#[path = "../harness/core_script.rs"]
mod core_script;

libfuzzer_sys::fuzz_target!(|script: core_script::Script| {
    core_script::run(&script);
});
