//! The web client in a real browser: headless Chromium (Debian's
//! `chromium`, installed with apt-get if missing) driven by playwright-core
//! (the version pinned in tests/browser/package.json, installed with npm
//! into the target folder if missing) runs tests/browser/page.js against
//! the example server: the page loads from its WebSocket listener, shows
//! no chat panel before registration, registers (after a refused nick),
//! lists who is online, shows a TCP client's messages as text, and sends
//! to everyone, to one user and to a room. tests/browser_firefox.rs makes
//! the same checks in Firefox.
//!
//! `CHAT_WEB_CLIENT_SCREENSHOT=1 cargo test --test browser` also writes the
//! screenshot it takes to docs/web-client.png (without it, the screenshot
//! stays in the target folder, so a CI run never rewrites the docs).

mod common;
mod ws_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::artifact_dir;
use common::tls::pki::ensure_program;
use ws_support::{chat_server_with_page, root, run_with_deadline};

/// The playwright-core version tests/browser/package.json pins.
fn pinned_playwright() -> String {
    let manifest = std::fs::read_to_string(root().join("tests/browser/package.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    v["dependencies"]["playwright-core"]
        .as_str()
        .expect("package.json pins playwright-core")
        .to_string()
}

/// The folder whose node_modules holds the pinned playwright-core,
/// installed with npm if it is not there yet. Never its own browser
/// download: it drives the system's Chromium.
fn playwright_modules() -> PathBuf {
    let dir = artifact_dir().join("browser-deps");
    let want = pinned_playwright();
    let installed = std::fs::read_to_string(dir.join("node_modules/playwright-core/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    if installed.as_deref() != Some(want.as_str()) {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            root().join("tests/browser/package.json"),
            dir.join("package.json"),
        )
        .unwrap();
        let npm = ensure_program("npm", "npm");
        let out = Command::new(npm)
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            // Never a browser download of its own.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .output()
            .expect("run npm");
        assert!(
            out.status.success(),
            "npm could not install playwright-core {want} into {}: run `npm install --prefix {} playwright-core@{want}`\n{}",
            dir.display(),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir.join("node_modules")
}

#[test]
fn the_web_client_chats_with_a_tcp_client_in_headless_chromium() {
    let chromium = ensure_program("chromium", "chromium");
    let node = ensure_program("node", "nodejs");
    let modules = playwright_modules();
    let (_server, tcp, url) = chat_server_with_page();
    let shot = artifact_dir().join("web-client.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new(node);
    cmd.arg(root().join("tests/browser/page.js"))
        .arg(&url)
        .arg(tcp.port().to_string())
        .arg(&shot)
        .env("NODE_PATH", &modules)
        .env("CHAT_CHROMIUM", &chromium)
        .stdin(Stdio::null());
    ws_support::without_proxies(&mut cmd);
    let out = run_with_deadline(cmd, Duration::from_secs(120), "the browser check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the page failed in Chromium ({}):\n{stdout}\n{}",
        chromium.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "page loaded and connected",
        "the chat panel is hidden before registration",
        "a taken nick is refused in plain words",
        "registered",
        "the users online are listed",
        "a TCP client's message is shown, as text",
        "a message to everyone reaches the TCP client",
        "a message to one user reaches the TCP client",
        "a message to a room reaches the TCP client",
        "private and room messages from TCP are shown",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {step}")),
            "step not done: {step}\n{stdout}"
        );
    }
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    if std::env::var_os("CHAT_WEB_CLIENT_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/web-client.png");
        std::fs::write(&docs, &png).unwrap();
        eprintln!("wrote {}", docs.display());
    }
}
