//! chat_client on a terminal, driven through a pseudo-terminal: keys typed
//! as a terminal sends them, the screen read back through a terminal
//! emulator, the server's side seen through test clients.

mod common;
mod pty;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use common::*;
use pty::{key, row_text, rows, Pty};
use serde_json::json;

fn client(addr: SocketAddr, args: &[&str]) -> Pty {
    let mut cmd = Command::new(example_bin("chat_client"));
    cmd.args(["--connect", &addr.to_string()])
        .args(args)
        .env_remove("NO_COLOR");
    Pty::spawn(cmd)
}

/// alice on a terminal, registered, with the given others online first.
fn alice_with(others: &[&str]) -> (ServerThread, Vec<TestClient>, Pty) {
    let server = ServerThread::default();
    let peers: Vec<TestClient> = others.iter().map(|n| TestClient::hello(server.addr, n)).collect();
    let alice = client(server.addr, &["--nick", "alice"]);
    alice.wait_text("connected as alice");
    alice.wait_input("alice>", 7);
    (server, peers, alice)
}

/// The next `all` text a test client receives.
fn next_all(c: &mut TestClient) -> String {
    let v = c.recv_until(|v| v["type"] == "all");
    v["text"].as_str().unwrap().to_string()
}

#[test]
fn a_message_arriving_while_typing_leaves_the_line_whole() {
    let (_server, mut peers, mut alice) = alice_with(&["bob"]);
    let bob = &mut peers[0];
    alice.send(b"hello every");
    alice.wait_input("alice> hello every", 18);
    bob.send(&json!({"type": "all", "text": "carol says hi to all"}));
    // The message gets a row of its own above the input line, which is
    // drawn again whole, cursor where it was.
    alice.wait_for("the message above the whole input line", |s| {
        let (row, col) = s.cursor_position();
        row > 0
            && row_text(s, row) == "alice> hello every"
            && col == 18
            && row_text(s, row - 1).ends_with(" <bob> carol says hi to all")
    });

    // Key by key, with a message between every two keys.
    for (i, c) in "one and more".chars().enumerate() {
        alice.send(c.to_string().as_bytes());
        bob.send(&json!({"type": "all", "text": format!("noise {i}")}));
    }
    alice.wait_text("<bob> noise 11");
    alice.wait_input("alice> hello everyone and more", 30);
    alice.send(key::ENTER);
    assert_eq!(next_all(bob), "hello everyone and more");
    // Our own line shows in the transcript as others read it.
    alice.wait_text("<alice> hello everyone and more");
    alice.wait_input("alice>", 7);
}

#[test]
fn left_right_and_the_editing_keys() {
    let (_server, mut peers, mut alice) = alice_with(&["bob"]);
    let bob = &mut peers[0];
    alice.send(b"wrld");
    alice.send(key::HOME);
    alice.send(b"hello ");
    alice.send(key::END);
    for _ in 0..3 {
        alice.send(key::LEFT);
    }
    alice.send(b"o");
    alice.wait_input("alice> hello world", 15);
    alice.send(key::RIGHT);
    alice.wait_input("alice> hello world", 16);
    alice.send(key::ENTER);
    assert_eq!(next_all(bob), "hello world");

    alice.send(b"abc def");
    alice.send(key::CTRL_W);
    alice.wait_input("alice> abc", 11);
    alice.send(b"xyz");
    alice.send(key::BACKSPACE);
    alice.wait_input("alice> abc xy", 13);
    alice.send(key::CTRL_A);
    alice.send(key::DELETE);
    alice.wait_input("alice> bc xy", 7);
    alice.send(key::RIGHT);
    alice.send(key::RIGHT);
    alice.send(key::CTRL_K);
    alice.wait_input("alice> bc", 9);
    alice.send(key::CTRL_Y);
    alice.wait_input("alice> bc xy", 12);
    alice.send(key::CTRL_A);
    alice.send(key::CTRL_E);
    alice.wait_input("alice> bc xy", 12);
    alice.send(key::CTRL_U);
    alice.wait_input("alice>", 7);
    alice.send(b"kept");
    alice.send(key::ENTER);
    assert_eq!(next_all(bob), "kept", "nothing but the edited lines was sent");
}

