//! The web client in a real Firefox: Debian's `firefox-esr` (installed
//! with apt-get if missing), headless, in a fresh profile, driven through
//! Marionette, the remote protocol built into Firefox (no geckodriver).
//! The same checks tests/browser/page.js makes in Chromium: the page loads
//! from the example server's WebSocket listener, shows no chat panel before
//! registration, refuses a nick a TCP client holds in plain words,
//! registers another, lists who is online, shows a TCP client's message as
//! text (never HTML), and sends to everyone, to one user and to a room,
//! each received by the TCP client over the real protocol.
//!
//! `CHAT_WEB_CLIENT_SCREENSHOT=1 cargo test --test browser_firefox` also
//! writes its screenshot to docs/web-client-firefox.png (without it, the
//! screenshot stays in the target folder).

mod browser_support;
mod common;
mod ws_support;

use std::path::Path;
use std::time::{Duration, Instant};

use browser_support::firefox::{group_members, Firefox};
use browser_support::marionette::Marionette;
use common::tls::pki::ensure_program;
use common::{artifact_dir, TestClient, DEADLINE};
use serde_json::{json, Value};
use ws_support::chat_server_with_page;

/// The Enter key, in WebDriver's key codes.
const ENTER: &str = "\u{e007}";

/// How long Firefox may take to answer one command (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

fn ok(step: &str) {
    println!("ok {step}");
}

/// Whether the text of element `id` contains `text`, as a script's result.
const TEXT_HAS: &str = "return document.getElementById(arguments[0]).textContent.includes(arguments[1]);";

/// Collects the page's uncaught errors in an attribute of its root element,
/// where a later script can read them.
const CATCH_ERRORS: &str = r#"
const root = document.documentElement;
root.dataset.pageErrors = "";
const note = (what) => { root.dataset.pageErrors += what + "\n"; };
window.addEventListener("error", (e) => note(String(e.message)));
window.addEventListener("unhandledrejection", (e) => note(String(e.reason)));
return true;
"#;

/// Types `text` into the field `selector` and presses Enter.
fn type_line(ff: &mut Marionette, selector: &str, text: &str) {
    let field = ff.find(selector);
    ff.send_keys(&field, &format!("{text}{ENTER}"));
}

/// Empties the nick field, types `nick` and clicks "Join chat".
fn join_as(ff: &mut Marionette, nick: &str) {
    let field = ff.find("#nick");
    ff.clear(&field);
    ff.send_keys(&field, nick);
    let join = ff.find("#join");
    ff.click(&join);
}

fn is(v: &Value, kind: &str) -> bool {
    v["type"] == kind
}

