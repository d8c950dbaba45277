//! The example server as a program: its log (timestamps, `client N`, lines
//! per client bounded), its flags and the errors it gives for bad ones.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::json;

fn start(args: &[&str]) -> (Spawned, std::net::SocketAddr) {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped());
    spawn_listening(cmd)
}

/// Stops the server with SIGTERM; returns its log.
fn stop(mut srv: Spawned) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(srv.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(srv.wait().success());
    srv.stderr()
}

fn server_with(args: &[&str]) -> Output {
    Command::new(example_bin("chat_server"))
        .args(args)
        .output()
        .unwrap()
}

/// `2026-11-25T20:41:07.512+00:00 `: an RFC 3339 local time with its offset.
fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() > 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && (b[23] == b'+' || b[23] == b'-')
        && digits(24..26)
        && b[26] == b':'
        && digits(27..29)
        && b[29] == b' '
}

#[test]
fn the_log_has_timestamps_and_names_clients_by_number() {
    let (srv, addr) = start(&[]);
    let mut alice = TestClient::hello(addr, "alice");
    alice.send(&json!({"type": "join", "room": "#rust"}));
    alice.recv_until(|v| v["type"] == "joined");
    alice.send(&json!({"type": "part", "room": "#rust"}));
    alice.recv_until(|v| v["type"] == "parted");
    alice.send(&json!({"type": "quit"}));
    alice.expect_closed();
    let log = stop(srv);
    for line in log.lines() {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
        assert_eq!(&line[30..36], "INFO  ", "{line:?}");
        // Only room names are written with '#'.
        let hashes: Vec<&str> = line.match_indices('#').map(|(i, _)| &line[i..]).collect();
        assert!(
            hashes.iter().all(|h| h.starts_with("#rust")),
            "a client written like a room: {line:?}"
        );
    }
    for needle in [
        "INFO  client 1 connected from 127.0.0.1:",
        "INFO  client 1 registered as alice\n",
        "INFO  client 1 alice joined #rust\n",
        "INFO  client 1 alice parted #rust\n",
        "INFO  client 1 alice left (quit)\n",
        "INFO  shutting down\n",
        "INFO  stats: clients 0",
    ] {
        assert!(log.contains(needle), "the log lacks {needle:?}:\n{log}");
    }
}

