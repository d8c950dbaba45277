//! The frame decoder fed arbitrary chunks, checked against a reference
//! decoder (see `harness/frame_check.rs`).
#![no_main]

#[path = "../harness/frame_check.rs"]
mod frame_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| frame_check::run(data));
