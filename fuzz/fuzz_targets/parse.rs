//! Client payload parsing (`chat::message::parse`) on arbitrary bytes (see
//! `harness/parse_check.rs`).
#![no_main]

#[path = "../harness/parse_check.rs"]
mod parse_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| parse_check::run(data));
