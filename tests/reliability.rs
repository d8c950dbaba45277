//! Faults and floods: rate limits, per-address caps, descriptor
//! exhaustion, slowloris, error storms (churn is tests/churn.rs). Loopback
//! only, bounded.

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chat::{Config, EventKind, Reason};
use common::*;
use serde_json::json;

#[test]
fn a_burst_over_the_frame_rate_is_delayed_not_dropped() {
    let cfg = Config {
        rate_limit_frames: Some(50),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut flooder = TestClient::hello(server.addr, "flooder");
    let mut reader = TestClient::hello(server.addr, "reader");
    flooder.recv(); // presence of reader
    for i in 0..120 {
        flooder.send(&json!({"type": "all", "text": i.to_string()}));
    }
    let warned = flooder.recv_until(|v| v["type"] == "error");
    assert_eq!(warned["code"], "rate_limited");
    for i in 0..120 {
        let got = reader.recv();
        assert_eq!(got["text"], i.to_string(), "message {i} arrives, in order");
    }
}

#[test]
fn a_client_that_stays_over_its_byte_rate_is_dropped() {
    let cfg = Config {
        rate_limit_bytes: Some(2_000),
        rate_limit_grace: Duration::from_millis(500),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut flooder = TestClient::hello(server.addr, "flooder");
    let mut witness = TestClient::hello(server.addr, "witness");
    flooder.recv(); // presence of witness
                    // A writer thread floods without pause; the server stops reading it, so
                    // its writes block once the TCP window fills, until the drop.
    let mut writer = flooder.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        use std::io::Write;
        let payload = json!({"type": "all", "text": "x".repeat(200)}).to_string();
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload.as_bytes());
        while writer.write_all(&frame).is_ok() {}
    });
    let left = witness.recv_until(|v| v["type"] == "presence" && v["state"] == "offline");
    assert_eq!(left["reason"], "protocol_error");
    let seen = flooder.expect_closed();
    assert!(seen.iter().any(|v| v["code"] == "rate_limited"), "warned first");
    assert!(
        seen.iter().any(|v| v["code"] == "protocol_error"),
        "then told why: {:?}",
        seen.last()
    );
    flood.join().unwrap();
    let stats = server.with(|s| s.stats());
    assert_eq!(stats.disconnects_for(Reason::ProtocolError), 1);
}

#[test]
fn max_per_ip_refuses_the_extra_connection() {
    let cfg = Config {
        max_per_ip: Some(2),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let a = TestClient::hello(server.addr, "a");
    let _b = TestClient::hello(server.addr, "b");
    let mut c = TestClient::connect(server.addr);
    let seen = c.expect_closed();
    assert_eq!(seen[0]["code"], "server_full");
    drop(a);
    server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    TestClient::hello(server.addr, "c"); // room again
}

#[test]
fn slowloris_hello_is_cut_at_the_handshake_deadline() {
    let cfg = Config {
        handshake_timeout: Some(Duration::from_millis(300)),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut slow = TestClient::connect(server.addr);
    let hello = json!({"type": "hello", "nick": "slow"}).to_string();
    let mut frame = (hello.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(hello.as_bytes());
    // One byte at a time, each followed by a short wait for the server's
    // answer: the trickle goes on until the server cuts it.
    slow.stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut answer = None;
    for byte in &frame[..frame.len() - 1] {
        slow.send_raw(std::slice::from_ref(byte));
        answer = read_one(&mut slow.stream);
        if answer.is_some() {
            break;
        }
    }
    assert_eq!(
        answer,
        Some(json!({"type": "error", "code": "timeout"})),
        "cut before the frame ended"
    );
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        EventKind::Disconnected {
            reason: Reason::Timeout
        }
    ));
    slow.stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(slow.expect_closed(), Vec::<serde_json::Value>::new());
}

#[test]
fn ten_thousand_errors_from_one_client_do_not_disturb_the_others() {
    let server = ServerThread::default();
    let mut noisy = TestClient::hello(server.addr, "noisy");
    let mut a = TestClient::hello(server.addr, "a");
    let mut b = TestClient::hello(server.addr, "b");
    noisy.recv(); // presence a
    noisy.recv(); // presence b
    a.recv(); // presence b
    let mut reader = noisy.stream.try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 65536];
        let mut total = 0usize;
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let bad: &[u8] = if i % 2 == 0 {
            b"not json"
        } else {
            br#"{"type":"nope"}"#
        };
        batch.extend_from_slice(&(bad.len() as u32).to_be_bytes());
        batch.extend_from_slice(bad);
    }
    noisy.send_raw(&batch);
    for i in 0..100 {
        a.send(&json!({"type": "msg", "to": "b", "text": i.to_string()}));
        assert_eq!(b.recv()["text"], i.to_string());
    }
    noisy.send(&json!({"type": "quit"}));
    let bytes = drain.join().unwrap();
    assert!(
        bytes > 10_000 * 30,
        "every bad frame was answered ({bytes} bytes)"
    );
}

