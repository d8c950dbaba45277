//! The benchmarks' floor, bench/relay.c (built here with gcc), over real
//! loopback sockets: every frame goes, byte for byte, to every other
//! client and never back to its sender, however the frames are split
//! across writes; and the load generator's `--target relay` measures it
//! with every delivery accounted for.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;

/// Builds bench/relay.c once per test process, whichever test asks first
/// (gcc must be there: the C tests need it too).
fn relay_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = artifact_dir().join("bench-relay");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/relay.c");
            let result = Command::new("gcc")
                .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&out)
                .arg(src)
                .output()
                .expect("run gcc (install it: apt-get install gcc)");
            assert!(
                result.status.success(),
                "gcc {src} failed:\n{}",
                String::from_utf8_lossy(&result.stderr)
            );
            out
        })
        .clone()
}

fn relay() -> (Spawned, SocketAddr) {
    let mut cmd = Command::new(relay_bin());
    cmd.args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = Spawned::new(cmd.spawn().expect("start the relay"));
    let addr = spawned.listening_addr();
    (spawned, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// The next frame's payload (fails at the deadline).
fn next_payload(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a frame before the deadline");
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut payload).expect("the rest of the frame");
    payload
}

#[test]
fn every_frame_reaches_every_other_client_unchanged() {
    let (_relay, addr) = relay();
    let mut a = connect(addr);
    let mut b = connect(addr);
    let mut c = connect(addr);
    // c connected last: once its frame reaches a and b, the relay has
    // accepted all three.
    c.write_all(&frame(b"ready")).unwrap();
    assert_eq!(next_payload(&mut a), b"ready");
    assert_eq!(next_payload(&mut b), b"ready");

    // Two frames in one write, then one split inside its length prefix
    // and again inside its payload, and a large one.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut stream = frame(b"one");
    stream.extend(frame(b"two"));
    let third = frame(b"three, split");
    stream.extend_from_slice(&third[..2]);
    a.write_all(&stream).unwrap();
    a.write_all(&third[2..7]).unwrap();
    a.write_all(&third[7..]).unwrap();
    a.write_all(&frame(&big)).unwrap();
    for rx in [&mut b, &mut c] {
        assert_eq!(next_payload(rx), b"one");
        assert_eq!(next_payload(rx), b"two");
        assert_eq!(next_payload(rx), b"three, split");
        assert_eq!(next_payload(rx), big);
    }

    // Nothing of a's came back to a: the next frame it reads is b's.
    b.write_all(&frame(b"from b")).unwrap();
    assert_eq!(next_payload(&mut a), b"from b");
    assert_eq!(next_payload(&mut c), b"from b");
}

#[test]
fn a_client_that_leaves_does_not_stop_the_others() {
    let (_relay, addr) = relay();
    let mut a = connect(addr);
    let b = connect(addr);
    let mut c = connect(addr);
    c.write_all(&frame(b"ready")).unwrap();
    assert_eq!(next_payload(&mut a), b"ready");
    drop(b);
    for i in 0..100u32 {
        a.write_all(&frame(&i.to_be_bytes())).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(next_payload(&mut c), i.to_be_bytes());
    }
}

#[test]
fn the_load_generator_measures_the_relay() {
    let (relay, addr) = relay();
    let out = Command::new(example_bin("chat_bench"))
        .args(["--target", "relay", "--addr", &addr.to_string()])
        .args(["--scenario", "fanout", "--clients", "3", "--senders", "2"])
        .args(["--messages", "300", "--size", "100", "--window", "8"])
        .args(["--duration-secs", "30", "--json"])
        .args(["--server-pid", &relay.child.id().to_string()])
        .output()
        .expect("run chat_bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat_bench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().find(|l| l.starts_with('{')).expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    // 2 senders, 300 messages each, to the 4 other clients each.
    assert_eq!(v["expected"], 2400);
    assert_eq!(v["deliveries"], 2400, "{line}");
    assert_eq!(v["errors"], 0, "{line}");
    assert_eq!(v["timed_out"], false);
    assert!(
        v["server_cpu_s"].as_f64().is_some(),
        "server CPU read from /proc: {line}"
    );
    assert!(v["lat_p99_us"].as_f64().is_some());

    // Unicast and ping need a server that reads frames: refused.
    let refused = Command::new(example_bin("chat_bench"))
        .args([
            "--target",
            "relay",
            "--addr",
            &addr.to_string(),
            "--scenario",
            "unicast",
        ])
        .output()
        .expect("run chat_bench");
    assert!(!refused.status.success());
}
