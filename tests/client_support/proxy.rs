//! A TCP proxy the test controls, between a client and a chat server: it
//! reads the server's frames, forwards some, and cuts the connection at a
//! chosen frame (frames it read but did not forward were in flight: the
//! server wrote them, the client never got them), or on demand. It can
//! point new connections at another server, and notes each session token
//! a welcome hands out. Threads and blocking sockets, for a test only.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::common::DEADLINE;

/// Where to cut one connection, counting the server's frames on it.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// Frames forwarded whole.
    pub forward: usize,
    /// Then half of the next frame is forwarded too (the client is left
    /// holding a partial frame).
    pub half: bool,
    /// The cut comes once this many frames (at least `forward` + 1) have
    /// been read from the server.
    pub after_reading: usize,
}

#[derive(Default)]
struct State {
    target: Option<SocketAddr>,
    /// Plans for the next connections, in order; none left: forward all.
    plans: VecDeque<Cut>,
    /// For the next connection: forward this many of the client's frames,
    /// then swallow the rest (the server never reads them).
    swallow_after: Option<usize>,
    /// Client frames swallowed so far.
    swallowed: usize,
    /// Both sockets of every connection, to cut them on demand.
    open: Vec<(TcpStream, TcpStream)>,
    /// Session tokens from welcomes, in order.
    tokens: Vec<String>,
    accepted: usize,
    cuts: usize,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Proxy {
    /// A proxy on a free loopback port, to `target`.
    pub fn to(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new((
            Mutex::new(State {
                target: Some(target),
                ..State::default()
            }),
            Condvar::new(),
        ));
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (target, plan, swallow) = {
                    let mut st = s.0.lock().unwrap();
                    st.accepted += 1;
                    (st.target.unwrap(), st.plans.pop_front(), st.swallow_after.take())
                };
                let Ok(server) = TcpStream::connect(target) else {
                    // Nothing there: the client sees the server close (a
                    // FIN), never a reset. Dropping the socket with the
                    // client's first bytes unread would send a reset, and
                    // whether they arrived first is a race.
                    let _ = client.shutdown(Shutdown::Write);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut &client, &mut std::io::sink());
                    });
                    continue;
                };
                let _ = server.set_nodelay(true);
                let _ = client.set_nodelay(true);
                s.0.lock()
                    .unwrap()
                    .open
                    .push((client.try_clone().unwrap(), server.try_clone().unwrap()));
                s.1.notify_all();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let shared = s.clone();
                std::thread::spawn(move || upstream(c2, s2, swallow, &shared));
                let shared = s.clone();
                std::thread::spawn(move || downstream(server, client, plan, &shared));
            }
        });
        Proxy { addr, shared }
    }

    /// The next connection is cut as `cut` says (then the next plan, ...).
    pub fn plan(&self, cut: Cut) {
        self.shared.0.lock().unwrap().plans.push_back(cut);
    }

    /// The next connection forwards `n` frames from the client, then
    /// swallows the rest.
    pub fn swallow_after(&self, n: usize) {
        self.shared.0.lock().unwrap().swallow_after = Some(n);
    }

    /// Waits until at least `n` client frames were swallowed.
    pub fn wait_swallowed(&self, n: usize) {
        let end = Instant::now() + DEADLINE;
        let mut st = self.shared.0.lock().unwrap();
        while st.swallowed < n {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "proxy: waited for {n} swallowed frames");
            st = self.shared.1.wait_timeout(st, left).unwrap().0;
        }
    }

    /// New connections go to `target`.
    pub fn retarget(&self, target: SocketAddr) {
        self.shared.0.lock().unwrap().target = Some(target);
    }

    /// Cuts every connection open now, both ways.
    pub fn cut_all(&self) {
        let mut st = self.shared.0.lock().unwrap();
        for (c, s) in st.open.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
        st.cuts += 1;
        self.shared.1.notify_all();
    }

    /// Waits until `pred` holds for (connections accepted, cuts made,
    /// tokens seen); panics at the deadline.
    pub fn wait(&self, what: &str, pred: impl Fn(usize, usize, &[String]) -> bool) {
        let end = Instant::now() + DEADLINE;
        let mut st = self.shared.0.lock().unwrap();
        while !pred(st.accepted, st.cuts, &st.tokens) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "proxy: waited for {what}");
            st = self.shared.1.wait_timeout(st, left).unwrap().0;
        }
    }

    /// The session tokens welcomes handed out so far.
    pub fn tokens(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().tokens.clone()
    }
}

/// Client to server: bytes as they come (or the first `swallow` frames,
/// the rest read and dropped), until either side closes.
fn upstream(
    mut from: TcpStream,
    mut to: TcpStream,
    swallow: Option<usize>,
    shared: &(Mutex<State>, Condvar),
) {
    let mut chunk = [0u8; 16 * 1024];
    let mut buf = Vec::new();
    let mut frames = 0;
    while let Ok(n) = from.read(&mut chunk) {
        if n == 0 {
            break;
        }
        let Some(keep) = swallow else {
            if to.write_all(&chunk[..n]).is_err() {
                break;
            }
            continue;
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = take_frame(&mut buf) {
            frames += 1;
            if frames <= keep {
                if to.write_all(&frame).is_err() {
                    return;
                }
            } else {
                shared.0.lock().unwrap().swallowed += 1;
                shared.1.notify_all();
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The first complete frame (length prefix included) off the front of
/// `buf`, if it holds one.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().unwrap()) as usize;
    (buf.len() >= 4 + len).then(|| buf.drain(..4 + len).collect())
}

/// Server to client, frame by frame, as `plan` says.
fn downstream(mut from: TcpStream, mut to: TcpStream, plan: Option<Cut>, shared: &(Mutex<State>, Condvar)) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut frames = 0;
    loop {
        // Every complete frame in the buffer.
        while let Some(frame) = take_frame(&mut buf) {
            frames += 1;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&frame[4..]) {
                if v["type"] == "welcome" {
                    if let Some(t) = v["session"].as_str() {
                        shared.0.lock().unwrap().tokens.push(t.to_string());
                        shared.1.notify_all();
                    }
                }
            }
            let forward = match plan {
                None => frame.len(),
                Some(p) if frames <= p.forward => frame.len(),
                Some(p) if frames == p.forward + 1 && p.half => frame.len() / 2,
                Some(_) => 0,
            };
            if to.write_all(&frame[..forward]).is_err() {
                return;
            }
            if let Some(p) = plan {
                if frames >= p.after_reading.max(p.forward + 1) {
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                    let mut st = shared.0.lock().unwrap();
                    st.cuts += 1;
                    shared.1.notify_all();
                    return;
                }
            }
        }
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