#[test]
fn descriptor_exhaustion_pauses_accepting_and_recovers() {
    // The example server with only 24 descriptors: stdio, listener, wake
    // pipe, and room for a few clients.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=24:24")
        .arg(example_bin("chat_server"))
        .args(["--listen", "127.0.0.1:0", "--max-clients", "100"])
        .stderr(Stdio::null());
    let (mut srv, addr) = spawn_listening(cmd);
    let mut clients: Vec<TestClient> = Vec::new();
    // Fill the server until a connection is not answered: it waits in the
    // kernel's backlog because accept() fails with EMFILE.
    let stuck = loop {
        let mut c = TestClient::connect(addr);
        c.stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.send(&json!({"type": "hello", "nick": format!("u{}", clients.len())}));
        match read_one(&mut c.stream) {
            Some(v) if v["type"] == "welcome" => clients.push(c),
            None => break c,
            Some(v) => panic!("unexpected {v}"),
        }
        assert!(clients.len() < 30, "the descriptor limit never bit");
    };
    // Existing clients are still served.
    clients[0].stream.set_read_timeout(Some(DEADLINE)).unwrap();
    clients[0].send(&json!({"type": "ping", "id": 1}));
    assert_eq!(clients[0].recv_until(|v| v["type"] == "pong")["id"], 1);
    // Free descriptors: the stuck connection gets in and is answered.
    clients.truncate(clients.len() - 3);
    let mut stuck = stuck;
    stuck.stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(stuck.recv()["type"], "welcome");
    assert!(srv.child.try_wait().unwrap().is_none(), "server still running");
}

/// One frame, or `None` on timeout or close.
fn read_one(stream: &mut TcpStream) -> Option<serde_json::Value> {
    use std::io::Read;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[test]
fn a_client_quiet_after_its_limit_is_warned_again_not_dropped() {
    // Over the limit once, silent past the grace, then over again: a new
    // episode (rate_limited), not the old one held against it.
    let cfg = Config {
        rate_limit_frames: Some(5),
        // Longer than the burst below takes to drain (3 frames over, 0.6 s).
        rate_limit_grace: Duration::from_millis(1500),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut c = TestClient::hello(server.addr, "bursty");
    for round in 0..2 {
        for i in 0..8 {
            c.send(&json!({"type": "ping", "id": i}));
        }
        let mut got = Vec::new();
        while got
            .iter()
            .filter(|v: &&serde_json::Value| v["type"] == "pong")
            .count()
            < 8
        {
            got.push(c.recv());
        }
        assert!(
            got.iter().any(|v| v["code"] == "rate_limited"),
            "round {round}: warned: {got:?}"
        );
        assert!(
            !got.iter().any(|v| v["code"] == "protocol_error"),
            "round {round}: not dropped"
        );
        if round == 0 {
            // Quiet for longer than the grace plus a calm second. This is
            // the scenario itself (time passing with nothing sent), not a
            // wait for the server, so it is on the clock.
            let until = Instant::now() + Duration::from_millis(2600);
            while Instant::now() < until {
                std::thread::park_timeout(until - Instant::now());
            }
        }
    }
}

#[test]
fn a_steady_flooder_at_a_low_rate_is_still_dropped() {
    let cfg = Config {
        rate_limit_frames: Some(1),
        rate_limit_grace: Duration::from_millis(1),
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut c = TestClient::hello(server.addr, "flood");
    for i in 0..50 {
        c.send(&json!({"type": "ping", "id": i}));
    }
    let seen = c.expect_closed();
    assert!(seen.iter().any(|v| v["code"] == "rate_limited"), "{seen:?}");
    assert_eq!(
        seen.last().map(|v| v["code"].clone()),
        Some(json!("protocol_error")),
        "{seen:?}"
    );
}