#[test]
fn up_and_down_walk_the_history() {
    let (_server, mut peers, mut alice) = alice_with(&["bob"]);
    let bob = &mut peers[0];
    alice.send(b"first\r");
    assert_eq!(next_all(bob), "first");
    alice.send(b"second\r");
    assert_eq!(next_all(bob), "second");
    alice.send(b"draft");
    alice.send(key::UP);
    alice.wait_input("alice> second", 13);
    alice.send(key::UP);
    alice.wait_input("alice> first", 12);
    alice.send(key::UP);
    alice.wait_input("alice> first", 12);
    alice.send(key::DOWN);
    alice.wait_input("alice> second", 13);
    alice.send(key::DOWN);
    alice.wait_input("alice> draft", 12);
    alice.send(key::CTRL_U);
    alice.send(key::UP);
    alice.send(key::ENTER);
    assert_eq!(
        next_all(bob),
        "second",
        "Up sends no escape sequence, only the line it brought back"
    );
}

#[test]
fn tab_completes_nicks_commands_and_rooms() {
    let (_server, _peers, mut alice) = alice_with(&["bob", "bobby", "carol"]);
    alice.send(b"c");
    alice.send(key::TAB);
    alice.wait_input("alice> carol:", 14);
    alice.send(key::CTRL_U);

    // Several matches: Tab again takes the next, Shift-Tab the one before.
    alice.send(b"b");
    alice.send(key::TAB);
    alice.wait_input("alice> bob:", 12);
    alice.send(key::TAB);
    alice.wait_input("alice> bobby:", 14);
    alice.send(key::TAB);
    alice.wait_input("alice> bob:", 12);
    alice.send(key::SHIFT_TAB);
    alice.wait_input("alice> bobby:", 14);
    alice.send(key::CTRL_U);

    alice.send(b"hi B");
    alice.send(key::TAB);
    alice.wait_input("alice> hi bob", 14);
    alice.send(key::CTRL_U);

    alice.send(b"/jo");
    alice.send(key::TAB);
    alice.wait_input("alice> /join", 13);
    alice.send(b"#rust\r");
    alice.wait_text("you joined #rust");
    alice.send(b"/part #r");
    alice.send(key::TAB);
    alice.wait_input("alice> /part #rust", 19);
    alice.send(key::CTRL_U);
    alice.send(b"/msg ca");
    alice.send(key::TAB);
    alice.wait_input("alice> /msg carol", 18);
}

#[test]
fn ctrl_l_paints_the_screen_again() {
    let (_server, mut peers, mut alice) = alice_with(&["bob"]);
    peers[0].send(&json!({"type": "all", "text": "a line to keep"}));
    alice.wait_text("<bob> a line to keep");
    alice.send(b"abc");
    alice.wait_input("alice> abc", 10);
    // Another program writes over the terminal.
    alice.scribble(b"\x1b[2;1Hgarbage garbage garbage\x1b[9;5Hmore garbage");
    assert!(alice.screen().contains("garbage"));
    alice.send(key::CTRL_L);
    alice.wait_for("the screen painted again, the transcript kept", |s| {
        let text = s.contents();
        !text.contains("garbage")
            && text.contains("connected as alice")
            && text.contains("<bob> a line to keep")
    });
    alice.wait_input("alice> abc", 10);
}

#[test]
fn a_taken_nick_asks_for_another() {
    let server = ServerThread::default();
    let _alice = TestClient::hello(server.addr, "alice");
    let mut second = client(server.addr, &["--nick", "ALICE"]);
    second.wait_text("that nick is taken: type another nick");
    second.wait_input("nick>", 6);
    second.send(b"not a nick!\r");
    second.wait_text("a nick is 1 to 32 of A-Z a-z 0-9 _ -");
    second.wait_input("nick>", 6);
    second.send(b"alice2\r");
    second.wait_text("connected as alice2; online: alice, alice2");
    second.wait_input("alice2>", 8);
}

