//! Unit tests of the C ABI, calling the exported functions from Rust.
