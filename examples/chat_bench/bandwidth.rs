//! The ceiling for payload bytes: one loopback TCP stream with large
//! writes, between two threads of this process, measured in the same run
//! as the servers.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Bytes moved and how long it took, from the first byte read to the last.
pub struct Bandwidth {
    /// Bytes received.
    pub bytes: u64,
    /// Elapsed time at the receiver.
    pub elapsed: Duration,
    /// Whether the time bound cut it short.
    pub timed_out: bool,
}

/// Sends `count` writes of `size` bytes (or until `deadline`) and receives
/// them with reads of the same size.
pub fn measure(size: usize, count: u64, deadline: Instant) -> io::Result<Bandwidth> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> io::Result<bool> {
        let mut s = TcpStream::connect(addr)?;
        let chunk = vec![b'x'; size];
        for _ in 0..count {
            if Instant::now() >= deadline {
                return Ok(true);
            }
            s.write_all(&chunk)?;
        }
        Ok(false)
    });
    let (mut r, _) = listener.accept()?;
    let mut buf = vec![0u8; size.max(64 * 1024)];
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
    }
    let elapsed = first.map_or(Duration::ZERO, |t| t.elapsed());
    let timed_out = writer.join().map_err(|_| io::Error::other("writer panicked"))??;
    Ok(Bandwidth {
        bytes,
        elapsed,
        timed_out,
    })
}
