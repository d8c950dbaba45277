//! The cluster's backplane: Redis, reached over two RESP2 connections per
//! node, each driven by a sans-IO [`Link`]; the Lua scripts that keep one
//! nick namespace, rooms across nodes and node liveness in Redis; the names
//! of the keys and channels; and the [`Backplane`], one node's membership
//! (its links, heartbeat, directory and the chat traffic between nodes) as
//! one state machine the core and the select loop drive. `docs/cluster.md`
//! describes the design.

pub mod backplane;
pub mod backplane_config;
pub mod backplane_event;
pub mod directory;
pub mod link;
pub mod link_config;
pub mod link_event;
mod local;
mod outbox;
pub mod relay;
pub mod scripts;
pub mod socket;
pub mod url;

pub use backplane::{Backplane, BackplaneError};
pub use backplane_config::{node_id, BackplaneConfig};
pub use backplane_event::{
    BackplaneEvent, BackplaneStats, ClaimOutcome, JoinOutcome, Located, Presence, RelayError, RenameOutcome,
    Ticket, Which,
};
pub use directory::{DirEvent, Directory};
pub use link::Link;
pub use link_config::{LinkConfig, Probe, Role};
pub use link_event::{DownReason, Failure, LinkEvent, LinkStats, Phase, PubMessage, SendError, Token};
pub use scripts::{valid_name, Names, Script};
pub use socket::{LinkSockets, Watch};
pub use url::{RedisUrl, UrlError};
