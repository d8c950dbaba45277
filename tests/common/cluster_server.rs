//! Real `chat::Server`s as nodes of one cluster, each pumped by its own
//! thread: started on a free loopback port with a Redis URL, asked for
//! their stats, shut down gracefully or killed (the loop stops and the
//! server is dropped: its sockets close, it says nothing to Redis). Events
//! are taken and dropped every round, so the host is never behind. Every
//! wait has a deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat::{ClusterState, Config, Server, Stats, Waker};

/// How long a wait here may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

type Job = Box<dyn FnOnce(&mut Server) + Send>;

/// One node: a server on its own thread.
pub struct ClusterServer {
    pub addr: SocketAddr,
    jobs: Sender<Job>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    graceful: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// A node's config: loopback, a free port, this Redis and cluster.
pub fn node_config(redis_url: &str, cluster: &str, node_timeout: Duration) -> Config {
    Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        redis_url: Some(redis_url.parse().expect("a Redis URL")),
        cluster_name: cluster.to_string(),
        node_timeout,
        ..Config::default()
    }
}

impl ClusterServer {
    pub fn start(cfg: Config) -> ClusterServer {
        let mut server = Server::new(cfg).expect("server starts");
        let addr = server.local_addr();
        let waker = server.waker();
        let stop = Arc::new(AtomicBool::new(false));
        let graceful = Arc::new(AtomicBool::new(true));
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (stop2, graceful2) = (stop.clone(), graceful.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                server
                    .poll_once(Some(Duration::from_millis(500)))
                    .expect("poll_once");
                while let Ok(job) = job_rx.try_recv() {
                    job(&mut server);
                }
                server.events().for_each(drop);
            }
            if graceful2.load(Ordering::SeqCst) {
                server
                    .shutdown_and_wait(Duration::from_secs(2))
                    .expect("shutdown");
            }
        });
        ClusterServer {
            addr,
            jobs,
            waker,
            stop,
            graceful,
            handle: Some(handle),
        }
    }

    /// Runs `f` on the server's thread.
    pub fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Server) -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .unwrap();
        self.waker.wake().unwrap();
        rx.recv_timeout(WAIT).expect("server thread answered")
    }

    pub fn stats(&self) -> Stats {
        self.with(|s| s.stats())
    }

    /// Waits until `pred` holds for this node's stats.
    pub fn until(&self, what: &str, pred: impl Fn(&Stats) -> bool) -> Stats {
        let end = Instant::now() + WAIT;
        loop {
            let s = self.stats();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < end, "{what}: not before the deadline: {s:?}");
            // Polling a condition (with a deadline), not a sleep that
            // stands for one.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the cluster is up here with `nodes` nodes.
    pub fn until_up(&self, nodes: u64) {
        self.until("cluster up", |s| {
            s.cluster == ClusterState::Up && s.cluster_nodes == nodes
        });
    }

    /// Stops the loop and drops the server: sockets closed, no goodbye.
    pub fn kill(mut self) {
        self.graceful.store(false, Ordering::SeqCst);
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(h) = self.handle.take() {
            h.join().expect("server thread");
        }
    }
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// `n` nodes of cluster `name`, each up and seeing all of them.
pub fn nodes(redis_url: &str, name: &str, n: usize, node_timeout: Duration) -> Vec<ClusterServer> {
    let nodes: Vec<ClusterServer> = (0..n)
        .map(|_| ClusterServer::start(node_config(redis_url, name, node_timeout)))
        .collect();
    for node in &nodes {
        node.until_up(n as u64);
    }
    nodes
}

/// A client of `addr` that has sent hello as `nick`, and the answer.
pub fn hello(addr: std::net::SocketAddr, nick: &str) -> (super::TestClient, serde_json::Value) {
    let mut c = super::TestClient::connect(addr);
    c.send(&serde_json::json!({"type": "hello", "nick": nick}));
    let w = c.recv();
    (c, w)
}

/// Reads `c` until the presence of `nick` in `state` (skipping the rest).
pub fn presence(c: &mut super::TestClient, nick: &str, state: &str) -> serde_json::Value {
    c.recv_until(|v| v["type"] == "presence" && v["nick"] == nick && v["state"] == state)
}
