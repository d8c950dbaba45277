//! Unit tests of the host authority functions of the C ABI (approval,
//! interception, shutdown), called from Rust the way a C host calls them.
use std::ptr;

use serde_json::json;

use super::error::{CHAT_ERR_NOT_PENDING, CHAT_ERR_UNKNOWN_TICKET};
use super::event::{CHAT_EVENT_APPROVAL, CHAT_EVENT_INTERCEPTED};
use super::tests_support::*;
use super::*;

#[test]
fn approve_and_reject_with_user_data() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann","token":"s3cret"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!(
        (asked.nick.as_deref(), asked.token.as_deref(), asked.user_data),
        (Some("ann"), Some("s3cret"), 0)
    );
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_set_user_data(s, asked.client, 41) }, CHAT_OK);
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_approve(s, asked.client) }, CHAT_OK);
    let reg = next_of(s, CHAT_EVENT_REGISTERED);
    assert_eq!((reg.client, reg.user_data), (asked.client, 41));
    flush(s);
    assert_eq!(a.recv()["type"], "welcome");
    // SAFETY: `s` live.
    let twice = unsafe { chat_approve(s, asked.client) };
    assert_failed(twice, CHAT_ERR_NOT_PENDING, "chat_approve");
    // SAFETY: `s` live.
    let late = unsafe { chat_reject(s, asked.client, ptr::null()) };
    assert_failed(late, CHAT_ERR_NOT_PENDING, "chat_reject");

    // A hello without a token, rejected with a message, then without one.
    let mut b = Client::connect(s);
    b.send(json!({"type":"hello","nick":"ben"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!((asked.nick.as_deref(), asked.token), (Some("ben"), None));
    // SAFETY: `s` live, the message a static string.
    let got = unsafe { chat_reject(s, asked.client, c"unknown token".as_ptr()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(
        b.recv(),
        json!({"type":"error","code":"rejected","message":"unknown token"})
    );
    b.send(json!({"type":"hello","nick":"ben","token":"x"}));
    let again = next_of(s, CHAT_EVENT_APPROVAL);
    assert_eq!((again.client, again.token.as_deref()), (asked.client, Some("x")));
    // SAFETY: `s` live; a NULL message is allowed.
    assert_eq!(unsafe { chat_reject(s, again.client, ptr::null()) }, CHAT_OK);
    flush(s);
    assert_eq!(b.recv(), json!({"type":"error","code":"rejected"}));

    // User data is in every later event, the disconnect included.
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_set_user_data(s, again.client, u64::MAX) }, CHAT_OK);
    drop(b);
    let gone = next_of(s, CHAT_EVENT_DISCONNECTED);
    assert_eq!((gone.client, gone.user_data), (again.client, u64::MAX));
    // SAFETY: `s` live.
    let after = unsafe { chat_set_user_data(s, again.client, 1) };
    assert_failed(after, CHAT_ERR_UNKNOWN_CLIENT, "chat_set_user_data");
    free(s);
}

#[test]
fn approval_calls_name_each_error() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann"}));
    let asked = next_of(s, CHAT_EVENT_APPROVAL);
    let id = asked.client;
    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated.
    unsafe {
        assert_failed(chat_approve(ptr::null_mut(), id), CHAT_ERR_NULL, "chat_approve");
        assert_failed(chat_approve(s, 999_999), CHAT_ERR_UNKNOWN_CLIENT, "chat_approve");
        assert_failed(chat_approve(s, 0), CHAT_ERR_UNKNOWN_CLIENT, "chat_approve");
        assert_failed(
            chat_reject(ptr::null_mut(), id, ptr::null()),
            CHAT_ERR_NULL,
            "chat_reject",
        );
        assert_failed(
            chat_reject(s, 999_999, ptr::null()),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_reject",
        );
        assert_failed(chat_reject(s, id, c"\xfe".as_ptr()), CHAT_ERR_UTF8, "chat_reject");
        assert_failed(
            chat_set_user_data(ptr::null_mut(), id, 1),
            CHAT_ERR_NULL,
            "chat_set_user_data",
        );
        assert_failed(
            chat_set_user_data(s, 999_999, 1),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_set_user_data",
        );
        // The failures above left the client waiting.
        assert_eq!(chat_approve(s, id), CHAT_OK);
    }
    flush(s);
    assert_eq!(a.recv()["type"], "welcome");

    // Without approval on, nobody is ever pending.
    let plain = server_with(|_| ());
    let (_c, c_id) = registered(plain, "cid");
    // SAFETY: `plain` live.
    let r = unsafe { chat_approve(plain, c_id) };
    assert_failed(r, CHAT_ERR_NOT_PENDING, "chat_approve");
    free(plain);
    free(s);
}

// ----- interception -----

#[test]
fn release_and_drop_held_messages() {
    let s = server_with(|c| c.intercept_messages = 1);
    let (mut a, a_id) = registered(s, "ann");
    let (mut b, _) = registered(s, "ben");
    assert_eq!(a.recv()["state"], "online");

    a.send(json!({"type":"msg","to":"ben","text":"one"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    assert_eq!((held.client, held.nick.as_deref()), (a_id, Some("ann")));
    assert_ne!(held.ticket, 0);
    assert_eq!(
        held.payload,
        Some(json!({"type":"msg","to":"ben","text":"one"})),
        "the JSON as the client sent it"
    );
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_release(s, held.ticket) }, CHAT_OK);
    flush(s);
    assert_eq!(
        b.recv(),
        json!({"type":"msg","from":"ann","to":"ben","text":"one"})
    );
    // SAFETY: `s` live.
    let twice = unsafe { chat_release(s, held.ticket) };
    assert_failed(twice, CHAT_ERR_UNKNOWN_TICKET, "chat_release");

    // Dropped with the default code and a message, then with the host's own.
    a.send(json!({"type":"all","text":"two"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    // SAFETY: `s` live, the message a static string.
    let got = unsafe { chat_drop(s, held.ticket, ptr::null(), c"not here".as_ptr()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(
        a.recv(),
        json!({"type":"error","code":"dropped","message":"not here"})
    );
    a.send(json!({"type":"all","text":"three"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    // SAFETY: `s` live, the code a static string; a NULL message is allowed.
    let got = unsafe { chat_drop(s, held.ticket, c"moderated".as_ptr(), ptr::null()) };
    assert_eq!(got, CHAT_OK);
    flush(s);
    assert_eq!(a.recv(), json!({"type":"error","code":"moderated"}));
    // SAFETY: `s` live.
    let twice = unsafe { chat_drop(s, held.ticket, ptr::null(), ptr::null()) };
    assert_failed(twice, CHAT_ERR_UNKNOWN_TICKET, "chat_drop");

    // Errors; the held message survives every failed call.
    a.send(json!({"type":"all","text":"four"}));
    let held = next_of(s, CHAT_EVENT_INTERCEPTED);
    let t = held.ticket;
    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated.
    unsafe {
        assert_failed(chat_release(ptr::null_mut(), t), CHAT_ERR_NULL, "chat_release");
        assert_failed(chat_release(s, t + 1000), CHAT_ERR_UNKNOWN_TICKET, "chat_release");
        assert_failed(chat_release(s, 0), CHAT_ERR_UNKNOWN_TICKET, "chat_release");
        assert_failed(
            chat_drop(ptr::null_mut(), t, ptr::null(), ptr::null()),
            CHAT_ERR_NULL,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t + 1000, ptr::null(), ptr::null()),
            CHAT_ERR_UNKNOWN_TICKET,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, c"".as_ptr(), ptr::null()),
            CHAT_ERR_INVALID,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, c"\xff".as_ptr(), ptr::null()),
            CHAT_ERR_UTF8,
            "chat_drop",
        );
        assert_failed(
            chat_drop(s, t, ptr::null(), c"\xff".as_ptr()),
            CHAT_ERR_UTF8,
            "chat_drop",
        );
        assert_eq!(chat_release(s, t), CHAT_OK);
    }
    flush(s);
    assert_eq!(b.recv(), json!({"type":"all","from":"ann","text":"four"}));
    free(s);
}

#[test]
fn calls_that_give_new_work_are_refused_once_shutdown_began() {
    let s = server_with(|c| c.approve_registrations = 1);
    let mut a = Client::connect(s);
    a.send(json!({"type":"hello","nick":"ann"}));
    let id = next_of(s, CHAT_EVENT_APPROVAL).client;
    // SAFETY: `s` live.
    assert_eq!(unsafe { chat_server_shutdown(s, 1000) }, 0);
    let ok = br#"{"type":"note"}"#;
    // SAFETY: in every call below, `s` is live and strings are static.
    unsafe {
        assert_failed(chat_approve(s, id), CHAT_ERR_SHUTTING_DOWN, "chat_approve");
        assert_failed(
            chat_reject(s, id, ptr::null()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_reject",
        );
        assert_failed(chat_release(s, 1), CHAT_ERR_SHUTTING_DOWN, "chat_release");
        assert_failed(
            chat_drop(s, 1, ptr::null(), ptr::null()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_drop",
        );
        assert_failed(
            chat_room_send(s, c"#r".as_ptr(), ok.as_ptr(), ok.len()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_room_send",
        );
        assert_failed(
            chat_room_remove(s, id, c"#r".as_ptr()),
            CHAT_ERR_SHUTTING_DOWN,
            "chat_room_remove",
        );
    }
    free(s);
}
