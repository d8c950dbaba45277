//! The WebSocket decoder fed arbitrary chunks three ways, which must agree
//! and keep every rule (see `harness/ws_check.rs`).
#![no_main]

#[path = "../harness/ws_check.rs"]
mod ws_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_check::run(data));