#[test]
fn the_web_client_chats_with_a_tcp_client_in_headless_firefox() {
    let binary = ensure_program("firefox-esr", "firefox-esr");
    let (_server, tcp, url) = chat_server_with_page();
    let started = Instant::now();
    let firefox = Firefox::start(&binary, &artifact_dir().join("firefox"));
    let group = firefox.group();
    let mut ff = Marionette::connect(firefox.port, COMMAND_TIMEOUT);
    let session = ff.new_session();
    println!(
        "Firefox {} on Marionette port {}, started in {:?}",
        session["capabilities"]["browserVersion"],
        firefox.port,
        started.elapsed()
    );
    ff.set_viewport(1000, 640);
    let mut bob = TestClient::hello(tcp, "bob");

    ff.navigate(&url);
    ff.execute(CATCH_ERRORS, json!([]));
    ff.wait_for(
        "the WebSocket to open",
        DEADLINE,
        "return document.getElementById('state').classList.contains('open');",
        json!([]),
    );
    ok("page loaded and connected");

    let app = ff.find("#app");
    let login = ff.find("#login");
    let display = ff.execute(
        "return getComputedStyle(document.getElementById('app')).display;",
        json!([]),
    );
    assert!(
        !ff.is_displayed(&app) && display == "none" && ff.is_displayed(&login),
        "before registration only the nick form shows (the chat panel's display: {display})"
    );
    ok("the chat panel is hidden before registration");

    join_as(&mut ff, "bob");
    let error = ff.wait_for(
        "the refusal of a taken nick",
        DEADLINE,
        "return document.getElementById('login-error').textContent;",
        json!([]),
    );
    let error_line = ff.find("#login-error");
    assert!(
        error.as_str().unwrap().starts_with("That nick is taken.")
            && ff.is_displayed(&error_line)
            && !ff.is_displayed(&app),
        "a taken nick is refused in words, beside the form: {error}"
    );
    ok("a taken nick is refused in plain words");

    join_as(&mut ff, "alice");
    ff.wait_for(
        "the chat panel after the welcome",
        DEADLINE,
        "return !document.getElementById('app').hidden;",
        json!([]),
    );
    assert!(
        ff.is_displayed(&app) && !ff.is_displayed(&login),
        "after the welcome the chat panel shows, and the nick form does not"
    );
    bob.recv_until(|m| is(m, "presence") && m["nick"] == "alice" && m["state"] == "online");
    ok("registered");

    ff.wait_for(
        "both users in the list of who is online",
        DEADLINE,
        "const t = document.getElementById('users').textContent; \
         return t.includes('bob') && t.includes('alice (you)');",
        json!([]),
    );
    ok("the users online are listed");

    bob.send(&json!({"type": "all", "text": "hello <b>alice</b> from tcp"}));
    ff.wait_for(
        "the TCP client's message in the log",
        DEADLINE,
        TEXT_HAS,
        json!(["log", "hello <b>alice</b> from tcp"]),
    );
    let bold = ff.execute("return document.querySelectorAll('#log b').length;", json!([]));
    assert_eq!(bold, 0, "text from others became HTML");
    ok("a TCP client's message is shown, as text");

    type_line(&mut ff, "#text", "hello everyone");
    bob.recv_until(|m| is(m, "all") && m["from"] == "alice" && m["text"] == "hello everyone");
    let tick = ff.wait_for(
        "the ack's tick on the sent line",
        DEADLINE,
        "const a = document.querySelector('#log .line.mine .ack'); return a && a.textContent;",
        json!([]),
    );
    assert_eq!(tick, "✓ 1", "the ack shows the one recipient");
    ok("a message to everyone reaches the TCP client");

    let to_bob = ff.find("#target option[value='@bob']");
    ff.click(&to_bob);
    let target = ff.execute("return document.getElementById('target').value;", json!([]));
    assert_eq!(target, "@bob", "the menu picks bob");
    type_line(&mut ff, "#text", "hi bob, privately");
    bob.recv_until(|m| is(m, "msg") && m["from"] == "alice" && m["text"] == "hi bob, privately");
    ok("a message to one user reaches the TCP client");

    bob.send(&json!({"type": "join", "room": "#rust"}));
    bob.recv_until(|m| is(m, "joined") && m["room"] == "#rust");
    type_line(&mut ff, "#text", "/join #rust");
    ff.wait_for(
        "#rust in the list of the page's rooms",
        DEADLINE,
        TEXT_HAS,
        json!(["rooms", "#rust"]),
    );
    type_line(&mut ff, "#text", "hi room");
    bob.recv_until(|m| {
        is(m, "room") && m["room"] == "#rust" && m["from"] == "alice" && m["text"] == "hi room"
    });
    ok("a message to a room reaches the TCP client");

    bob.send(&json!({"type": "msg", "to": "alice", "text": "private reply"}));
    bob.send(&json!({"type": "room", "room": "#rust", "text": "room reply"}));
    ff.wait_for(
        "the private reply in the log",
        DEADLINE,
        TEXT_HAS,
        json!(["log", "private reply"]),
    );
    ff.wait_for(
        "the room reply in the log",
        DEADLINE,
        TEXT_HAS,
        json!(["log", "room reply"]),
    );
    ok("private and room messages from TCP are shown");

    let errors = ff.execute("return document.documentElement.dataset.pageErrors;", json!([]));
    assert_eq!(errors, "", "the page had errors");

    let png = ff.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let shot = artifact_dir().join("web-client-firefox.png");
    std::fs::write(&shot, &png).unwrap();
    if std::env::var_os("CHAT_WEB_CLIENT_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/web-client-firefox.png");
        std::fs::write(&docs, &png).unwrap();
        eprintln!("wrote {}", docs.display());
    }

    ff.quit();
    let status = firefox.wait_exit(COMMAND_TIMEOUT);
    assert!(status.success(), "Firefox quit with {status}");
    assert_eq!(
        group_members(group),
        Vec::<i32>::new(),
        "no Firefox process is left"
    );
}
