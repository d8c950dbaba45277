//! The example server as nodes of a cluster: its flags (`--redis`,
//! `--cluster`, `--node-timeout-ms`, `--reuse-port`), two processes sharing
//! one port behind one Redis (clients spread over them see one chat), and
//! the cluster's line in its stats.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};

use common::redis::RedisServer;
use common::{fresh_example, spawn_listening, Spawned, TestClient};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

fn node(redis: &RedisServer, listen: &str) -> (Spawned, SocketAddr) {
    let mut cmd = Command::new(fresh_example("chat_server"));
    cmd.args(["--listen", listen, "--reuse-port", "--redis", &redis.url()])
        .args(["--cluster", "procs", "--node-timeout-ms", "1500"])
        .stderr(Stdio::piped());
    spawn_listening(cmd)
}

fn stop(mut p: Spawned) -> String {
    kill(Pid::from_raw(p.child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(p.wait().success());
    p.stderr()
}

/// `accepted N` from the exit stats line.
fn accepted(log: &str) -> u64 {
    let line = log
        .lines()
        .rfind(|l| l.contains(" stats: clients"))
        .expect("a stats line");
    let at = line.find("accepted ").expect("accepted") + "accepted ".len();
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn two_processes_on_one_port_are_one_chat() {
    let redis = RedisServer::start();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let (a, addr) = node(&redis, &listen);
    let (b, addr_b) = node(&redis, &listen);
    assert_eq!((addr.port(), addr_b.port()), (port, port));
    // Each node is up once it answers hellos (a hello while it is not yet
    // up gets `unavailable`: try again).
    const N: usize = 16;
    let mut clients: Vec<TestClient> = Vec::new();
    for i in 0..N {
        let nick = format!("user{i}");
        let deadline = std::time::Instant::now() + common::DEADLINE;
        let c = loop {
            let mut c = TestClient::connect(addr);
            c.send(&json!({"type": "hello", "nick": nick}));
            let w = c.recv();
            if w["type"] == "welcome" {
                break c;
            }
            assert_eq!(w["code"], "unavailable", "{w}");
            assert!(std::time::Instant::now() < deadline, "never up");
        };
        clients.push(c);
    }
    // Every user sees every other, wherever the kernel put them.
    let last = clients.last_mut().unwrap();
    last.send(&json!({"type": "who"}));
    let users = last.recv_until(|v| v["type"] == "users");
    assert_eq!(users["users"].as_array().unwrap().len(), N, "{users}");
    let first = &mut clients[0];
    first.send(&json!({"type": "all", "text": "to everyone", "id": 1}));
    assert_eq!(
        first.recv_until(|v| v["type"] == "ack"),
        json!({"type":"ack","id":1,"queued":N - 1})
    );
    for c in &mut clients[1..] {
        assert_eq!(c.recv_until(|v| v["type"] == "all")["text"], "to everyone");
    }
    let pid = Pid::from_raw(a.child.id() as i32);
    kill(pid, Signal::SIGUSR1).unwrap();
    drop(clients);
    let (log_a, log_b) = (stop(a), stop(b));
    // Both processes took some of the connections (16 connections all
    // going to one of two listeners: 1 chance in 32,768).
    assert!(accepted(&log_a) > 0 && accepted(&log_b) > 0, "{log_a}\n{log_b}");
    let cluster_line = log_a
        .lines()
        .find(|l| l.contains("stats: cluster up nodes 2"))
        .unwrap_or_else(|| panic!("no cluster stats line:\n{log_a}"));
    assert!(cluster_line.contains("relayed out"), "{cluster_line}");
}

#[test]
fn the_cluster_flags_are_checked() {
    let bin = fresh_example("chat_server");
    for (args, says) in [
        (&["--redis", "redis://redis.example:6379"][..], "--redis"),
        (&["--redis", "rediss://127.0.0.1:6379"][..], "--redis"),
        (&["--cluster", "no spaces"][..], "--cluster"),
        (&["--node-timeout-ms", "50"][..], "--node-timeout-ms"),
    ] {
        let out = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
