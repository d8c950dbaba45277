//! The session against a rustls client (ring provider) in memory, with a
//! CA and server certificate made by openssl: handshakes in both versions,
//! records split at every byte, partial writes at every byte, the
//! plaintext cap, close_notify both ways, garbage, and stalls.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::client::ClientConnection;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{AlertDescription, ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;

use super::test_pki::{KeyKind, Pki};
use super::{Received, TlsConfig, TlsSession, DEFAULT_WRITE_LIMIT};

const TLS13: &SupportedProtocolVersion = &rustls::version::TLS13;
const TLS12: &SupportedProtocolVersion = &rustls::version::TLS12;

fn client_config(ca_pem: &[u8], version: &'static SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A client and a server session joined by two in-memory byte streams.
struct Pair {
    client: ClientConnection,
    server: TlsSession,
    /// Plaintext the server session produced.
    server_got: Vec<u8>,
    /// Plaintext the client read.
    client_got: Vec<u8>,
    /// Every `Received` the server returned, for checks on what it reported.
    reports: Vec<Received>,
    client_saw_close_notify: bool,
}

impl Pair {
    fn new(pki: &Pki, version: &'static SupportedProtocolVersion) -> Pair {
        Pair::with(pki, &pki.cert_pem, &pki.key_pem, version)
    }

    fn with(pki: &Pki, cert: &[u8], key: &[u8], version: &'static SupportedProtocolVersion) -> Pair {
        let server_config = TlsConfig::from_pem(cert, key).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        Pair {
            client: ClientConnection::new(client_config(&pki.ca_pem, version), name).unwrap(),
            server: TlsSession::new(&server_config, DEFAULT_WRITE_LIMIT).unwrap(),
            server_got: Vec::new(),
            client_got: Vec::new(),
            reports: Vec::new(),
            client_saw_close_notify: false,
        }
    }

    /// Everything the client has to send, as one byte string.
    fn client_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut out).unwrap();
        }
        out
    }

    /// Feeds bytes to the server in one call; panics on a TLS failure.
    fn feed_server(&mut self, bytes: &[u8]) {
        let r = self
            .server
            .receive(bytes, &mut self.server_got)
            .expect("server receive");
        self.reports.push(r);
    }

    /// Everything the server has to write, in one unbounded "socket".
    fn server_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let before = self.server.buffered();
        let n = self
            .server
            .write_tls_with(|bufs| take_all(&mut out, bufs))
            .unwrap();
        assert_eq!(n, out.len());
        assert_eq!(n, before, "buffered() counted exactly what was written");
        assert_eq!(self.server.buffered(), 0);
        assert!(!self.server.wants_write());
        out
    }

    /// Gives bytes to the client and reads what plaintext they carry.
    fn feed_client(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.client.read_tls(&mut bytes).unwrap() == 0 {
                break;
            }
            let io = self
                .client
                .process_new_packets()
                .expect("client accepts the server's bytes");
            self.client_saw_close_notify |= io.peer_has_closed();
            let mut buf = vec![0; io.plaintext_bytes_to_read()];
            self.client.reader().read_exact(&mut buf).unwrap();
            self.client_got.extend_from_slice(&buf);
        }
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) {
        for _ in 0..20 {
            let c = self.client_output();
            if !c.is_empty() {
                self.feed_server(&c);
            }
            let s = self.server_output();
            if !s.is_empty() {
                self.feed_client(&s);
            }
            if c.is_empty() && s.is_empty() {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    fn handshake(&mut self) {
        self.pump();
        assert!(!self.client.is_handshaking() && !self.server.is_handshaking());
        let done: Vec<_> = self.reports.iter().filter(|r| r.handshake_done).collect();
        assert_eq!(
            done.len(),
            1,
            "handshake_done reported exactly once: {:?}",
            self.reports
        );
    }

    /// The server sends `header` + `payload` through `send` and `write`,
    /// as a select loop would, until all of it reached the client.
    fn server_sends(&mut self, header: &[u8], payload: &[u8]) {
        let total = header.len() + payload.len();
        let mut sent = 0;
        for _ in 0..10_000 {
            if sent == total {
                break;
            }
            let slices = remaining(header, payload, sent);
            let io: Vec<IoSlice<'_>> = slices.iter().map(|s| IoSlice::new(s)).collect();
            let room = self.server.room();
            let n = self.server.send(&io);
            assert!(n <= room.max(1), "took {n} with room {room}");
            sent += n;
            assert!(self.server.buffered() <= DEFAULT_WRITE_LIMIT + 4 * 29);
            let out = self.server_output();
            self.feed_client(&out);
        }
        assert_eq!(sent, total);
    }
}

/// The parts of header + payload after the first `skip` bytes.
fn remaining<'a>(header: &'a [u8], payload: &'a [u8], skip: usize) -> Vec<&'a [u8]> {
    if skip < header.len() {
        vec![&header[skip..], payload]
    } else {
        vec![&payload[skip - header.len()..]]
    }
}

/// A "socket" that takes everything.
fn take_all(out: &mut Vec<u8>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let before = out.len();
    for b in bufs {
        out.extend_from_slice(b);
    }
    Ok(out.len() - before)
}

/// A "socket" that takes at most `budget` bytes in all, then blocks.
fn take_up_to(out: &mut Vec<u8>, budget: &mut usize, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    if *budget == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let mut n = 0;
    for b in bufs {
        let take = b.len().min(*budget - n);
        out.extend_from_slice(&b[..take]);
        n += take;
        if n == *budget {
            break;
        }
    }
    *budget -= n;
    Ok(n)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn handshakes_in_tls13_and_tls12_then_carries_data_both_ways() {
    let pki = Pki::new();
    for (version, expect) in [
        (TLS13, ProtocolVersion::TLSv1_3),
        (TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let mut pair = Pair::new(&pki, version);
        assert_eq!(
            pair.server.send(&[IoSlice::new(b"early")]),
            0,
            "nothing is taken before the handshake"
        );
        pair.handshake();
        assert_eq!(pair.server.protocol_version(), Some(expect));
        assert_eq!(pair.server.server_name(), Some("localhost"));
        pair.client.writer().write_all(b"\x00\x00\x00\x02{}").unwrap();
        pair.pump();
        assert_eq!(pair.server_got, b"\x00\x00\x00\x02{}");
        pair.server_sends(b"\x00\x00\x00\x05", b"hello");
        assert_eq!(pair.client_got, b"\x00\x00\x00\x05hello");
    }
}

#[test]
fn every_key_type_handshakes_in_both_versions() {
    let pki = Pki::new();
    for kind in [KeyKind::EcP384Pkcs8, KeyKind::Rsa2048Pkcs1, KeyKind::Ed25519] {
        let key = pki.key(kind);
        let cert = pki.cert_for(&key);
        for version in [TLS13, TLS12] {
            let mut pair = Pair::with(&pki, &cert, &key, version);
            pair.handshake();
            pair.server_sends(b"", b"ok");
            assert_eq!(pair.client_got, b"ok", "{kind:?} {version:?}");
        }
    }
}

#[test]
fn tls13_session_tickets_after_the_clients_finished_are_flagged_for_writing() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki, TLS13);
    let hello = pair.client_output();
    pair.feed_server(&hello);
    let flight = pair.server_output();
    pair.feed_client(&flight);
    let finished = pair.client_output();
    pair.feed_server(&finished);
    assert!(pair.reports.last().unwrap().handshake_done);
    // The read that completed the handshake left tickets to write.
    assert!(pair.server.wants_write() && pair.server.buffered() > 0);
    let tickets = pair.server_output();
    pair.feed_client(&tickets);
}

#[test]
fn a_large_message_crosses_many_records_and_the_plaintext_cap_never_stalls() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        let mut pair = Pair::new(&pki, version);
        pair.handshake();
        // 200 KiB from the client, all records given to the server in one
        // call: far more than rustls' 16 KiB plaintext cap.
        let big = payload(200 * 1024);
        pair.client.set_buffer_limit(None);
        pair.client.writer().write_all(&big).unwrap();
        let wire = pair.client_output();
        assert!(wire.len() > big.len() + 12 * 22, "split into records");
        pair.feed_server(&wire);
        assert_eq!(pair.server_got, big);
        assert_eq!(pair.reports.last().unwrap().plaintext, big.len());
        // 300 KiB from the server through the 64 KiB write limit.
        let header = (300u32 * 1024).to_be_bytes();
        let big = payload(300 * 1024);
        pair.server_sends(&header, &big);
        assert_eq!(&pair.client_got[..4], &header);
        assert_eq!(&pair.client_got[4..], &big[..]);
    }
}