#[test]
fn without_a_nick_it_asks_offering_the_login_name() {
    let server = ServerThread::default();
    let mut cmd = Command::new(example_bin("chat_client"));
    cmd.args(["--connect", &server.addr.to_string()])
        .env("USER", "tester");
    let mut c = Pty::spawn(cmd);
    c.wait_text("choose a nick");
    c.wait_input("nick> tester", 12);
    c.send(key::ENTER);
    c.wait_text("connected as tester");
}

#[test]
fn a_silent_server_is_reported_and_ctrl_d_still_quits() {
    // Accepted by the kernel, never answered by anyone.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut c = client(addr, &["--nick", "zed", "--timeout-ms", "200"]);
    c.wait_text("is not answering");
    let screen = c.wait_text("Ctrl-D gives up");
    assert!(screen.contains(&addr.to_string()), "{screen}");
    c.send(key::CTRL_D);
    assert!(c.wait().success());
    assert!(c.is_cooked(), "the terminal is restored");
}

#[test]
fn ctrl_c_quits_cleanly_and_restores_the_terminal() {
    let (server, _peers, mut alice) = alice_with(&[]);
    assert!(!alice.is_cooked(), "raw mode while running");
    alice.send(b"half a line");
    alice.send(key::CTRL_C);
    assert!(alice.wait().success());
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::Disconnected { .. }));
    assert!(
        matches!(
            ev.kind,
            chat::EventKind::Disconnected {
                reason: chat::Reason::Quit
            }
        ),
        "{:?}",
        ev.kind
    );
    assert!(alice.is_cooked(), "the terminal is restored");
}

#[test]
fn ctrl_d_on_an_empty_line_quits() {
    let (server, _peers, mut alice) = alice_with(&[]);
    alice.send(b"ab");
    alice.send(key::LEFT);
    alice.send(key::CTRL_D);
    alice.wait_input("alice> a", 8);
    alice.send(key::CTRL_U);
    alice.send(key::CTRL_D);
    assert!(alice.wait().success());
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        chat::EventKind::Disconnected {
            reason: chat::Reason::Quit
        }
    ));
}

#[test]
fn lines_have_timestamps_colours_and_highlighted_mentions() {
    let (_server, mut peers, alice) = alice_with(&["bob"]);
    peers[0].send(&json!({"type": "all", "text": "plain words"}));
    peers[0].send(&json!({"type": "all", "text": "hey Alice, look"}));
    alice.wait_text("<bob> hey Alice, look");
    alice.with_screen(|s| {
        let all = rows(s);
        let plain = all.iter().position(|r| r.ends_with("<bob> plain words")).unwrap();
        let mention = plain + 1;
        for r in [plain, mention] {
            let row = &all[r];
            let b = row.as_bytes();
            assert!(
                b.len() > 6
                    && b[..5].iter().enumerate().all(|(i, c)| if i == 2 {
                        *c == b':'
                    } else {
                        c.is_ascii_digit()
                    }),
                "a time of day starts {row:?}"
            );
        }
        // "HH:MM <bob> ...": the nick at column 7 has a colour of its own.
        let nick = s.cell(plain as u16, 7).unwrap();
        assert_eq!(nick.contents(), "b");
        assert_ne!(nick.fgcolor(), vt100::Color::Default);
        let word = s.cell(plain as u16, 12).unwrap();
        assert!(!word.bold() && word.fgcolor() == vt100::Color::Default);
        let hey = s.cell(mention as u16, 12).unwrap();
        assert_eq!(hey.contents(), "h");
        assert!(hey.bold(), "a line naming us stands out");
    });
    assert!(alice.raw().windows(2).any(|w| w == b"\x1b["));
}

