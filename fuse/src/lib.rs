//! The unistore FUSE daemon: one read-only filesystem with several views of
//! the store: `containers-storage/`, `ostree/` and `images/`.
//!
//! Modules:
//! - [`fs`]: the `fuser::Filesystem` adapter over the store's views (the
//!   single errno mapping, TTL and cache policy, passthrough);
//! - [`daemon`]: mounting, readiness, signals, stale-mount recovery;
//! - [`prefetch`]: read-ahead across small files opened in tree order;
//! - [`sys`]: the audited module holding the daemon's only `unsafe` calls.

pub mod daemon;
pub mod fs;
pub mod prefetch;
pub mod sys;

pub use daemon::{serve, MountOptions, Passthrough, ReaddirPlus};