#[test]
fn records_split_at_every_byte_reassemble() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        let mut pair = Pair::new(&pki, version);
        // The whole handshake, one byte per receive: every split point of
        // every handshake record.
        for _ in 0..20 {
            let c = pair.client_output();
            for b in &c {
                pair.feed_server(std::slice::from_ref(b));
            }
            let s = pair.server_output();
            pair.feed_client(&s);
            if c.is_empty() && s.is_empty() {
                break;
            }
        }
        assert!(!pair.server.is_handshaking());
        // Two data records, given in two pieces split at every byte (new
        // records each time: a record can be decrypted only once).
        let msg = payload(700);
        let mut wire_len = None;
        for split in 0.. {
            pair.client.writer().write_all(&msg[..300]).unwrap();
            pair.client.writer().write_all(&msg[300..]).unwrap();
            let wire = pair.client_output();
            assert_eq!(*wire_len.get_or_insert(wire.len()), wire.len());
            if split > wire.len() {
                break;
            }
            let mut got = Vec::new();
            let a = pair.server.receive(&wire[..split], &mut got).unwrap();
            let b = pair.server.receive(&wire[split..], &mut got).unwrap();
            assert_eq!(got, msg, "split at {split}");
            assert_eq!(a.plaintext + b.plaintext, msg.len());
        }
    }
}

