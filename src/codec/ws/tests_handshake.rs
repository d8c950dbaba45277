//! The upgrade handshake and the HTTP replies, in memory.

use super::handshake::accept_key;
use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(lines: &[&str]) -> Vec<u8> {
    let mut r = lines.join("\r\n");
    r.push_str("\r\n\r\n");
    r.into_bytes()
}

fn upgrade_request(path: &str, extra: &[&str]) -> Vec<u8> {
    let get = format!("GET {path} HTTP/1.1");
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let mut lines = vec![
        get.as_str(),
        "Host: example.test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        key.as_str(),
        "Sec-WebSocket-Version: 13",
    ];
    lines.extend_from_slice(extra);
    request(&lines)
}

fn run(cfg: &HandshakeConfig, bytes: &[u8]) -> Outcome {
    Handshake::new().input(bytes, cfg).expect("a complete request")
}

fn status(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Upgrade { .. } => 101,
        Outcome::Reply(r) => r.status,
    }
}

fn head_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Upgrade { response, .. } => String::from_utf8(response.clone()).unwrap(),
        Outcome::Reply(r) => String::from_utf8(r.head.clone()).unwrap(),
    }
}

#[test]
fn the_accept_key_is_the_rfc_example() {
    assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn an_upgrade_is_accepted_and_bytes_after_the_head_are_kept() {
    let cfg = HandshakeConfig::default();
    let mut bytes = upgrade_request("/chat?x=1", &[]);
    bytes.extend_from_slice(b"\x81\x80frame bytes");
    match run(&cfg, &bytes) {
        Outcome::Upgrade { response, rest } => {
            let response = String::from_utf8(response).unwrap();
            assert!(
                response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                "{response}"
            );
            assert!(response.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
            assert!(response.contains("\r\nUpgrade: websocket\r\n"));
            assert!(response.ends_with("\r\n\r\n"));
            assert_eq!(rest, b"\x81\x80frame bytes");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_request_may_arrive_one_byte_at_a_time() {
    let cfg = HandshakeConfig::default();
    let bytes = upgrade_request("/chat", &[]);
    let mut hs = Handshake::new();
    for (i, b) in bytes.iter().enumerate() {
        let out = hs.input(std::slice::from_ref(b), &cfg);
        assert_eq!(out.is_some(), i + 1 == bytes.len(), "at byte {i}");
    }
    assert!(hs.input(b"more", &cfg).is_none(), "one outcome only");
}

#[test]
fn connection_is_a_token_list_as_firefox_sends_it() {
    let cfg = HandshakeConfig::default();
    let firefox = request(&[
        "GET /chat HTTP/1.1",
        "Host: h",
        "Upgrade: WebSocket",
        "Connection: keep-alive, Upgrade",
        &format!("sec-websocket-key: {KEY}"),
        "Sec-WebSocket-Version: 13",
    ]);
    assert_eq!(status(&run(&cfg, &firefox)), 101);
    let no_upgrade_token = request(&[
        "GET /chat HTTP/1.1",
        "Host: h",
        "Upgrade: websocket",
        "Connection: keep-alive",
        &format!("Sec-WebSocket-Key: {KEY}"),
        "Sec-WebSocket-Version: 13",
    ]);
    assert_eq!(status(&run(&cfg, &no_upgrade_token)), 400);
}

#[test]
fn version_13_is_required_with_426() {
    let cfg = HandshakeConfig::default();
    let bytes = upgrade_request("/chat", &[]);
    let old = String::from_utf8(bytes)
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let out = run(&cfg, old.as_bytes());
    assert_eq!(status(&out), 426);
    assert!(head_text(&out).contains("\r\nSec-WebSocket-Version: 13\r\n"));
}

#[test]
fn bad_keys_and_old_http_are_refused_with_400() {
    let cfg = HandshakeConfig::default();
    let good = String::from_utf8(upgrade_request("/chat", &[])).unwrap();
    for bad in [
        good.replace(KEY, "c2hvcnQ="),
        good.replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
        good.replace("HTTP/1.1", "HTTP/1.0"),
        good.replace("Host: example.test\r\n", ""),
        good.replace("Host: example.test\r\n", "Host: a\r\nHost: b\r\n"),
        good.replace("GET /chat", "GET http://example.test/chat"),
        "GARBAGE\x00\x01\r\n\r\n".to_string(),
    ] {
        assert_eq!(status(&run(&cfg, bad.as_bytes())), 400, "{bad:?}");
    }
    let tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    assert_eq!(status(&run(&cfg, tls_hello)), 400);
}

#[test]
fn requests_with_bodies_are_refused() {
    let cfg = HandshakeConfig::default();
    let good = String::from_utf8(upgrade_request("/chat", &[])).unwrap();
    let chunked = good.replace("Host:", "Transfer-Encoding: chunked\r\nHost:");
    let sized = good.replace("Host:", "Content-Length: 5\r\nHost:");
    let zero = good.replace("Host:", "Content-Length: 0\r\nHost:");
    assert_eq!(status(&run(&cfg, chunked.as_bytes())), 400);
    assert_eq!(status(&run(&cfg, sized.as_bytes())), 400);
    assert_eq!(status(&run(&cfg, zero.as_bytes())), 101);
    let page_smuggle = request(&["GET / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"]);
    assert_eq!(status(&run(&cfg, &page_smuggle)), 400);
}

#[test]
fn a_huge_head_is_refused_with_431_without_buffering_it_all() {
    let cfg = HandshakeConfig::default();
    let mut hs = Handshake::new();
    let filler = vec![b'a'; 4000];
    assert!(hs.input(b"GET / HTTP/1.1\r\nX: ", &cfg).is_none());
    assert!(hs.input(&filler, &cfg).is_none());
    let out = hs
        .input(&[&filler[..], &filler[..], &filler[..]].concat(), &cfg)
        .expect("refused");
    assert_eq!(status(&out), 431);
    assert_eq!(hs.buffered(), 0);
    let many: Vec<String> = (0..100).map(|i| format!("X-{i}: y")).collect();
    let mut lines = vec!["GET / HTTP/1.1", "Host: h"];
    lines.extend(many.iter().map(String::as_str));
    assert_eq!(status(&run(&cfg, &request(&lines))), 431);
}

#[test]
fn origins_are_checked_against_the_allow_list() {
    let cfg = HandshakeConfig::default().with_origins(["https://chat.example", "http://localhost:8080/"]);
    let allowed = upgrade_request("/chat", &["Origin: HTTPS://Chat.Example"]);
    let local = upgrade_request("/chat", &["Origin: http://localhost:8080"]);
    let other = upgrade_request("/chat", &["Origin: https://evil.example"]);
    let twice = upgrade_request(
        "/chat",
        &["Origin: https://chat.example", "Origin: https://evil.example"],
    );
    let none = upgrade_request("/chat", &[]);
    assert_eq!(status(&run(&cfg, &allowed)), 101);
    assert_eq!(status(&run(&cfg, &local)), 101);
    assert_eq!(status(&run(&cfg, &other)), 403);
    assert_eq!(status(&run(&cfg, &twice)), 403);
    assert_eq!(status(&run(&cfg, &none)), 101, "no Origin: not a browser");
    assert_eq!(
        status(&run(&HandshakeConfig::default(), &other)),
        101,
        "no list: any origin"
    );
}

#[test]
fn the_page_is_served_on_slash_with_the_path_filled_in() {
    let cfg = HandshakeConfig::new("/ws/v1").unwrap();
    let out = run(&cfg, &request(&["GET / HTTP/1.1", "Host: h"]));
    let Outcome::Reply(reply) = out else {
        panic!("a reply")
    };
    assert_eq!(reply.status, 200);
    let head = String::from_utf8(reply.head.clone()).unwrap();
    assert!(
        head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nCache-Control: no-cache\r\n"));
    assert!(head.contains("\r\nConnection: close\r\n"));
    assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", reply.body.len())));
    let body = std::str::from_utf8(&reply.body).unwrap();
    assert!(body.contains("content=\"/ws/v1\""));
    assert!(!body.contains(page::PATH_PLACEHOLDER));
    assert!(
        std::sync::Arc::ptr_eq(&reply.body, cfg.page()),
        "the page is shared, not copied"
    );
    // HEAD: the same head, no body.
    let Outcome::Reply(head_only) = run(&cfg, &request(&["HEAD / HTTP/1.1", "Host: h"])) else {
        panic!("a reply")
    };
    assert_eq!(head_only.head, reply.head);
    assert!(head_only.body.is_empty());
    // HTTP/1.0 needs no Host.
    assert_eq!(status(&run(&cfg, &request(&["GET / HTTP/1.0"]))), 200);
}

#[test]
fn other_requests_get_short_errors() {
    let cfg = HandshakeConfig::default();
    let cases: [(&[&str], u16); 5] = [
        (&["GET /favicon.ico HTTP/1.1", "Host: h"], 404),
        (&["POST / HTTP/1.1", "Host: h"], 405),
        (&["GET /chat HTTP/1.1", "Host: h"], 426),
        (&["DELETE /nope HTTP/1.1", "Host: h"], 404),
        (&["POST /chat HTTP/1.1", "Host: h", "Upgrade: websocket"], 405),
    ];
    for (lines, want) in cases {
        let out = run(&cfg, &request(lines));
        assert_eq!(status(&out), want, "{lines:?}");
        let Outcome::Reply(reply) = out else {
            unreachable!()
        };
        let text = String::from_utf8(reply.to_vec()).unwrap();
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with('\n') && reply.body.len() < 100, "{text}");
    }
    // An upgrade on another path (the page's, say) is not served the page.
    assert_eq!(status(&run(&cfg, &upgrade_request("/", &[]))), 404);
    let post = run(&cfg, &request(&["POST / HTTP/1.1", "Host: h"]));
    assert!(head_text(&post).contains("\r\nAllow: GET, HEAD\r\n"));
}

#[test]
fn the_upgrade_path_may_be_slash() {
    let cfg = HandshakeConfig::new("/").unwrap();
    assert_eq!(status(&run(&cfg, &upgrade_request("/", &[]))), 101);
    assert_eq!(status(&run(&cfg, &request(&["GET / HTTP/1.1", "Host: h"]))), 200);
}

#[test]
fn bad_paths_are_refused_at_configuration() {
    for bad in ["chat", "", "/a b", "/a?b", "/a#b", "/é"] {
        assert!(HandshakeConfig::new(bad).is_err(), "{bad:?}");
    }
    assert!(HandshakeConfig::new(&format!("/{}", "a".repeat(300))).is_err());
}
