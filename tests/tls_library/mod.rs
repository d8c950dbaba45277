//! The library's TLS module (`src/tls/`: config, errors, session), compiled
//! into a test binary through `#[path]`: the module is private to the crate,
//! and these tests drive the session over real sockets or count its memory
//! with their own allocator before the server uses it.
#![allow(dead_code, unused_imports)]

#[path = "../../src/tls/config.rs"]
mod config;
#[path = "../../src/tls/error.rs"]
mod error;
#[path = "../../src/tls/session.rs"]
mod session;

pub use config::TlsConfig;
pub use error::TlsError;
pub use session::{Received, TlsFailure, TlsSession, DEFAULT_WRITE_LIMIT};
