//! Every way a certificate and key can be given, right and wrong, with
//! keys and certificates made by openssl.

use super::test_pki::{KeyKind, Pki, BAD_BASE64_PEM, NOT_A_CERT_PEM, NOT_PEM, TRUNCATED_PEM};
use super::{TlsConfig, TlsError};

/// The error for this pair, with its message (which must name the problem).
fn refused(cert: &[u8], key: &[u8]) -> (TlsError, String) {
    let e = TlsConfig::from_pem(cert, key).expect_err("should be refused");
    let text = e.to_string();
    (e, text)
}

#[test]
fn every_supported_key_type_and_format_is_accepted() {
    let pki = Pki::new();
    for kind in [
        KeyKind::EcP256Pkcs8,
        KeyKind::EcP256Sec1,
        KeyKind::EcP384Pkcs8,
        KeyKind::Rsa2048Pkcs1,
        KeyKind::Rsa2048Pkcs8,
        KeyKind::Ed25519,
    ] {
        let key = pki.key(kind);
        let cert = pki.cert_for(&key);
        TlsConfig::from_pem(&cert, &key).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}

#[test]
fn a_chain_leaf_first_is_accepted_and_ca_first_is_a_mismatch() {
    let pki = Pki::new();
    TlsConfig::from_pem(&pki.chain_pem, &pki.key_pem).expect("leaf, then CA");
    let ca_first = [pki.ca_pem.as_slice(), pki.cert_pem.as_slice()].concat();
    let (e, text) = refused(&ca_first, &pki.key_pem);
    assert!(matches!(e, TlsError::KeyMismatch), "{e:?}");
    assert!(
        text.contains("must start with the server's own certificate"),
        "{text}"
    );
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let pki = Pki::new();
    let (e, text) = refused(&pki.cert_pem, &pki.other_key_pem);
    assert!(matches!(e, TlsError::KeyMismatch), "{e:?}");
    assert!(text.contains("does not match the certificate"), "{text}");
    // Another type of key entirely is a mismatch too, not a parse error.
    let rsa = pki.key(KeyKind::Rsa2048Pkcs8);
    assert!(matches!(refused(&pki.cert_pem, &rsa).0, TlsError::KeyMismatch));
}

#[test]
fn a_certificate_pem_without_certificates_says_what_it_holds() {
    let pki = Pki::new();
    let (e, text) = refused(b"", &pki.key_pem);
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
    assert!(
        text.contains("no certificate found") && text.contains("no sections at all"),
        "{text}"
    );
    let (_, text) = refused(NOT_PEM, &pki.key_pem);
    assert!(text.contains("no certificate found"), "{text}");
    // Certificate and key swapped.
    let (e, text) = refused(&pki.key_pem, &pki.cert_pem);
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
    assert!(text.contains("found: PRIVATE KEY"), "{text}");
}

#[test]
fn unreadable_certificate_pem_is_named() {
    let pki = Pki::new();
    for garbage in [BAD_BASE64_PEM, TRUNCATED_PEM] {
        let (e, text) = refused(garbage, &pki.key_pem);
        assert!(matches!(e, TlsError::UnreadableCertPem(_)), "{e:?}");
        assert!(text.starts_with("the certificate PEM is unreadable"), "{text}");
    }
}

#[test]
fn a_certificate_section_that_is_not_x509_is_named() {
    let pki = Pki::new();
    let (e, text) = refused(NOT_A_CERT_PEM, &pki.key_pem);
    assert!(matches!(e, TlsError::BadCertificate(_)), "{e:?}");
    assert!(text.contains("not a valid X.509 certificate"), "{text}");
}

#[test]
fn a_key_pem_without_a_key_says_what_it_holds() {
    let pki = Pki::new();
    let (e, text) = refused(&pki.cert_pem, &pki.cert_pem);
    assert!(matches!(e, TlsError::NoKey { .. }), "{e:?}");
    assert!(
        text.contains("no private key found") && text.contains("found: CERTIFICATE"),
        "{text}"
    );
    // A broken section of any kind makes the whole key PEM unreadable.
    let (e, _) = refused(&pki.cert_pem, BAD_BASE64_PEM);
    assert!(matches!(e, TlsError::UnreadableKeyPem(_)), "{e:?}");
    let bad_key = b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    let (e, text) = refused(&pki.cert_pem, bad_key);
    assert!(matches!(e, TlsError::UnreadableKeyPem(_)), "{e:?}");
    assert!(text.starts_with("the private key PEM is unreadable"), "{text}");
}

#[test]
fn an_encrypted_key_says_to_decrypt_it() {
    let pki = Pki::new();
    let key = pki.key(KeyKind::EcP256Encrypted);
    let (e, text) = refused(&pki.cert_pem, &key);
    assert!(matches!(e, TlsError::EncryptedKey), "{e:?}");
    assert!(text.contains("openssl pkey"), "{text}");
}

#[test]
fn unsupported_keys_name_their_type() {
    let pki = Pki::new();
    for (kind, named, detail) in [
        (KeyKind::EcP521, "ECDSA P-521", "failed to parse"),
        (KeyKind::Ed448, "Ed448", "failed to parse"),
        (KeyKind::Rsa1024, "RSA", "TooSmall"),
    ] {
        let key = pki.key(kind);
        let (e, text) = refused(&pki.cert_pem, &key);
        let TlsError::UnsupportedKey { kind: got, .. } = &e else {
            panic!("{kind:?}: {e:?}")
        };
        assert_eq!(got, named, "{text}");
        assert!(
            text.contains(detail) && text.contains("supported: RSA 2048"),
            "{text}"
        );
    }
    // Base64 that decodes to no key at all.
    let junk = b"-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
    let (e, text) = refused(&pki.cert_pem, junk);
    assert!(matches!(e, TlsError::UnsupportedKey { .. }), "{e:?}");
    assert!(text.contains("unknown type"), "{text}");
}
