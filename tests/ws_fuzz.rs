//! What the `ws_decoder` fuzzer (`fuzz/`) checks, kept in `cargo test`: the
//! committed seeds replayed through the same harness (whole, chunked and
//! one-event-at-a-time decoding agree, and every rule holds).

use std::path::PathBuf;

#[path = "../fuzz/harness/ws_check.rs"]
mod ws_check;

#[test]
fn ws_decoder_seeds_pass_the_fuzz_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ws_decoder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "seeds are committed");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        ws_check::run(&data);
    }
}
