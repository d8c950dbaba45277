//! Codecs: the bytes on a wire turned into payloads and back, with no
//! sockets. Each connection kind frames the same JSON payloads its own way;
//! `resp` speaks to Redis, the cluster's backplane.

pub mod length_prefix;
pub mod resp;
pub mod ws;
