//! The RESP2 reply decoder fed arbitrary chunks under arbitrary limits,
//! checked against the `redis-protocol` crate (see `harness/resp_check.rs`).
#![no_main]

#[path = "../harness/resp_check.rs"]
mod resp_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| resp_check::run(data));
