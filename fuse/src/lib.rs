//! The unistore FUSE daemon: one read-only filesystem with several views of
//! the store (today `containers-storage/`; `ostree/` and `images/` will sit
//! beside it).
//!
//! Modules:
//! - [`fs`]: the `fuser::Filesystem` adapter over the store's views (the
//!   single errno mapping, TTL and cache policy, passthrough);
//! - [`daemon`]: mounting, readiness, signals, stale-mount recovery.

pub mod daemon;
pub mod fs;

pub use daemon::{serve, MountOptions, Passthrough};
