//! Test certificates made by the system's `openssl`, with the same commands
//! `docs/tls.md` gives to people: a CA, a server certificate it signs for
//! `localhost` and `127.0.0.1`, keys in every format the server takes (and
//! some it refuses), and PEM that is broken in the ways people break it.
//!
//! Why openssl rather than a certificate crate: the documented commands are
//! the ones tested; it writes every key format (PKCS#8, SEC1, PKCS#1 RSA,
//! encrypted, P-521, Ed448), which no ring-backed crate can; and the TLS
//! tests need `openssl s_client` anyway. It is installed with apt-get when
//! missing, or the test fails saying so.
//!
//! Used by the library's unit tests (`src/tls/`, through `#[path]`) and by
//! the integration tests (`tests/common/tls.rs`); std only.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Names the tests connect to; both are in the server certificate.
pub const SERVER_DNS: &str = "localhost";
/// The IP address in the server certificate.
pub const SERVER_IP: &str = "127.0.0.1";

/// The extensions of a server certificate (what `docs/tls.md` shows).
const SERVER_EXT: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
basicConstraints=critical,CA:FALSE\n\
keyUsage=critical,digitalSignature,keyEncipherment\n\
extendedKeyUsage=serverAuth\n";

/// PEM that is not PEM at all.
pub const NOT_PEM: &[u8] = b"this is not a certificate\n";
/// A certificate section whose body is not base64.
pub const BAD_BASE64_PEM: &[u8] =
    b"-----BEGIN CERTIFICATE-----\nnot*base64*at*all!\n-----END CERTIFICATE-----\n";
/// A certificate section that never ends (a truncated file).
pub const TRUNCATED_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n";
/// A well-formed PEM certificate section whose bytes are no certificate.
pub const NOT_A_CERT_PEM: &[u8] =
    b"-----BEGIN CERTIFICATE-----\naGVsbG8sIEkgYW0gbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

/// Key formats and types, each made by one openssl command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256, PKCS#8 (`PRIVATE KEY`): what `openssl req -newkey ec` writes.
    EcP256Pkcs8,
    /// ECDSA P-256, SEC1 (`EC PRIVATE KEY`).
    EcP256Sec1,
    /// ECDSA P-384, PKCS#8.
    EcP384Pkcs8,
    /// RSA 2048, PKCS#1 (`RSA PRIVATE KEY`).
    Rsa2048Pkcs1,
    /// RSA 2048, PKCS#8.
    Rsa2048Pkcs8,
    /// Ed25519, PKCS#8.
    Ed25519,
    /// ECDSA P-521: valid, but not a curve the server can sign with.
    EcP521,
    /// Ed448: valid, but not supported.
    Ed448,
    /// RSA 1024: too small to be accepted.
    Rsa1024,
    /// ECDSA P-256 encrypted with a passphrase (`ENCRYPTED PRIVATE KEY`).
    EcP256Encrypted,
}

impl KeyKind {
    /// The openssl arguments that write this kind of key to `out`.
    fn command(self, out: &str) -> Vec<String> {
        let genpkey = |alg: &[&str]| {
            let mut args = vec!["genpkey".to_string()];
            args.extend(alg.iter().map(|s| s.to_string()));
            args.extend(["-out".to_string(), out.to_string()]);
            args
        };
        match self {
            KeyKind::EcP256Pkcs8 | KeyKind::EcP256Sec1 | KeyKind::EcP256Encrypted => {
                genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
            }
            KeyKind::EcP384Pkcs8 => genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
            KeyKind::EcP521 => genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]),
            KeyKind::Rsa2048Pkcs1 => ["genrsa", "-traditional", "-out", out, "2048"]
                .map(String::from)
                .to_vec(),
            KeyKind::Rsa2048Pkcs8 => genpkey(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
            KeyKind::Rsa1024 => genpkey(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
            KeyKind::Ed25519 => genpkey(&["-algorithm", "ED25519"]),
            KeyKind::Ed448 => genpkey(&["-algorithm", "ED448"]),
        }
    }
}

