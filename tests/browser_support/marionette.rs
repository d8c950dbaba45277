//! A small client of Marionette, the remote protocol built into Firefox
//! (what geckodriver itself speaks to Firefox), enough to drive a page as a
//! person would: load it, type, click, read it with scripts, take a
//! screenshot.
//!
//! The wire: every message is `LEN:JSON`, LEN the JSON's length in bytes,
//! in decimal. The server speaks first, `{"applicationType":"gecko",
//! "marionetteProtocol":3}`; then each command is `[0, ID, NAME, PARAMS]`
//! and its answer `[1, ID, ERROR, RESULT]`, ERROR null or
//! `{"error":..., "message":..., "stacktrace":...}`. The commands are
//! WebDriver's, named `WebDriver:...`.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// The key of a web element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The longest a length prefix may be: a bad stream fails fast instead of
/// being read as a huge length.
const MAX_LEN_DIGITS: usize = 12;

/// A command Firefox answered with an error.
#[derive(Debug)]
pub struct CommandError {
    /// The command, `WebDriver:...`.
    pub command: String,
    /// WebDriver's error code (`no such element`, `javascript error`, ...).
    pub error: String,
    /// What Firefox said about it.
    pub message: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}: {}", self.command, self.error, self.message)
    }
}

/// An element of the page, as Marionette names it.
#[derive(Clone, Debug)]
pub struct Element(String);

/// One connection to Marionette, for one session at a time.
pub struct Marionette {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

impl Marionette {
    /// Connects to Marionette on 127.0.0.1:`port` and reads its greeting;
    /// every answer after that must come within `timeout`.
    pub fn connect(port: u16, timeout: Duration) -> Marionette {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to Marionette on 127.0.0.1:{port}: {e}"));
        stream.set_read_timeout(Some(timeout)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut m = Marionette {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next_id: 1,
        };
        let hello = m.read_message();
        assert!(
            hello["applicationType"] == "gecko" && hello["marionetteProtocol"] == 3,
            "not the Marionette protocol 3 Firefox speaks: {hello}"
        );
        m
    }

    fn read_message(&mut self) -> Value {
        let mut len = Vec::new();
        self.reader
            .read_until(b':', &mut len)
            .unwrap_or_else(|e| panic!("reading from Marionette: {e}"));
        assert!(
            len.pop() == Some(b':') && !len.is_empty() && len.len() <= MAX_LEN_DIGITS,
            "Marionette closed the connection or sent no length: {:?}",
            String::from_utf8_lossy(&len)
        );
        let len: usize = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad length from Marionette: {len:?}"));
        let mut body = vec![0; len];
        self.reader
            .read_exact(&mut body)
            .unwrap_or_else(|e| panic!("reading a {len}-byte message from Marionette: {e}"));
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "Marionette sent something that is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Sends a command; its result, or the error Firefox answered with.
    pub fn try_command(&mut self, name: &str, params: Value) -> Result<Value, CommandError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!([0, id, name, params]).to_string();
        let message = format!("{}:{body}", body.len());
        self.writer
            .write_all(message.as_bytes())
            .unwrap_or_else(|e| panic!("sending {name} to Marionette: {e}"));
        let reply = self.read_message();
        assert!(
            reply[0] == 1 && reply[1] == id,
            "{name}: expected the answer to command {id}, got {reply}"
        );
        match &reply[2] {
            Value::Null => Ok(reply[3].clone()),
            err => Err(CommandError {
                command: name.to_string(),
                error: err["error"].as_str().unwrap_or("?").to_string(),
                message: err["message"].as_str().unwrap_or("").to_string(),
            }),
        }
    }

    /// Sends a command; panics with Firefox's error if it fails.
    pub fn command(&mut self, name: &str, params: Value) -> Value {
        self.try_command(name, params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the WebDriver session every other command needs.
    pub fn new_session(&mut self) -> Value {
        self.command("WebDriver:NewSession", json!({}))
    }

    /// Loads `url` in the current tab and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        self.command("WebDriver:Navigate", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn execute(&mut self, script: &str, args: Value) -> Value {
        let result = self
            .try_command(
                "WebDriver:ExecuteScript",
                json!({ "script": script, "args": args }),
            )
            .unwrap_or_else(|e| panic!("{e}\nthe script: {script}"));
        result["value"].clone()
    }

    /// Runs `script` until it returns something truthy (not false, null,
    /// 0 or ""), and returns that; panics with `what` and the last value at
    /// the deadline.
    pub fn wait_for(&mut self, what: &str, deadline: Duration, script: &str, args: Value) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let v = self.execute(script, args.clone());
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < end,
                "in Firefox, waited {deadline:?} for {what}; the page last said {v}"
            );
            // A pause between polls, so the wait does not keep a core busy.
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&mut self, selector: &str) -> Element {
        let found = self.command(
            "WebDriver:FindElement",
            json!({ "using": "css selector", "value": selector }),
        );
        let id = found["value"][ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("FindElement {selector}: no element reference in {found}"));
        Element(id.to_string())
    }

    /// Types `text` into the element as key presses (`\u{e007}` is Enter).
    pub fn send_keys(&mut self, el: &Element, text: &str) {
        self.command("WebDriver:ElementSendKeys", json!({ "id": el.0, "text": text }));
    }

    /// Empties a text field.
    pub fn clear(&mut self, el: &Element) {
        self.command("WebDriver:ElementClear", json!({ "id": el.0 }));
    }

    /// Clicks the element in its middle, as a mouse would (an `<option>`
    /// is selected in its menu).
    pub fn click(&mut self, el: &Element) {
        self.command("WebDriver:ElementClick", json!({ "id": el.0 }));
    }

    /// Whether a person would see the element (WebDriver's "element
    /// displayed" check: not hidden by CSS, not in a hidden parent).
    pub fn is_displayed(&mut self, el: &Element) -> bool {
        let v = self.command("WebDriver:IsElementDisplayed", json!({ "id": el.0 }));
        v["value"]
            .as_bool()
            .unwrap_or_else(|| panic!("IsElementDisplayed answered {v}"))
    }

    /// Resizes the window so that the page gets `width` x `height` CSS
    /// pixels, whatever the window's frame takes.
    pub fn set_viewport(&mut self, width: i64, height: i64) {
        let frame = self.execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            json!([]),
        );
        let (dw, dh) = (frame[0].as_i64().unwrap(), frame[1].as_i64().unwrap());
        self.command(
            "WebDriver:SetWindowRect",
            json!({ "width": width + dw, "height": height + dh }),
        );
    }

    /// A PNG of what the page shows now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let v = self.command("WebDriver:TakeScreenshot", json!({}));
        let b64 = v["value"]
            .as_str()
            .unwrap_or_else(|| panic!("TakeScreenshot answered no image"));
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("TakeScreenshot sent base64")
    }

    /// Asks Firefox to quit (closing every window, as a person would);
    /// it answers before it goes.
    pub fn quit(mut self) {
        self.command("Marionette:Quit", json!({}));
    }
}