#[test]
fn partial_writes_at_every_byte_deliver_the_exact_stream() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        let mut pair = Pair::new(&pki, version);
        // The handshake through a socket that takes one byte per call.
        for _ in 0..20 {
            let c = pair.client_output();
            if !c.is_empty() {
                pair.feed_server(&c);
            }
            let mut s = Vec::new();
            while pair.server.wants_write() {
                let mut budget = 1;
                let n = pair
                    .server
                    .write_tls_with(|bufs| take_up_to(&mut s, &mut budget, bufs))
                    .unwrap();
                assert_eq!(n, 1);
            }
            assert_eq!(pair.server.buffered(), 0);
            pair.feed_client(&s);
            if c.is_empty() && s.is_empty() {
                break;
            }
        }
        assert!(!pair.client.is_handshaking());
        // A frame whose first write stops after `cut` bytes, for every cut.
        let header = 600u32.to_be_bytes();
        let msg = payload(600);
        let mut cut = 0;
        loop {
            let io = [IoSlice::new(&header), IoSlice::new(&msg)];
            assert_eq!(pair.server.send(&io), 604);
            let record = pair.server.buffered();
            let mut out = Vec::new();
            let mut budget = cut;
            let first = pair
                .server
                .write_tls_with(|bufs| take_up_to(&mut out, &mut budget, bufs))
                .unwrap();
            assert_eq!(first, cut.min(record));
            assert_eq!(
                pair.server.buffered(),
                record - first,
                "the rest is still counted"
            );
            assert_eq!(pair.server.wants_write(), first < record);
            out.extend(pair.server_output());
            pair.client_got.clear();
            pair.feed_client(&out);
            assert_eq!(&pair.client_got[..4], &header, "cut at {cut}");
            assert_eq!(&pair.client_got[4..], &msg[..], "cut at {cut}");
            if cut > record {
                break;
            }
            cut += 1;
        }
    }
}

#[test]
fn the_write_limit_bounds_what_send_takes_and_the_count_is_exact() {
    let pki = Pki::new();
    let mut pair = Pair::new(&pki, TLS13);
    pair.handshake();
    let big = payload(1024 * 1024);
    let taken = pair.server.send(&[IoSlice::new(&big)]);
    assert_eq!(taken, DEFAULT_WRITE_LIMIT, "took up to the limit");
    let held = pair.server.buffered();
    // 4 records of 16 KiB, each with a 5-byte header, a content-type byte
    // and a 16-byte tag.
    assert_eq!(held, DEFAULT_WRITE_LIMIT + 4 * 22);
    assert_eq!(pair.server.room(), 0);
    assert_eq!(pair.server.send(&[IoSlice::new(&big[taken..])]), 0, "full");
    // A socket that blocks at once leaves everything counted.
    let n = pair
        .server
        .write_tls_with(|_| Err(io::ErrorKind::WouldBlock.into()))
        .unwrap();
    assert_eq!((n, pair.server.buffered()), (0, held));
    // A real error is returned with nothing consumed.
    let e = pair
        .server
        .write_tls_with(|_| Err(io::ErrorKind::BrokenPipe.into()))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(pair.server.buffered(), held);
    let out = pair.server_output();
    assert_eq!(out.len(), held);
    pair.feed_client(&out);
    assert_eq!(pair.client_got, &big[..taken]);
}

#[test]
fn close_notify_from_the_server_follows_its_data_and_ends_sending() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        let mut pair = Pair::new(&pki, version);
        pair.handshake();
        let io = [IoSlice::new(b"\x00\x00\x00\x02"), IoSlice::new(b"{}")];
        assert_eq!(pair.server.send(&io), 6);
        pair.server.close();
        assert!(pair.server.is_closing() && pair.server.wants_write());
        assert_eq!(pair.server.send(&io), 0, "nothing after close_notify");
        pair.server.close(); // a second close queues nothing more
        let out = pair.server_output();
        pair.feed_client(&out);
        assert_eq!(pair.client_got, b"\x00\x00\x00\x02{}");
        assert!(pair.client_saw_close_notify, "the client saw close_notify");
        let mut rest = [0u8; 1];
        assert_eq!(pair.client.reader().read(&mut rest).unwrap(), 0, "a clean end");
    }
}

