//! A terminal chat client: `cargo run --example chat_client -- --nick alice`.
//!
//! On a terminal it is interactive: raw mode, an input line kept at the
//! bottom with its own line editor, history and Tab completion, and
//! messages printed above it. With piped input it is a scripted client:
//! plain lines out, no escape sequences, an exit status that says whether
//! everything went through. Either way one select() loop over stdin, the
//! server socket and a signal pipe; no threads. docs/client.md has every
//! key and command.

#[path = "../common/any_certificate.rs"]
mod any_certificate;
mod app;
mod commands;
mod complete;
mod conn;
mod display;
mod editor;
mod input;
mod keys;
mod reconnect;
mod session;
mod signals;
mod style;
mod term;
#[path = "../common/tls_client.rs"]
mod tls_client;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use app::{App, End, Options, Ui};
use style::Line;

/// Talk to a chat server from a terminal, or from a script.
///
/// On a terminal: an input line with history and Tab completion, messages
/// above it with timestamps and colours (NO_COLOR turns colours off). With
/// piped input: each line is sent, the end of input quits, and the exit
/// status is 0 only if everything went through (1: the connection failed or
/// was lost, 2: the nick was refused, 3: the server answered an error).
#[derive(Parser, Debug)]
#[command(name = "chat_client", version, about, long_about)]
struct Args {
    /// The server, HOST:PORT: a name (IPv4 or IPv6, each address tried in
    /// turn) or an address (127.0.0.1:7878, [::1]:7878).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7878")]
    connect: String,
    /// Your nick: 1 to 32 of A-Z a-z 0-9 _ -. On a terminal it is asked for
    /// if left out (and again if the server refuses it); a script must give
    /// it.
    #[arg(long)]
    nick: Option<String>,
    /// A credential for servers whose host approves registrations (sent
    /// as the hello's "token").
    #[arg(long)]
    token: Option<String>,
    /// Print no status lines ("* ...": connected, who is online, joins and
    /// parts); messages and errors still show.
    #[arg(long, short)]
    quiet: bool,
    /// How long to wait for the connection, then for the answer to hello,
    /// before saying the server is not answering. A script gives up then; a
    /// terminal keeps waiting until Ctrl-D.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Speak TLS to the server (a chat_server started with --tls-cert). The
    /// server is verified against the system's CA certificates (or --ca)
    /// for the host name of --connect, which is also sent as SNI.
    #[arg(long)]
    tls: bool,
    /// With --tls: trust the CA certificates in FILE (PEM) instead of the
    /// system's, for a server whose certificate a private CA signed (or a
    /// self-signed one: give the certificate itself).
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca: Option<std::path::PathBuf>,
    /// With --tls: accept any certificate. Still encrypted, but nothing
    /// proves who the server is: for testing only.
    #[arg(long, requires = "tls", conflicts_with = "ca")]
    insecure: bool,
    /// After a drop, how long to keep reconnecting (with backoff: 0.5 s,
    /// doubling up to 8 s) to resume the session; 0 never reconnects.
    #[arg(long, value_name = "MS", default_value_t = 300_000)]
    reconnect_ms: u64,
}

/// Exit statuses (docs/client.md).
const EXIT_LOST: u8 = 1;
const EXIT_REFUSED: u8 = 2;
const EXIT_FAILED: u8 = 3;

fn main() -> ExitCode {
    let args = Args::parse();
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if args.nick.is_none() && !tty {
        eprintln!("chat_client: --nick is needed when input or output is not a terminal");
        return ExitCode::from(EXIT_REFUSED);
    }
    if let Some(nick) = &args.nick {
        if !session::valid_nick(nick) {
            eprintln!("chat_client: --nick {nick:?}: a nick is 1 to 32 of A-Z a-z 0-9 _ -");
            return ExitCode::from(EXIT_REFUSED);
        }
    }
    let addrs = match conn::resolve(&args.connect) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chat_client: --connect {e}");
            return ExitCode::from(EXIT_LOST);
        }
    };
    let tls = match args.tls.then(|| tls_options(&args)).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("chat_client: {e}");
            return ExitCode::from(EXIT_LOST);
        }
    };
    // no-color.org: set and not empty turns colour off.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let opts = Options {
        target: args.connect.clone(),
        addrs,
        nick: args.nick.clone(),
        token: args.token.clone(),
        quiet: args.quiet,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        tty,
        color: tty && !no_color,
        tls_host: conn::host_of(&args.connect),
        insecure: args.insecure,
        tls,
        reconnect_for: Duration::from_millis(args.reconnect_ms),
    };
    let mut app = match App::new(opts) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("chat_client: cannot set up the terminal: {e}");
            return ExitCode::from(EXIT_LOST);
        }
    };
    let end = app
        .run()
        .unwrap_or_else(|e| End::Lost(format!("select failed: {e}")));
    let nick = app.session.nick.clone();
    let (code, message) = match end {
        End::Quit if !tty && app.session.failures > 0 => {
            let n = app.session.failures;
            let what = if n == 1 { "line" } else { "lines" };
            (EXIT_FAILED, Some(format!("{n} {what} did not go through")))
        }
        End::Quit => (0, None),
        End::Lost(why) => (EXIT_LOST, Some(format!("disconnected: {why}"))),
        End::Unreachable(why) => (EXIT_LOST, Some(why)),
        End::Refused(why) => (EXIT_REFUSED, Some(format!("cannot join as {nick}: {why}"))),
    };
    // The ending, said once: in the transcript on a terminal (then the
    // terminal is restored as the app drops), on stderr for a script.
    if let Ui::Tty(_) = app.ui {
        if let Some(m) = &message {
            app.show(Line::Error(m.clone()));
        }
        if let Ui::Tty(t) = &mut app.ui {
            let _ = t.screen.finish();
        }
        drop(app);
    } else if let Some(m) = &message {
        eprintln!("chat_client: {m}");
    }
    ExitCode::from(code)
}

/// `--tls`, `--ca` and `--insecure` as the connection's TLS settings, or
/// why they cannot be used (an unreadable CA file, no system roots).
fn tls_options(args: &Args) -> Result<conn::Tls, tls_client::TlsClientError> {
    let connector = tls_client::TlsConnector::new(&tls_client::TlsOptions {
        ca_file: args.ca.clone(),
        insecure: args.insecure,
    })?;
    Ok(conn::Tls {
        connector,
        host: conn::host_of(&args.connect),
    })
}