/// A CA and a server certificate it signed, in a temporary folder (removed
/// on drop) so that programs taking file names can read them.
pub struct Pki {
    /// The folder holding `ca.pem`, `server.pem`, `server.key`, `chain.pem`,
    /// `other.key`.
    pub dir: PathBuf,
    /// The CA certificate (what a client trusts).
    pub ca_pem: Vec<u8>,
    /// The server certificate alone.
    pub cert_pem: Vec<u8>,
    /// The server certificate, then the CA's: a chain, leaf first.
    pub chain_pem: Vec<u8>,
    /// The server's key (ECDSA P-256, PKCS#8).
    pub key_pem: Vec<u8>,
    /// A valid key of the same type that matches no certificate here.
    pub other_key_pem: Vec<u8>,
}

impl Pki {
    /// Makes a fresh CA, server key and server certificate.
    pub fn new() -> Pki {
        let dir = fresh_dir();
        // A name of its own: two test CAs must not be taken for each other.
        let ca_subject = format!("/CN=chat test CA {}", dir.file_name().unwrap().to_string_lossy());
        run_openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                &ca_subject,
            ],
        );
        run_openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(dir.join("server.ext"), SERVER_EXT).unwrap();
        sign(&dir, "server.csr", "server.pem");
        KeyKind::EcP256Pkcs8.write(&dir, "other.key");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let (ca_pem, cert_pem) = (read("ca.pem"), read("server.pem"));
        let chain_pem = [cert_pem.as_slice(), ca_pem.as_slice()].concat();
        std::fs::write(dir.join("chain.pem"), &chain_pem).unwrap();
        Pki {
            ca_pem,
            cert_pem,
            chain_pem,
            key_pem: read("server.key"),
            other_key_pem: read("other.key"),
            dir,
        }
    }

    /// A file in [`Pki::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A new key of `kind`, as PEM.
    pub fn key(&self, kind: KeyKind) -> Vec<u8> {
        let name = format!("{kind:?}.key");
        kind.write(&self.dir, &name);
        std::fs::read(self.dir.join(name)).unwrap()
    }

    /// A server certificate (for localhost and 127.0.0.1) signed by the CA
    /// for `key_pem`, as PEM.
    pub fn cert_for(&self, key_pem: &[u8]) -> Vec<u8> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let (key, csr, pem) = (format!("k{n}.key"), format!("k{n}.csr"), format!("k{n}.pem"));
        std::fs::write(self.dir.join(&key), key_pem).unwrap();
        run_openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
        );
        sign(&self.dir, &csr, &pem);
        std::fs::read(self.dir.join(pem)).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl KeyKind {
    /// Writes a key of this kind to `dir/name`.
    fn write(self, dir: &Path, name: &str) {
        let convert: &[&str] = match self {
            KeyKind::EcP256Sec1 => &["pkey", "-traditional"],
            KeyKind::EcP256Encrypted => &["pkey", "-aes256", "-passout", "pass:secret"],
            _ => &[],
        };
        // A key to convert is made under another name first: openssl may
        // truncate its output file before reading its input.
        let made = if convert.is_empty() {
            name.to_string()
        } else {
            format!("{name}.raw")
        };
        let args = self.command(&made);
        run_openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        if !convert.is_empty() {
            let mut args = convert.to_vec();
            args.extend(["-in", &made, "-out", name]);
            run_openssl(dir, &args);
        }
    }
}

/// Signs `csr` with the CA in `dir` as a server certificate.
fn sign(dir: &Path, csr: &str, out: &str) {
    run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "825",
            "-extfile",
            "server.ext",
            "-out",
            out,
        ],
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A new empty folder under the system's temporary folder.
fn fresh_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("chat-tls-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr if it fails.
pub fn run_openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(openssl())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `openssl` program, installed with apt-get if it is not on PATH.
pub fn openssl() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| ensure_program("openssl", "openssl"))
}

/// Finds `program` on PATH, or installs Debian's `package` (apt-get, as
/// root); panics saying what to install if neither works. Never a skip.
pub fn ensure_program(program: &str, package: &str) -> PathBuf {
    if let Some(found) = on_path(program) {
        return found;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine may have no package lists yet.
    if !install() {
        let _ = Command::new("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .status();
        install();
    }
    on_path(program).unwrap_or_else(|| {
        panic!("{program} is needed by this test and could not be installed: run `apt-get install {package}`")
    })
}

/// `program`'s path if it is in a PATH folder.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
