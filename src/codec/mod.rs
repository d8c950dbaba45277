//! Codecs: the bytes on a wire turned into payloads and back, with no
//! sockets. Each connection kind frames the same JSON payloads its own way.

pub mod length_prefix;
pub mod ws;
