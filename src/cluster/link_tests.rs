//! The link driven in memory: a fake Redis is a byte string.

use std::time::{Duration, Instant};

use super::*;
use crate::cluster::link_config::Probe;
use crate::cluster::link_event::PubMessage;
use crate::codec::resp::Reply;

fn cfg(role: Role) -> LinkConfig {
    let mut cfg = LinkConfig::new("redis://127.0.0.1:6379".parse().unwrap(), role, "n1");
    cfg.reply_timeout = Duration::from_millis(500);
    cfg.ping_interval = Duration::from_millis(200);
    cfg.backoff_min = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_secs(1);
    cfg
}

fn events(link: &mut Link) -> Vec<LinkEvent> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

/// Connects and writes everything queued; returns what was written.
fn connect(link: &mut Link, now: Instant) -> Vec<u8> {
    assert!(link.connect_due(now));
    link.connecting(now);
    link.connected(now);
    flush(link, now)
}

fn flush(link: &mut Link, now: Instant) -> Vec<u8> {
    let out = link.output().to_vec();
    link.wrote(out.len(), now);
    out
}

/// A command link past its handshake (CLIENT SETNAME answered).
fn ready(now: Instant) -> Link {
    let mut link = Link::new(cfg(Role::Commands), now);
    assert_eq!(
        connect(&mut link, now),
        b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$2\r\nn1\r\n"
    );
    link.received(b"+OK\r\n", now);
    assert_eq!(events(&mut link), [LinkEvent::Ready]);
    link
}

#[test]
fn replies_split_anywhere_are_matched_in_order() {
    let now = Instant::now();
    let mut link = ready(now);
    let t: Vec<Token> = ["a", "b", "c"]
        .iter()
        .map(|k| link.send(now, &[b"GET", k.as_bytes()]).unwrap())
        .collect();
    flush(&mut link, now);
    for b in b"+a\r\n:2\r\n$1\r\nc\r\n" {
        link.received(std::slice::from_ref(b), now);
    }
    let want = [
        Reply::Simple(b"a".to_vec()),
        Reply::Integer(2),
        Reply::Bulk(b"c".to_vec()),
    ];
    let got = events(&mut link);
    assert_eq!(got.len(), 3);
    for (i, e) in got.into_iter().enumerate() {
        assert_eq!(
            e,
            LinkEvent::Reply {
                token: t[i],
                reply: want[i].clone()
            }
        );
    }
}

#[test]
fn a_missed_reply_deadline_takes_the_link_down_and_loses_the_command() {
    let now = Instant::now();
    let mut link = ready(now);
    let t = link.send(now, &[b"PING"]).unwrap();
    flush(&mut link, now);
    assert_eq!(link.next_deadline(), Some(now + Duration::from_millis(500)));
    link.tick(now + Duration::from_millis(499));
    assert!(link.is_ready());
    link.tick(now + Duration::from_millis(500));
    assert_eq!(
        events(&mut link),
        [
            LinkEvent::Failed {
                token: t,
                why: Failure::Lost
            },
            LinkEvent::Down(DownReason::ReplyTimeout)
        ]
    );
    // A command never written is kept for the next connection.
    let later = link.send(now, &[b"PING"]).unwrap();
    assert_eq!(link.stats().pending_commands, 1);
    let at = link.next_deadline().unwrap();
    let out = connect(&mut link, at);
    assert!(out.ends_with(b"*1\r\n$4\r\nPING\r\n"), "{out:?}");
    link.received(b"+OK\r\n+PONG\r\n", at);
    let e = events(&mut link);
    assert_eq!(
        e[1],
        LinkEvent::Reply {
            token: later,
            reply: Reply::Simple(b"PONG".to_vec())
        }
    );
}

#[test]
fn an_idle_link_pings_and_a_silent_one_goes_down() {
    let now = Instant::now();
    let mut link = ready(now);
    assert_eq!(link.next_deadline(), Some(now + Duration::from_millis(200)));
    let t1 = now + Duration::from_millis(200);
    link.tick(t1);
    assert_eq!(flush(&mut link, t1), b"*1\r\n$4\r\nPING\r\n");
    link.received(b"+PONG\r\n", t1);
    assert!(events(&mut link).is_empty());
    let t2 = t1 + Duration::from_millis(200);
    link.tick(t2);
    flush(&mut link, t2);
    link.tick(t2 + Duration::from_millis(500));
    assert_eq!(events(&mut link), [LinkEvent::Down(DownReason::ReplyTimeout)]);
}

