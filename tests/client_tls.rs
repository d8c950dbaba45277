//! `chat_client --tls` against the example server started with
//! `--tls-cert`/`--tls-key` (certificates from a test CA made by openssl):
//! verified with `--ca`, refused clearly without it (the test CA is in no
//! system's roots), taken with `--insecure`, by host name.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::tls::{ensure_system_roots, Pki};
use common::*;

/// The example server speaking TLS with the test CA's certificate.
fn tls_server(pki: &Pki) -> (Spawned, SocketAddr) {
    let mut cmd = Command::new(fresh_example("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("chain.pem"))
        .arg("--tls-key")
        .arg(pki.path("server.key"))
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    spawn_listening(cmd)
}

fn client(target: &str, nick: &str, tls_args: &[&std::ffi::OsStr]) -> Spawned {
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args(["--connect", target, "--nick", nick, "--tls"])
        .args(tls_args);
    Spawned::start(cmd)
}

#[test]
fn verified_with_the_ca_by_host_name() {
    let pki = Pki::new();
    let (_server, addr) = tls_server(&pki);
    let ca = pki.path("ca.pem");
    let target = format!("localhost:{}", addr.port());
    let mut alice = client(&target, "alice", &["--ca".as_ref(), ca.as_os_str()]);
    let tls = alice.line();
    assert!(
        tls.starts_with("* TLS: TLSv1.3 ") && tls.ends_with(", verified as localhost"),
        "{tls}"
    );
    assert_eq!(alice.line(), "* connected as alice; online: alice");

    // A second client on the same server, by address this time: the
    // certificate names 127.0.0.1 too.
    let mut bob = client(&addr.to_string(), "bob", &["--ca".as_ref(), ca.as_os_str()]);
    assert!(bob.line().ends_with(", verified as 127.0.0.1"));
    assert_eq!(bob.line(), "* connected as bob; online: alice, bob");
    assert_eq!(alice.line(), "* bob is online");
    bob.command("hello over TLS");
    assert_eq!(alice.line(), "<bob> hello over TLS");
    bob.close_stdin();
    let (status, _, err) = bob.finish();
    assert!(status.success(), "{err}");
    assert_eq!(alice.line(), "* bob left (quit)");
    alice.close_stdin();
    assert!(alice.wait().success());
}

#[test]
fn refused_without_the_ca_with_a_clear_message() {
    ensure_system_roots();
    let pki = Pki::new();
    let (_server, addr) = tls_server(&pki);
    let target = format!("localhost:{}", addr.port());
    let (status, out, err) = client(&target, "alice", &[]).finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.contains("cannot verify localhost: its certificate is not signed by")
            && err.contains("give the CA that signed it with --ca FILE, or --insecure"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "said once: {err}");
}

#[test]
fn taken_with_insecure() {
    let pki = Pki::new();
    let (_server, addr) = tls_server(&pki);
    let target = format!("localhost:{}", addr.port());
    let mut alice = client(&target, "alice", &["--insecure".as_ref()]);
    let tls = alice.line();
    assert!(tls.ends_with(", not verified (--insecure)"), "{tls}");
    assert_eq!(alice.line(), "* connected as alice; online: alice");
    alice.close_stdin();
    let (status, _, err) = alice.finish();
    assert!(status.success(), "{err}");
}

#[test]
fn plain_tcp_to_a_tls_port_and_tls_to_a_plain_port_say_what_is_wrong() {
    let pki = Pki::new();
    let (_server, addr) = tls_server(&pki);
    let ca = pki.path("ca.pem");
    // TLS to a plain server.
    let plain = ServerThread::default();
    let (status, _, err) = client(
        &plain.addr.to_string(),
        "alice",
        &[
            "--ca".as_ref(),
            ca.as_os_str(),
            "--timeout-ms".as_ref(),
            "500".as_ref(),
        ],
    )
    .finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("chat_client: 127.0.0.1 did not answer in TLS (is this a plain, non-TLS port?)"),
        "{err}"
    );
    // Plain TCP to the TLS server: no answer to hello it can read.
    let mut cmd = Command::new(fresh_example("chat_client"));
    cmd.args([
        "--connect",
        &addr.to_string(),
        "--nick",
        "alice",
        "--timeout-ms",
        "500",
    ]);
    let (status, _, err) = Spawned::start(cmd).finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        "chat_client: disconnected: connection lost: the server answered in TLS (connect with --tls)\n"
    );
}
