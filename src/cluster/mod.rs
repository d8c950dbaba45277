//! The cluster's backplane: Redis, reached over two RESP2 connections per
//! node, each driven by a sans-IO [`Link`]; the Lua scripts
//! that keep one nick namespace, rooms across nodes and node liveness in
//! Redis; the names of the keys and channels. `docs/cluster.md` describes
//! the design.

pub mod directory;
pub mod link;
pub mod link_config;
pub mod link_event;
mod outbox;
pub mod scripts;
pub mod url;

pub use directory::{DirEvent, Directory};
pub use link::Link;
pub use link_config::{LinkConfig, Probe, Role};
pub use link_event::{DownReason, Failure, LinkEvent, LinkStats, Phase, PubMessage, SendError, Token};
pub use scripts::{valid_name, Names, Script};
pub use url::{RedisUrl, UrlError};
