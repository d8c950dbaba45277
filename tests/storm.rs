//! The example server process under every kind of abuse at once, while a
//! normal client registered before the storm gets every message sent to
//! it, in order.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn the_example_server_survives_a_storm_and_a_normal_client_misses_nothing() {
    let mut cmd = Command::new(example_bin("chat_server"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--max-queue-bytes",
        "262144",
        "--rate-limit-frames",
        "5000",
    ])
    .stderr(Stdio::null());
    let (mut srv, addr) = spawn_listening(cmd);
    let mut normal = TestClient::hello(addr, "normal");
    let mut sender = TestClient::hello(addr, "sender");
    normal.recv(); // sender online

    let deep = format!(
        r#"{{"type":"ping","id":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let hostile: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff, 0xff, 0xff],  // length 2^32-1
        vec![0, 0, 0, 0],              // length 0
        framed(b"\xff\xfe not utf-8"), // invalid UTF-8
        framed(deep.as_bytes()),       // deep nesting
        framed(br#"{"type":"msg","to":"normal","text":"x","from":"spoof"}"#), // before hello
        framed(b"[1,2,3]"),
        framed(b"{\"type\":"),
    ];
    let mut slow: Vec<TcpStream> = Vec::new();
    for round in 0..20 {
        // Hostile connections, each from a fresh socket; some reset.
        for (i, bytes) in hostile.iter().enumerate() {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(bytes);
            if (round + i) % 3 == 0 {
                let _ = nix::sys::socket::setsockopt(
                    &s,
                    nix::sys::socket::sockopt::Linger,
                    &libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
            }
        }
        // A reader that never reads, registered: dropped as slow_consumer
        // once the broadcasts below fill its queue.
        let r = TestClient::hello(addr, &format!("slow{round}"));
        r.stream.set_nonblocking(true).unwrap();
        slow.push(r.stream);
        // A flood of errors from a registered client.
        let mut noisy = TestClient::hello(addr, &format!("noisy{round}"));
        let burst: Vec<u8> = (0..200).flat_map(|_| framed(br#"{"type":"nope"}"#)).collect();
        noisy.send_raw(&burst);
        // The traffic the normal client must get, all of it: a unicast and
        // a big broadcast per round.
        sender.send(&json!({"type": "msg", "to": "normal", "text": format!("m{round}")}));
        sender.send(&json!({"type": "all", "text": format!("b{round}:{}", "x".repeat(20_000))}));
    }
    let mut got = Vec::new();
    while got.len() < 40 {
        let v = normal.recv();
        if v["from"] == "sender" {
            let text = v["text"].as_str().unwrap();
            got.push(text.split(':').next().unwrap().to_string());
        }
    }
    let want: Vec<String> = (0..20).flat_map(|r| [format!("m{r}"), format!("b{r}")]).collect();
    assert_eq!(got, want, "every message, in order");
    // And the server is still alive and serving.
    normal.send(&json!({"type": "ping", "id": "alive"}));
    assert_eq!(normal.recv_until(|v| v["type"] == "pong")["id"], "alive");
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "the server process is still running"
    );
    drop(slow);
}
