//! # chat: an embeddable, single-threaded chat server
//!
//! A host program creates a [`Server`], calls [`Server::poll_once`] from its
//! own loop, and reads [`Event`]s. One `select()` multiplexes the listener
//! and every client; nothing starts a thread. Clients speak the framed JSON
//! protocol of `docs/protocol.md`: unicast, broadcast, rooms, presence,
//! with buffered delivery and a per-client output cap (backpressure). The
//! host can also approve registrations, intercept messages and attach its
//! own data to clients; everything it learns arrives as events, nothing
//! calls back into it.
//!
//! The same API is available to C, C++ and Python through the C ABI in
//! `include/chat.h`.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cluster;
pub mod code;
pub mod codec;
mod config;
mod error;
mod event;
/// The C ABI (`include/chat.h`): `extern "C"` functions over [`Server`], for
/// C, C++ and Python hosts.
pub mod ffi;
mod idmap;
pub mod message;
mod protocol;
mod server;
mod stats;
mod sys;
#[doc(hidden)]
pub mod testing;
mod tls;
mod transport;

pub use code::Code;
/// The length-prefix codec under its earlier name.
pub use codec::length_prefix as frame;
pub use config::{Config, TlsPem, FD_MARGIN, FD_SETSIZE};
pub use error::{Error, Result};
pub use event::{ClientId, Event, EventKind, HeldMessage, Reason, RoutedMessage, Via};
pub use protocol::FRAME_OVERHEAD;
pub use server::{Server, Waker, WatchFd};
pub use stats::{ClusterState, Stats};
