//! A certificate or key that cannot be served fails at start, never at a
//! client's handshake, with a message naming the problem: `Error::Tls` in
//! Rust, `CHAT_ERR_TLS` and `chat_last_error()` in C, `ChatError` with
//! `ERR_TLS` in Python, and a non-zero exit with the message from the
//! example server. A good pair starts, in C too, where a plaintext client
//! on the TLS port shows in `chat_server_stats` as a failed handshake.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use chat::{Config, Error, Server, TlsPem};
use common::tls::{KeyKind, Pki};
use common::{artifact_dir, built_library, fresh_example, loopback_config, start_listening};

/// A bad pair: its name, the certificate PEM, the key PEM, and words the
/// message must hold.
struct Case {
    name: &'static str,
    cert: Vec<u8>,
    key: Vec<u8>,
    says: &'static [&'static str],
}

fn cases(pki: &Pki) -> Vec<Case> {
    let case = |name, cert: &[u8], key: &[u8], says| Case {
        name,
        cert: cert.to_vec(),
        key: key.to_vec(),
        says,
    };
    let ca_first = [pki.ca_pem.as_slice(), pki.cert_pem.as_slice()].concat();
    vec![
        case(
            "certificate and key swapped",
            &pki.key_pem,
            &pki.chain_pem,
            &[
                "no certificate found in the certificate PEM",
                "found: PRIVATE KEY",
            ],
        ),
        case(
            "a key of another certificate",
            &pki.chain_pem,
            &pki.other_key_pem,
            &["the private key does not match the certificate"],
        ),
        case(
            "the CA first in the chain",
            &ca_first,
            &pki.key_pem,
            &[
                "does not match the certificate",
                "must start with the server's own certificate",
            ],
        ),
        case(
            "not PEM at all",
            common::tls::pki::NOT_PEM,
            &pki.key_pem,
            &["no certificate found", "the PEM has no sections at all"],
        ),
        case(
            "an encrypted key",
            &pki.chain_pem,
            &pki.key(KeyKind::EcP256Encrypted),
            &["the private key is encrypted", "openssl pkey"],
        ),
        case(
            "a P-521 key",
            &pki.cert_for(&pki.key(KeyKind::EcP521)),
            &pki.key(KeyKind::EcP521),
            &["unsupported or invalid private key (ECDSA P-521)"],
        ),
        case(
            "no key in the key file",
            &pki.chain_pem,
            &pki.ca_pem,
            &["no private key found in the key PEM", "found: CERTIFICATE"],
        ),
    ]
}

fn assert_says(what: &str, case: &Case, message: &str) {
    for words in case.says {
        assert!(
            message.contains(words),
            "{what}, {}: {message:?} lacks {words:?}",
            case.name
        );
    }
}

/// Writes a case's PEM to files; returns their paths.
fn files(pki: &Pki, i: usize, case: &Case) -> (PathBuf, PathBuf) {
    let cert = pki.path(&format!("case{i}.cert.pem"));
    let key = pki.path(&format!("case{i}.key.pem"));
    std::fs::write(&cert, &case.cert).unwrap();
    std::fs::write(&key, &case.key).unwrap();
    (cert, key)
}

fn tls_config(cert: &[u8], key: &[u8]) -> Config {
    Config {
        tls: Some(TlsPem {
            cert_chain: cert.to_vec(),
            private_key: key.to_vec(),
        }),
        ..loopback_config()
    }
}

#[test]
fn rust_hosts_get_error_tls_naming_the_problem() {
    let pki = Pki::new();
    for case in cases(&pki) {
        match Server::new(tls_config(&case.cert, &case.key)) {
            Err(Error::Tls(e)) => assert_says("Error::Tls", &case, &format!("TLS: {e}")),
            Err(other) => panic!("{}: not Error::Tls but {other:?}", case.name),
            Ok(_) => panic!("{}: the server started", case.name),
        }
    }
    // The good pair starts.
    Server::new(tls_config(&pki.chain_pem, &pki.key_pem)).expect("a good pair starts");
}