#[test]
fn join_and_part_churn_is_held_to_a_few_lines_and_counted() {
    let (srv, addr) = start(&["--log-lines-per-client", "3"]);
    let mut churn = TestClient::hello(addr, "churn");
    // 100 joins and parts in one write: read and handled within a round or
    // two, so well inside one second.
    let mut frames = Vec::new();
    for _ in 0..100 {
        for kind in ["join", "part"] {
            let payload = json!({"type": kind, "room": "#busy"}).to_string();
            frames.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            frames.extend_from_slice(payload.as_bytes());
        }
    }
    churn.send_raw(&frames);
    churn.send(&json!({"type": "quit"}));
    let seen = churn.expect_closed();
    assert_eq!(seen.iter().filter(|v| v["type"] == "parted").count(), 100);
    let log = stop(srv);

    let about: Vec<&str> = log.lines().filter(|l| l.contains(" client 1 ")).collect();
    let shown = about
        .iter()
        .filter(|l| {
            l.contains("joined #busy")
                || l.contains("parted #busy")
                || l.contains("connected from")
                || l.contains("registered as")
        })
        .count();
    let held: u64 = about
        .iter()
        .filter_map(|l| l.split("suppressed ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(held > 0, "the churn was held back:\n{log}");
    // Every line is either shown or counted: connect, register, 200 room lines.
    assert_eq!(shown as u64 + held, 202, "{log}");
    assert!(
        log.contains("client 1 churn left (quit)"),
        "leaving is always said:\n{log}"
    );
    assert!(about.len() < 30, "{} lines about one client:\n{log}", about.len());
}

#[test]
fn more_clients_than_select_can_watch_are_refused() {
    let out = server_with(&["--max-clients", "5000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let most = chat::FD_SETSIZE - 16;
    for needle in [
        "--max-clients 5000".to_string(),
        format!("FD_SETSIZE ({})", chat::FD_SETSIZE),
        format!("at most {most}"),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in {err}");
    }
    // The most it allows, it takes.
    let (srv, _) = start(&["--max-clients", &most.to_string()]);
    stop(srv);
}

#[test]
fn listen_takes_a_name() {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args(["--listen", "localhost:0"]).stderr(Stdio::piped());
    let (srv, addr) = spawn_listening(cmd);
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    let _c = TestClient::hello(addr, "byname");
    let log = stop(srv);
    assert!(log.contains("registered as byname"), "{log}");
}

#[test]
fn bad_flags_get_clear_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--max-clients", "abc"], "\"abc\" is not a whole number"),
        (&["--max-clients"], "a value is required for '--max-clients <N>'"),
        (&["--max-clients", "0"], "--max-clients must be at least 1"),
        (&["--bogus"], "unexpected argument '--bogus'"),
        (
            &["--max-frame-bytes", "1"],
            "--max-frame-bytes must be between 64 and 4294967295",
        ),
        (
            &["--max-queue-bytes", "100"],
            "--max-queue-bytes 100 cannot hold one whole frame",
        ),
        (&["--listen", "nowhere"], "\"nowhere\" is not HOST:PORT"),
        (&["--listen", "127.0.0.1:99999"], "is not HOST:PORT"),
        (
            &["--log-level", "loud"],
            "possible values: off, error, warn, info, debug, trace",
        ),
        (
            &["--log-lines-per-client", "0"],
            "--log-lines-per-client must be at least 1",
        ),
    ];
    for (args, needle) in cases {
        let out = server_with(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        for rust in ["None", "Some(", "invalid digit", "ParseIntError"] {
            assert!(!err.contains(rust), "{args:?}: Rust words in {err}");
        }
    }
    // 0 turns the optional limits off: accepted.
    let (srv, _) = start(&[
        "--rate-limit-frames",
        "0",
        "--max-per-ip",
        "0",
        "--idle-timeout-ms",
        "0",
    ]);
    stop(srv);
}

#[test]
fn help_and_version_describe_the_server() {
    let out = server_with(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "chat_server 0.1.0\n");
    let out = server_with(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Run a chat server"), "{help}");
    assert!(
        !help.contains("embeddable"),
        "not the library's description: {help}"
    );
    let most = format!("[default: {}]", chat::FD_SETSIZE - 16);
    for default in [
        "[default: 127.0.0.1:7878]",
        most.as_str(),
        "[default: 65536]",
        "[default: 1048576]",
        "[default: 30000]",
        "[default: 2000]",
        "[default: info]",
    ] {
        assert!(help.contains(default), "--help lacks {default}:\n{help}");
    }
}

/// The library logs through the same `log` facade: its records land in the
/// program's log with the same timestamp and level, and the library's
/// module in brackets. A client dropped for cause is one of them, with
/// what it was told; the listener and the shutdown are others.
#[test]
fn library_records_share_the_log_and_its_format() {
    let (srv, addr) = start(&["--max-frame-bytes", "1024"]);
    let mut bad = TestClient::connect(addr);
    let peer = bad.stream.local_addr().unwrap();
    bad.send_raw(&4096u32.to_be_bytes());
    let farewell = bad.expect_closed();
    assert_eq!(
        farewell.last().unwrap()["code"],
        "frame_too_large",
        "{farewell:?}"
    );
    let log = stop(srv);
    let from_library: Vec<&str> = log.lines().filter(|l| l[30..].contains(" [chat::")).collect();
    for line in &from_library {
        assert!(starts_with_timestamp(line), "no timestamp: {line:?}");
    }
    for needle in [
        format!("INFO  [chat::server] listening on {addr} (at most "),
        format!(
            "INFO  [chat::protocol::session] client 1 from {peer} left: protocol_error: frame of 4096 \
             bytes is over the limit of 1024"
        ),
        "INFO  [chat::server] shutting down: telling 0 clients".to_string(),
    ] {
        assert!(
            from_library.iter().any(|l| l[30..].starts_with(&needle)),
            "no library record {needle:?} in:\n{log}"
        );
    }
}
