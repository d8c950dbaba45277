//! The server's TLS configuration, made once from PEM bytes (the host reads
//! its files; the library never opens a path) and shared by every TLS
//! connection.
//!
//! Everything that can be wrong with a certificate and key is found here,
//! at start, with a message that names it: unreadable PEM, no certificate,
//! no key, an encrypted key, a key type the ring provider cannot sign with,
//! a key that is not the certificate's. A handshake never discovers it.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A TLS 1.2 and 1.3 server configuration: one certificate chain and its
/// key, the ring provider, no client certificates. Cloning shares it.
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<ServerConfig>,
}

impl TlsConfig {
    /// Builds a configuration from a PEM certificate chain (the server's own
    /// certificate first, then any intermediates) and a PEM private key
    /// (PKCS#8, SEC1 or PKCS#1 RSA; unencrypted).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let chain = read_chain(cert_pem)?;
        let key = read_key(key_pem)?;
        // Passed explicitly: no process-wide default provider to install,
        // and no panic when a host links another rustls user.
        let provider = Arc::new(ring::default_provider());
        let certified = certified_key(chain, key, &provider)?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        Ok(TlsConfig {
            inner: Arc::new(config),
        })
    }

    /// The rustls configuration, for a new connection.
    pub(crate) fn rustls(&self) -> &Arc<ServerConfig> {
        &self.inner
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Every `CERTIFICATE` section, in order; at least one.
fn read_chain(cert_pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::UnreadableCertPem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            found: section_labels(cert_pem),
        });
    }
    Ok(chain)
}

/// The first private key section, of any of the three formats.
fn read_key(key_pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let found = section_labels(key_pem);
            if found.iter().any(|l| l == "ENCRYPTED PRIVATE KEY") {
                Err(TlsError::EncryptedKey)
            } else {
                Err(TlsError::NoKey { found })
            }
        }
        Err(e) => Err(TlsError::UnreadableKeyPem(e)),
    }
}

/// Loads the key with the provider and checks it against the first
/// certificate's public key (rustls compares the SubjectPublicKeyInfo).
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| unsupported_key(&key, e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(TlsError::KeyMismatch),
        // Every ring signing key knows its public key; should another
        // provider not, the handshake's own signature still proves it.
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(TlsError::BadCertificate(e)),
    }
}

/// An [`TlsError::UnsupportedKey`] that says what the key is. The provider
/// tries every type in turn and reports only that none fit; for RSA, ring's
/// own reason (too small, ...) is worth asking for.
fn unsupported_key(key: &PrivateKeyDer<'_>, error: rustls::Error) -> TlsError {
    let kind = describe_key(key);
    let detail = match ring::sign::RsaSigningKey::new(key) {
        Err(rsa) if kind == "RSA" => rsa.to_string(),
        _ => error.to_string(),
    };
    TlsError::UnsupportedKey {
        kind: kind.to_string(),
        detail,
    }
}

/// The key's algorithm (and curve), read from the object identifiers in its
/// DER: enough to tell a person which key they gave.
fn describe_key(key: &PrivateKeyDer<'_>) -> &'static str {
    // DER encodings of the OIDs (tag 06, length, value).
    const KINDS: &[(&[u8], &str)] = &[
        (
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            "ECDSA P-256",
        ),
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], "ECDSA P-384"),
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], "ECDSA P-521"),
        (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a], "ECDSA secp256k1"),
        (
            &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
            "ECDSA, unknown curve",
        ),
        (
            &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a],
            "RSA-PSS",
        ),
        (
            &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            "RSA",
        ),
        (&[0x06, 0x03, 0x2b, 0x65, 0x70], "Ed25519"),
        (&[0x06, 0x03, 0x2b, 0x65, 0x71], "Ed448"),
        (
            &[0x06, 0x03, 0x2b, 0x65, 0x6e],
            "X25519 (a key-exchange key, not a signing key)",
        ),
        (&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01], "DSA"),
    ];
    let der = key.secret_der();
    if let PrivateKeyDer::Pkcs1(_) = key {
        return "RSA";
    }
    KINDS
        .iter()
        .find(|(oid, _)| der.windows(oid.len()).any(|w| w == *oid))
        .map_or("unknown type", |(_, kind)| kind)
}

/// The labels of the `-----BEGIN LABEL-----` lines in `pem`.
fn section_labels(pem: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(pem)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .map(str::to_string)
        .collect()
}
