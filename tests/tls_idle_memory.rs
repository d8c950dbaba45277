//! What an idle TLS connection costs the server, measured with a counting
//! allocator: the heap held by `TlsSession`s once their handshakes are done
//! and their clients gone, per connection, after a small message and after
//! a 16 KiB one. The sessions are the library's own code, compiled in here
//! through `#[path]` (the module is private to the crate), so that only
//! this binary's allocator counts them. Prints the figures; asserts only a
//! generous bound, so a change that adds a large per-connection buffer is
//! noticed.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{IoSlice, Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use common::tls::pki::Pki;
use rustls::client::ClientConnection;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;

mod tls_library;
use tls_library::{TlsConfig, TlsSession, DEFAULT_WRITE_LIMIT};

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed on unchanged to `System`, which upholds
// GlobalAlloc's contract; the counter is only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` obligations are passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc` or
        // `realloc` above) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` obligations are the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn client_config(ca_pem: &[u8], version: &'static SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Handshakes `server` with a fresh client, then the client sends
/// `message` and the server answers 64 bytes; the client is dropped.
fn use_once(server: &mut TlsSession, client_config: &Arc<ClientConfig>, message: &[u8]) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(client_config.clone(), name).unwrap();
    client.set_buffer_limit(None);
    let mut plaintext = Vec::new();
    let mut sent = false;
    for _ in 0..50 {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        server.receive(&wire, &mut plaintext).unwrap();
        if !server.is_handshaking() && !sent {
            client.writer().write_all(message).unwrap();
            sent = true;
            continue;
        }
        let mut out = Vec::new();
        server
            .write_tls_with(|bufs| {
                let n: usize = bufs.iter().map(|b| b.len()).sum();
                bufs.iter().for_each(|b| out.extend_from_slice(b));
                Ok(n)
            })
            .unwrap();
        let mut rd = &out[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            let io = client.process_new_packets().unwrap();
            let mut buf = vec![0; io.plaintext_bytes_to_read()];
            client.reader().read_exact(&mut buf).unwrap();
        }
        if plaintext.len() == message.len() {
            assert_eq!(server.send(&[IoSlice::new(&[b'x'; 64])]), 64);
            server
                .write_tls_with(|bufs| Ok(bufs.iter().map(|b| b.len()).sum()))
                .unwrap();
            return;
        }
    }
    panic!("the exchange did not finish");
}

/// Live heap bytes held by `n` idle sessions that each served one client
/// (the sessions' Vec allocated before counting).
fn held_by(
    config: &TlsConfig,
    version: &'static SupportedProtocolVersion,
    ca: &[u8],
    n: usize,
    message: &[u8],
) -> isize {
    let clients = client_config(ca, version);
    let mut sessions: Vec<TlsSession> = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        let mut s = TlsSession::new(config, DEFAULT_WRITE_LIMIT).unwrap();
        use_once(&mut s, &clients, message);
        sessions.push(s);
    }
    let held = live() - before;
    drop(sessions);
    held
}

#[test]
fn an_idle_tls_connection_costs_a_few_kib() {
    let pki = Pki::new();
    let config = TlsConfig::from_pem(&pki.cert_pem, &pki.key_pem).unwrap();
    let small = b"\x00\x00\x00\x02{}".to_vec();
    let large = vec![b'a'; 16 * 1024];
    println!(
        "size_of::<TlsSession>() = {} bytes",
        std::mem::size_of::<TlsSession>()
    );
    for (name, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        for (what, message) in [("6-byte frame", &small), ("16 KiB message", &large)] {
            // The config's session cache keeps up to 256 entries whatever
            // the number of connections: fill it first, then the difference
            // between two counts is the sessions' own.
            held_by(&config, version, &pki.ca_pem, 300, message);
            let (a, b) = (100, 300);
            let held_a = held_by(&config, version, &pki.ca_pem, a, message);
            let held_b = held_by(&config, version, &pki.ca_pem, b, message);
            let per = (held_b - held_a) / (b - a) as isize;
            println!("{name}, idle after a {what}: {per} heap bytes per connection");
            assert!(
                (0..16 * 1024).contains(&per),
                "{name} after a {what}: {per} bytes per idle connection"
            );
        }
    }
}
