//! TLS for the select() loop, on rustls with the ring provider: the
//! server's configuration from PEM bytes ([`TlsConfig`]) and a sans-IO
//! session per connection ([`TlsSession`]) that takes the bytes the loop
//! read, hands back plaintext, takes plaintext to send and gives the TLS
//! bytes to the loop's own `sendmsg(MSG_NOSIGNAL)`. Nothing here touches a
//! socket.

mod config;
mod error;
mod session;

pub use config::TlsConfig;
pub use error::TlsError;
pub use session::{Received, TlsFailure, TlsSession, DEFAULT_WRITE_LIMIT};

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod session_tests;

/// Certificates made by openssl for the tests (shared with the integration
/// tests in `tests/common/tls/`).
#[cfg(test)]
#[path = "../../tests/common/tls/pki.rs"]
mod test_pki;
