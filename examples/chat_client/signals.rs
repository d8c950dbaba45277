//! Signals as bytes on a socket pair, one more descriptor for select().

use std::io::{self, IsTerminal, Read};
use std::os::unix::net::UnixStream;

/// SIGINT, SIGTERM and SIGHUP (quit as Ctrl-D does) and, on a terminal,
/// SIGWINCH (redraw), each turned into a byte on a socket pair that
/// select() watches.
pub fn watch_signals(tty: bool) -> io::Result<(UnixStream, Option<UnixStream>)> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
    use signal_hook::low_level::pipe;
    let (quit_r, quit_w) = UnixStream::pair()?;
    quit_r.set_nonblocking(true)?;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        pipe::register(sig, quit_w.try_clone()?)?;
    }
    let resized = if tty && io::stdout().is_terminal() {
        let (r, w) = UnixStream::pair()?;
        r.set_nonblocking(true)?;
        pipe::register(SIGWINCH, w)?;
        Some(r)
    } else {
        None
    };
    Ok((quit_r, resized))
}

pub fn drain(mut s: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}