#[test]
fn close_notify_from_the_client_is_reported_and_later_bytes_ignored() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        let mut pair = Pair::new(&pki, version);
        pair.handshake();
        pair.client.writer().write_all(b"last words").unwrap();
        pair.client.send_close_notify();
        let mut wire = pair.client_output();
        wire.extend_from_slice(b"junk after the end");
        let mut got = Vec::new();
        let r = pair.server.receive(&wire, &mut got).unwrap();
        assert_eq!(got, b"last words");
        assert!(r.peer_closed && pair.server.peer_closed());
        assert_eq!(pair.server.receive(b"more junk", &mut got).unwrap().plaintext, 0);
        // The server answers with its own close_notify.
        pair.server.close();
        let out = pair.server_output();
        pair.feed_client(&out);
        assert!(pair.client_saw_close_notify);
    }
}

/// What a server session makes of `bytes` sent instead of a ClientHello.
fn refuse(bytes: &[u8]) -> (super::TlsFailure, Vec<u8>, TlsSession) {
    let pki = Pki::new();
    let config = TlsConfig::from_pem(&pki.cert_pem, &pki.key_pem).unwrap();
    let mut server = TlsSession::new(&config, DEFAULT_WRITE_LIMIT).unwrap();
    let mut got = Vec::new();
    let failure = server.receive(bytes, &mut got).expect_err("refused");
    assert!(got.is_empty(), "no plaintext from garbage");
    let buffered = server.buffered();
    let mut out = Vec::new();
    server.write_tls_with(|bufs| take_all(&mut out, bufs)).unwrap();
    assert_eq!(out.len(), buffered, "the alert was counted");
    (failure, out, server)
}

#[test]
fn plaintext_or_garbage_instead_of_a_client_hello_fails_with_an_alert() {
    let framed = b"\x00\x00\x00\x1c{\"type\":\"hello\",\"nick\":\"al\"}";
    let http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // A TLS record header (handshake, TLS 1.0) over a body that is no
    // ClientHello.
    let bad_hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff";
    for (what, bytes) in [
        ("framed JSON", &framed[..]),
        ("HTTP", &http[..]),
        ("a bad hello", &bad_hello[..]),
    ] {
        let (failure, out, mut server) = refuse(bytes);
        assert!(failure.during_handshake, "{what}: {failure}");
        let alert = failure
            .alert
            .unwrap_or_else(|| panic!("{what}: no alert read: {failure}"));
        // What goes on the wire is exactly that one plaintext alert record.
        assert_eq!(out.len(), 7, "{what}: {out:?}");
        assert_eq!(&out[..2], &[21, 3], "{what}");
        assert_eq!(out[5], 2, "{what}: a fatal alert");
        assert_eq!(AlertDescription::from(out[6]), alert, "{what}");
        assert!(failure.to_string().contains("handshake failed"), "{failure}");
        // Every later call reports the same failure; nothing more is sent.
        let again = server.receive(b"\x16\x03\x01", &mut Vec::new()).unwrap_err();
        assert_eq!(again.to_string(), failure.to_string());
        assert_eq!(server.send(&[IoSlice::new(b"x")]), 0);
        server.close();
        assert!(!server.wants_write(), "no close_notify after a fatal alert");
        assert!(server.failure().is_some());
    }
}

#[test]
fn a_client_that_stalls_mid_handshake_leaves_the_session_waiting_quietly() {
    let pki = Pki::new();
    for version in [TLS13, TLS12] {
        // Half a ClientHello, then nothing.
        let mut pair = Pair::new(&pki, version);
        let hello = pair.client_output();
        pair.feed_server(&hello[..hello.len() / 2]);
        assert!(pair.server.is_handshaking());
        assert!(!pair.server.wants_write(), "nothing to say yet");
        assert_eq!(pair.reports.last().unwrap(), &Received::default());
        // The whole ClientHello, the server's flight, then no Finished.
        let mut pair = Pair::new(&pki, version);
        let hello = pair.client_output();
        pair.feed_server(&hello);
        let flight = pair.server_output();
        assert!(!flight.is_empty());
        assert!(pair.server.is_handshaking(), "waiting for the client's Finished");
        assert!(!pair.server.wants_write());
        assert_eq!(pair.server.send(&[IoSlice::new(b"x")]), 0);
        assert!(pair.server_got.is_empty());
        // Closing it then (its handshake deadline passed) queues an alert.
        pair.server.close();
        assert!(pair.server.is_closing());
    }
}