#[test]
fn no_color_turns_colours_off() {
    let server = ServerThread::default();
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut cmd = Command::new(example_bin("chat_client"));
    cmd.args(["--connect", &server.addr.to_string(), "--nick", "alice"])
        .env("NO_COLOR", "1");
    let alice = Pty::spawn(cmd);
    alice.wait_text("connected as alice");
    bob.send(&json!({"type": "all", "text": "hey alice"}));
    alice.wait_text("<bob> hey alice");
    let raw = String::from_utf8_lossy(&alice.raw()).into_owned();
    assert!(
        !raw.contains("m\x1b")
            && !raw.contains("\x1b[0m")
            && !raw.contains("\x1b[1m")
            && !raw.contains("\x1b[2m"),
        "no colour or emphasis sequences: {raw:?}"
    );
    alice.with_screen(|s| {
        for row in 0..pty::ROWS {
            for col in 0..pty::COLS {
                let cell = s.cell(row, col).unwrap();
                assert!(
                    cell.fgcolor() == vt100::Color::Default && !cell.bold(),
                    "colour at {row},{col}"
                );
            }
        }
    });
}

#[test]
fn escape_sequences_from_others_show_escaped() {
    let (_server, mut peers, alice) = alice_with(&["bob"]);
    peers[0].send(&json!({"type": "all", "text": "\u{1b}[2J\u{1b}[31mred\u{7} \u{202e}olleh"}));
    let screen = alice.wait_text(r"\u{1b}[2J\u{1b}[31mred\u{7} \u{202e}olleh");
    // Nothing was cleared: the first lines are still there.
    assert!(screen.contains("connected as alice"), "{screen}");
    alice.with_screen(|s| {
        let all = rows(s);
        let r = all.iter().position(|r| r.contains("red")).unwrap() as u16;
        let col = all[r as usize].find("red").unwrap() as u16;
        assert_eq!(
            s.cell(r, col).unwrap().fgcolor(),
            vt100::Color::Default,
            "not turned red"
        );
    });
}

#[test]
fn a_line_that_did_not_go_through_never_shows_as_said() {
    let (_server, mut peers, mut alice) = alice_with(&["bob"]);
    alice.send(b"/msg nobody are you there\r");
    alice.wait_text("! no such user: nobody");
    alice.send(b"#rust can I?\r");
    alice.wait_text("! you are not in #rust");
    alice.send(b"/msg bob this one went\r");
    alice.wait_text("<alice (to bob)> this one went");
    let v = peers[0].recv_until(|v| v["type"] == "msg");
    assert_eq!(v["text"], "this one went");
    let screen = alice.screen();
    assert!(
        !screen.contains("are you there") && !screen.contains("can I?"),
        "{screen}"
    );
}

#[test]
fn ctrl_d_quits_while_the_connection_hangs() {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    // An accept queue that is full: the client's SYN gets no answer.
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    socket::listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let bound: SockaddrIn = socket::getsockname(fd.as_raw_fd()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let _filler = std::net::TcpStream::connect(addr).unwrap();
    // A minute to connect: only Ctrl-D can end it within the test's deadline.
    let mut c = client(addr, &["--nick", "zed", "--timeout-ms", "60000"]);
    c.wait_text("connecting to");
    c.wait_input("zed>", 5);
    c.send(b"typed meanwhile");
    c.wait_input("zed> typed meanwhile", 20);
    c.send(key::CTRL_U);
    c.send(key::CTRL_D);
    assert!(c.wait().success());
    assert!(c.is_cooked(), "the terminal is restored");
}

#[test]
fn sigterm_quits_cleanly_and_restores_the_terminal() {
    let (server, _peers, mut alice) = alice_with(&[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(alice.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(alice.wait().success());
    let ev = server.event_until(|e| matches!(e.kind, chat::EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        chat::EventKind::Disconnected {
            reason: chat::Reason::Quit
        }
    ));
    assert!(alice.is_cooked(), "the terminal is restored");
}
