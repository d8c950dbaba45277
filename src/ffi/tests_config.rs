//! Unit tests of the `ChatConfig` fields of rooms and authority, called
//! from Rust the way a C host calls them.
use std::mem::{offset_of, size_of};
use std::ptr;
use std::time::Duration;

use super::tests_support::*;
use super::*;
use crate::Config;

#[test]
fn default_config_fills_the_new_fields_with_the_rust_defaults() {
    let mut cfg = ChatConfig {
        handshake_timeout_ms: 7,
        max_per_ip: 7,
        rate_limit_frames: 7,
        rate_limit_grace_ms: 7,
        rate_limit_bytes: 7,
        max_rooms_per_client: 7,
        max_members_per_room: 7,
        max_rooms: 7,
        approve_registrations: 7,
        approval_timeout_ms: 7,
        intercept_messages: 7,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a writable ChatConfig.
    unsafe { chat_config_default(&mut cfg) };
    assert_eq!(cfg.handshake_timeout_ms, 30_000);
    assert_eq!(
        (cfg.max_per_ip, cfg.rate_limit_frames, cfg.rate_limit_bytes),
        (0, 0, 0)
    );
    assert_eq!(cfg.rate_limit_grace_ms, 10_000);
    assert_eq!(
        (cfg.max_rooms_per_client, cfg.max_members_per_room, cfg.max_rooms),
        (32, 1024, 1024)
    );
    assert_eq!(
        (
            cfg.approve_registrations,
            cfg.approval_timeout_ms,
            cfg.intercept_messages
        ),
        (0, 10_000, 0)
    );
    // SAFETY: `cfg` is a full ChatConfig.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read, Config::default(), "the defaults survive the round trip");
}

#[test]
fn new_config_fields_reach_the_server_config() {
    let mut cfg = ChatConfig {
        handshake_timeout_ms: 0,
        max_per_ip: 3,
        rate_limit_frames: 50,
        rate_limit_grace_ms: 0,
        rate_limit_bytes: 1 << 40,
        max_rooms_per_client: 2,
        max_members_per_room: 5,
        max_rooms: 0,
        approve_registrations: 1,
        approval_timeout_ms: 1500,
        intercept_messages: 1,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a full ChatConfig.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    let want = Config {
        handshake_timeout: None,
        max_per_ip: Some(3),
        rate_limit_frames: Some(50),
        rate_limit_grace: Duration::ZERO,
        rate_limit_bytes: Some(1 << 40),
        max_rooms_per_client: 2,
        max_members_per_room: 5,
        max_rooms: 0,
        approve_registrations: true,
        approval_timeout: Duration::from_millis(1500),
        intercept_messages: true,
        ..Config::default()
    };
    assert_eq!(read, want);
    cfg.handshake_timeout_ms = 250;
    cfg.max_per_ip = 0;
    cfg.rate_limit_frames = 0;
    cfg.rate_limit_bytes = 0;
    // SAFETY: as above.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read.handshake_timeout, Some(Duration::from_millis(250)));
    assert_eq!(
        (read.max_per_ip, read.rate_limit_frames, read.rate_limit_bytes),
        (None, None, None),
        "0 turns a limit off"
    );
}

#[test]
fn bad_flags_and_a_zero_approval_timeout_are_config_errors() {
    type Change = fn(&mut ChatConfig);
    let cases: [(&str, Change); 3] = [
        ("approve_registrations", |c| c.approve_registrations = 2),
        ("intercept_messages", |c| c.intercept_messages = u32::MAX),
        ("approval_timeout_ms", |c| c.approval_timeout_ms = 0),
    ];
    for (what, change) in cases {
        let mut cfg = config::default_config();
        cfg.listen_addr = c"127.0.0.1:0".as_ptr();
        change(&mut cfg);
        // SAFETY: `cfg` is a full ChatConfig.
        let s = unsafe { chat_server_new(&cfg) };
        assert!(s.is_null(), "{what}");
        assert_eq!(chat_last_error_code(), CHAT_ERR_CONFIG, "{what}");
        assert!(text(chat_last_error()).unwrap().contains(what), "{what}");
    }
}

#[test]
fn a_config_ending_at_max_events_takes_defaults_for_the_rest() {
    let mut cfg = ChatConfig {
        struct_size: (offset_of!(ChatConfig, max_events) + size_of::<u32>()) as u32,
        listen_addr: c"127.0.0.1:0".as_ptr(),
        max_rooms: 1,
        approve_registrations: 9,
        approval_timeout_ms: 0,
        intercept_messages: 9,
        rate_limit_bytes: 1,
        ..config::default_config()
    };
    // SAFETY: `cfg` is a full ChatConfig, struct_size shorter.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    let want = Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    assert_eq!(read, want, "nothing past max_events was read");
    // Covering half of the new fields: those are read, the rest default.
    cfg.struct_size = offset_of!(ChatConfig, max_rooms) as u32;
    cfg.rate_limit_bytes = 99;
    // SAFETY: as above.
    let read = unsafe { config::read_config(ptr::NonNull::from(&mut cfg)) }.unwrap();
    assert_eq!(read.rate_limit_bytes, Some(99));
    assert_eq!(read.max_rooms, Config::default().max_rooms);
    assert!(!read.approve_registrations);
}

// ----- rooms -----
