//! Unit tests of the rooms functions of the C ABI, called from Rust the
//! way a C host calls them: raw pointers, codes, the last error.
use std::ptr;

use serde_json::{json, Value};

use super::error::{CHAT_ERR_NOT_IN_ROOM, CHAT_ERR_UNKNOWN_ROOM};
use super::event::CHAT_EVENT_PARTED;
use super::tests_support::*;
use super::*;

#[test]
fn room_send_members_and_remove() {
    let s = server_with(|_| ());
    let (mut a, a_id) = registered(s, "ann");
    let (mut b, b_id) = registered(s, "ben");
    let (mut c, _) = registered(s, "cid");
    assert_eq!(a.recv()["state"], "online");
    assert_eq!(a.recv()["state"], "online");
    assert_eq!(b.recv()["state"], "online");
    join(s, &mut a, a_id, "#Rust");
    join(s, &mut b, b_id, "#rust");
    assert_eq!(a.recv()["state"], "joined");

    // Members, in joining order; the name compares case-insensitively.
    // SAFETY: `s` live; NULL out with cap 0 is allowed.
    let got = unsafe { chat_room_members(s, c"#RUST".as_ptr(), ptr::null_mut(), 0) };
    assert_eq!(got, 2);
    let mut ids = [7u64; 3];
    // SAFETY: `ids` has room for cap = 1 entry.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 1) };
    assert_eq!(got, 2);
    assert_eq!(ids, [a_id, 7, 7], "nothing written past cap");
    // SAFETY: `ids` has room for 3 entries.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 3) };
    assert_eq!(got, 2);
    assert_eq!(ids, [a_id, b_id, 7]);

    // The host's frame reaches the members only, exactly as given.
    let frame = br##"{"type":"room","room":"#Rust","from":"host","text":"hi"}"##;
    // SAFETY: `s` live, the frame is `len` readable bytes.
    let n = unsafe { chat_room_send(s, c"#rust".as_ptr(), frame.as_ptr(), frame.len()) };
    assert_eq!(n, 2);
    // SAFETY: as above.
    assert_eq!(unsafe { chat_broadcast(s, br#"{"type":"x"}"#.as_ptr(), 12) }, 3);
    flush(s);
    let want: Value = serde_json::from_slice(frame).unwrap();
    for member in [&mut a, &mut b] {
        assert_eq!(member.recv(), want);
        assert_eq!(member.recv(), json!({"type":"x"}));
    }
    assert_eq!(
        c.recv(),
        json!({"type":"x"}),
        "a non-member gets only the broadcast"
    );

    // Removing: the client is told, the others see it part, an event follows.
    // SAFETY: `s` live, the name a static string.
    assert_eq!(unsafe { chat_room_remove(s, b_id, c"#RUST".as_ptr()) }, CHAT_OK);
    let parted = next_of(s, CHAT_EVENT_PARTED);
    assert_eq!(
        (parted.client, parted.nick.as_deref(), parted.room.as_deref()),
        (b_id, Some("ben"), Some("#Rust"))
    );
    flush(s);
    assert_eq!(b.recv(), json!({"type":"parted","room":"#Rust"}));
    assert_eq!(
        a.recv(),
        json!({"type":"presence","nick":"ben","room":"#Rust","state":"parted"})
    );
    // SAFETY: as above.
    let again = unsafe { chat_room_remove(s, b_id, c"#rust".as_ptr()) };
    assert_failed(again, CHAT_ERR_NOT_IN_ROOM, "chat_room_remove");
    // SAFETY: as above.
    let got = unsafe { chat_room_members(s, c"#rust".as_ptr(), ids.as_mut_ptr(), 3) };
    assert_eq!(got, 1);

    // The last member removed: the room is gone.
    // SAFETY: as above.
    assert_eq!(unsafe { chat_room_remove(s, a_id, c"#rust".as_ptr()) }, CHAT_OK);
    // SAFETY: as above.
    let gone = unsafe { chat_room_members(s, c"#rust".as_ptr(), ptr::null_mut(), 0) };
    assert_failed(gone, CHAT_ERR_UNKNOWN_ROOM, "chat_room_members");
    // SAFETY: as above.
    let gone = unsafe { chat_room_send(s, c"#rust".as_ptr(), frame.as_ptr(), frame.len()) };
    assert_failed(gone, CHAT_ERR_UNKNOWN_ROOM, "chat_room_send");
    free(s);
}

#[test]
fn room_calls_name_each_error() {
    let s = server_with(|_| ());
    let (mut a, a_id) = registered(s, "ann");
    let (_b, b_id) = registered(s, "ben");
    join(s, &mut a, a_id, "#r");
    let ok = br#"{"type":"note"}"#;
    let room = c"#r".as_ptr();
    let bad_utf8 = c"\xff#".as_ptr();
    let mut ids = [0u64; 2];

    // SAFETY: in every call below, `s` is live or NULL, strings are static
    // and NUL-terminated, buffers have the lengths given.
    unsafe {
        assert_failed(
            chat_room_send(ptr::null_mut(), room, ok.as_ptr(), ok.len()),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, ptr::null(), ok.as_ptr(), ok.len()),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, room, ptr::null(), 0),
            CHAT_ERR_NULL,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, bad_utf8, ok.as_ptr(), ok.len()),
            CHAT_ERR_UTF8,
            "chat_room_send",
        );
        for not_object in [&b"[1]"[..], b"\"x\"", b"", b"{\"a\":", b"{} {}"] {
            assert_failed(
                chat_room_send(s, room, not_object.as_ptr(), not_object.len()),
                CHAT_ERR_NOT_JSON_OBJECT,
                "chat_room_send",
            );
        }
        let mut big = br#"{"a":""#.to_vec();
        big.resize(65536, b'x');
        big.extend_from_slice(b"\"}");
        assert_failed(
            chat_room_send(s, room, big.as_ptr(), big.len()),
            CHAT_ERR_TOO_LARGE,
            "chat_room_send",
        );
        assert_failed(
            chat_room_send(s, c"#nowhere".as_ptr(), ok.as_ptr(), ok.len()),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_send",
        );

        assert_failed(
            chat_room_members(ptr::null(), room, ids.as_mut_ptr(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, ptr::null(), ids.as_mut_ptr(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, room, ptr::null_mut(), 2),
            CHAT_ERR_NULL,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, bad_utf8, ids.as_mut_ptr(), 2),
            CHAT_ERR_UTF8,
            "chat_room_members",
        );
        assert_failed(
            chat_room_members(s, c"#nowhere".as_ptr(), ids.as_mut_ptr(), 2),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_members",
        );

        assert_failed(
            chat_room_remove(ptr::null_mut(), a_id, room),
            CHAT_ERR_NULL,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, ptr::null()),
            CHAT_ERR_NULL,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, bad_utf8),
            CHAT_ERR_UTF8,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, 999_999, room),
            CHAT_ERR_UNKNOWN_CLIENT,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, a_id, c"#nowhere".as_ptr()),
            CHAT_ERR_UNKNOWN_ROOM,
            "chat_room_remove",
        );
        assert_failed(
            chat_room_remove(s, b_id, room),
            CHAT_ERR_NOT_IN_ROOM,
            "chat_room_remove",
        );
    }
    // SAFETY: `s` live, `ids` has 2 entries.
    assert_eq!(unsafe { chat_room_members(s, room, ids.as_mut_ptr(), 2) }, 1);
    assert_eq!(ids[0], a_id, "the failed calls changed nothing");
    free(s);
}

// ----- approval -----
