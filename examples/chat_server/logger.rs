//! A small logger behind the `log` facade: one line per record on stderr,
//! with a timestamp. Records from the library (any target outside this
//! program) get the same line with their target in brackets, so a host's
//! log reads as one.
//!
//! ```text
//! 2026-11-25T20:41:07.512+00:00 INFO  client 3 connected from 127.0.0.1:51414
//! 2026-11-25T20:41:07.513+00:00 WARN  [chat::server] accept failed: ...
//! ```

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    level: LevelFilter,
}

/// Installs the logger for the whole process, showing `level` and above.
pub fn init(level: LevelFilter) {
    // A leaked box: the logger lives as long as the process, as `log` wants.
    let logger: &'static Logger = Box::leak(Box::new(Logger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = jiff::ZonedDateTime::now().strftime("%Y-%m-%dT%H:%M:%S%.3f%:z");
        let target = record.target();
        let own = target == "chat_server" || target.starts_with("chat_server::");
        let line = if own {
            format!("{now} {:<5} {}\n", record.level(), record.args())
        } else {
            format!("{now} {:<5} [{target}] {}\n", record.level(), record.args())
        };
        // One write per line: lines never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}