#[test]
fn the_example_server_exits_non_zero_with_the_message() {
    let pki = Pki::new();
    for (i, case) in cases(&pki).iter().enumerate() {
        let (cert, key) = files(&pki, i, case);
        let out = Command::new(fresh_example("chat_server"))
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: exited {}", case.name, out.status);
        assert!(
            out.stdout.is_empty(),
            "{}: it printed {:?}",
            case.name,
            out.stdout
        );
        assert!(
            stderr.starts_with("chat_server: TLS: "),
            "{}: {stderr}",
            case.name
        );
        assert_says("chat_server", case, &stderr);
    }
    // A missing file is named as such.
    let out = Command::new(fresh_example("chat_server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
        ])
        .arg(pki.path("server.key"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("/nonexistent/cert.pem"),
        "{stderr}"
    );
    // The good pair: listening, as TLS.
    let mut cmd = Command::new(fresh_example("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("chain.pem"))
        .arg("--tls-key")
        .arg(pki.path("server.key"));
    let (_server, addr) = start_listening(cmd);
    let mut c = common::tls::TlsTestClient::hello(addr, &pki, "alice");
    c.send(&serde_json::json!({"type": "quit"}));
    assert_eq!(c.expect_closed().1, common::tls::TlsEnd::CloseNotify);
}

/// tests/c/tls_start.c, compiled against libchat.a.
fn c_program() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out_dir = artifact_dir().join("c_abi");
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("tls_start");
        let result = Command::new("gcc")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-g",
                "-Iinclude",
            ])
            .arg("tests/c/tls_start.c")
            .arg("-o")
            .arg(&out)
            .arg(built_library("libchat.a"))
            .args(["-lpthread", "-ldl", "-lm"])
            .output()
            .expect("run gcc");
        assert!(
            result.status.success(),
            "gcc tests/c/tls_start.c failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    })
}

#[test]
fn c_hosts_get_chat_err_tls_and_chat_last_error_and_count_failed_handshakes() {
    let pki = Pki::new();
    for (i, case) in cases(&pki).iter().enumerate() {
        let (cert, key) = files(&pki, i, case);
        let out = Command::new(c_program()).arg(&cert).arg(&key).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", case.name);
        let rest = stdout
            .strip_prefix("error -18 ")
            .unwrap_or_else(|| panic!("{}: not CHAT_ERR_TLS (-18): {stdout}", case.name));
        assert_says("chat_last_error", case, rest);
    }
    let out = Command::new(c_program())
        .arg(pki.path("chain.pem"))
        .arg(pki.path("server.key"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plaintext client was never a client.
    assert_eq!(stdout.trim(), "failed_handshakes 1 accepted 0 clients 0");
}

#[test]
fn python_hosts_get_chat_error_with_err_tls() {
    const SCRIPT: &str = r#"
import sys
import chat
from chat.errors import ChatError, ERR_TLS
cert = open(sys.argv[1], "rb").read()
key = open(sys.argv[2], "rb").read()
try:
    chat.Server("127.0.0.1:0", tls_cert_pem=cert, tls_key_pem=key).close()
    print("started")
except ChatError as e:
    assert e.code == ERR_TLS and e.name == "CHAT_ERR_TLS", e
    print("ChatError", e.message)
"#;
    let pki = Pki::new();
    let python = |cert: &Path, key: &Path| {
        let out = Command::new("python3")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CHAT_LIB", built_library("libchat.so"))
            .env("PYTHONPATH", "bindings/python")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-c", SCRIPT])
            .arg(cert)
            .arg(key)
            .output()
            .expect("run python3");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (i, case) in cases(&pki).iter().enumerate() {
        let (cert, key) = files(&pki, i, case);
        let said = python(&cert, &key);
        let message = said
            .strip_prefix("ChatError ")
            .unwrap_or_else(|| panic!("{}: {said}", case.name));
        assert_says("ChatError", case, message);
    }
    assert_eq!(python(&pki.path("chain.pem"), &pki.path("server.key")), "started");
}