#[test]
fn garbage_and_unasked_replies_take_the_link_down() {
    let now = Instant::now();
    let mut link = ready(now);
    link.received(b"+surprise\r\n", now);
    assert_eq!(
        events(&mut link),
        [LinkEvent::Down(DownReason::Unexpected("a reply to no command"))]
    );
    let mut link = ready(now);
    link.send(now, &[b"PING"]).unwrap();
    flush(&mut link, now);
    link.received(b"?", now);
    let e = events(&mut link);
    assert_eq!(
        e[1],
        LinkEvent::Down(DownReason::Protocol(resp::DecodeError::BadType(b'?')))
    );
}

#[test]
fn reconnects_back_off_within_bounds_with_jitter() {
    let mut now = Instant::now();
    let mut link = Link::new(cfg(Role::Commands), now);
    let mut delays = Vec::new();
    for _ in 0..20 {
        assert!(link.connect_due(now));
        link.connecting(now);
        link.closed(now);
        let next = link.next_deadline().unwrap();
        delays.push(next - now);
        assert!(!link.connect_due(next - Duration::from_micros(1)));
        now = next;
    }
    assert!(
        delays
            .iter()
            .all(|d| *d >= Duration::from_millis(50) && *d <= Duration::from_secs(1)),
        "{delays:?}"
    );
    assert!(
        delays[10..].iter().all(|d| *d >= Duration::from_millis(500)),
        "{delays:?}"
    );
    assert!(
        delays[10..].windows(2).any(|w| w[0] != w[1]),
        "no jitter: {delays:?}"
    );
    assert_eq!(link.stats().reconnects, 19);
}

#[test]
fn a_connect_that_hangs_times_out() {
    let now = Instant::now();
    let mut link = Link::new(cfg(Role::Commands), now);
    link.connecting(now);
    link.tick(now + Duration::from_secs(2));
    assert_eq!(events(&mut link), [LinkEvent::Down(DownReason::ConnectTimeout)]);
}

#[test]
fn the_output_bound_refuses_then_expires() {
    let now = Instant::now();
    let mut c = cfg(Role::Commands);
    c.max_pending_bytes = 100;
    c.max_pending_age = Duration::from_secs(1);
    let mut link = Link::new(c, now);
    let a = link.send(now, &[b"SET", b"k", &[b'x'; 60]]).unwrap();
    assert!(matches!(
        link.send(now, &[b"SET", b"k", &[b'x'; 60]]),
        Err(SendError::Full { limit: 100, .. })
    ));
    assert_eq!((link.stats().refused, link.stats().pending_commands), (1, 1));
    link.tick(now + Duration::from_secs(1));
    assert_eq!(
        events(&mut link),
        [LinkEvent::Failed {
            token: a,
            why: Failure::Expired
        }]
    );
    assert_eq!(link.stats().pending_bytes, 0);
    assert_eq!(link.subscribe(now, b"x"), Err(SendError::WrongRole));
}

#[test]
fn a_subscriber_is_ready_once_its_own_probe_comes_back() {
    let now = Instant::now();
    let mut c = cfg(Role::Subscriber);
    c.client_name = String::new();
    c.probe = Some(Probe {
        channel: b"me".to_vec(),
        prefix: b"probe".to_vec(),
    });
    let mut link = Link::new(c, now);
    link.subscribe(now, b"all").unwrap();
    assert_eq!(link.send(now, &[b"PING"]), Err(SendError::WrongRole));
    let out = connect(&mut link, now);
    assert_eq!(out, b"*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nall\r\n$2\r\nme\r\n");
    link.received(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nall\r\n:1\r\n", now);
    assert!(link.take_probe(now).is_none(), "not before every confirmation");
    link.received(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nme\r\n:2\r\n", now);
    let (channel, payload) = link.take_probe(now).unwrap();
    assert_eq!(
        (channel.as_slice(), payload.as_slice()),
        (&b"me"[..], &b"probe  1"[..])
    );
    let push = |ch: &[u8], p: &[u8]| {
        let mut b = Vec::new();
        resp::write_command(&mut b, &[b"message", ch, p]);
        b
    };
    // Messages before Ready are handed over; an old probe is not.
    link.received(&push(b"all", b"hello"), now);
    link.received(&push(b"me", b"probe  0"), now);
    link.received(&push(b"me", &payload), now);
    let msg = PubMessage {
        channel: b"all".to_vec(),
        pattern: None,
        payload: b"hello".to_vec(),
    };
    assert_eq!(events(&mut link), [LinkEvent::Message(msg), LinkEvent::Ready]);
    // The next connection probes again, and times out without it.
    link.closed(now);
    let at = link.next_deadline().unwrap();
    connect(&mut link, at);
    link.received(
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nall\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nme\r\n:2\r\n",
        at,
    );
    assert!(link.take_probe(at).is_some());
    link.tick(at + Duration::from_millis(500));
    assert_eq!(
        events(&mut link).last(),
        Some(&LinkEvent::Down(DownReason::ProbeTimeout))
    );
}
