//! Why a certificate and key could not become a TLS configuration. Each
//! message names the problem and, where there is one, the usual cause, so
//! that a host can print it as it is (`chat_last_error()`).

use rustls_pki_types::pem;

/// A certificate chain and private key that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate bytes are not readable PEM.
    #[error("the certificate PEM is unreadable: {0}")]
    UnreadableCertPem(pem::Error),
    /// The certificate PEM holds no `CERTIFICATE` section.
    #[error("no certificate found in the certificate PEM (expected a -----BEGIN CERTIFICATE----- section{})", found_note(.found))]
    NoCertificate {
        /// The PEM section labels that were there instead.
        found: Vec<String>,
    },
    /// The key bytes are not readable PEM.
    #[error("the private key PEM is unreadable: {0}")]
    UnreadableKeyPem(pem::Error),
    /// The key PEM holds only a passphrase-protected key.
    #[error("the private key is encrypted (ENCRYPTED PRIVATE KEY); the server needs it unencrypted: openssl pkey -in KEY -out PLAIN_KEY")]
    EncryptedKey,
    /// The key PEM holds no private key section.
    #[error("no private key found in the key PEM (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY{})", found_note(.found))]
    NoKey {
        /// The PEM section labels that were there instead.
        found: Vec<String>,
    },
    /// The key parses as PEM but is of a type, curve or size the server
    /// cannot sign with, or its bytes are not a valid key of its type.
    #[error("unsupported or invalid private key ({kind}): {detail}; supported: RSA 2048 to 8192 bits, ECDSA P-256 or P-384, Ed25519")]
    UnsupportedKey {
        /// What the key looks like ("ECDSA P-521", "RSA", "unknown type").
        kind: String,
        /// What the crypto library said.
        detail: String,
    },
    /// The first certificate cannot be parsed as X.509.
    #[error("the first certificate is not a valid X.509 certificate: {0}")]
    BadCertificate(rustls::Error),
    /// The key is not the one the first certificate was issued for.
    #[error("the private key does not match the certificate (the chain must start with the server's own certificate, the one issued for this key)")]
    KeyMismatch,
    /// Anything else rustls refused while building the configuration.
    #[error("TLS configuration failed: {0}")]
    Config(rustls::Error),
}

/// ", found: A, B" (or "; the PEM has no sections at all").
fn found_note(found: &[String]) -> String {
    if found.is_empty() {
        "; the PEM has no sections at all".to_string()
    } else {
        format!("; found: {}", found.join(", "))
    }
}
