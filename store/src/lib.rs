//! The canonical unistore store.
//!
//! One composefs repository holds every image once; around it, a catalog
//! (names → images) and derived per-layer indexes. Nothing here knows about
//! FUSE or terminals: the views are built on [`Store`] by other crates.
//!
//! Modules, by theme:
//! - opening and layout: [`repo`], [`catalog`], [`records`];
//! - import: [`transport`] (parsing `SRC`), [`source`] (reading OCI layouts,
//!   archives and podman's store), [`layer`] (one streaming pass over a
//!   layer tar), [`tarsplit`], [`digest`], [`progress`], [`chunked`]
//!   (zstd:chunked partial fetch);
//! - trees: [`index`];
//! - errors: [`error`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod catalog;
pub mod chunked;
pub mod crash;
pub mod digest;
pub mod error;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod index;
pub mod layer;
pub mod ostree_format;
pub mod progress;
pub mod records;
pub mod repo;
pub mod source;
pub mod tarsplit;
pub mod transport;
pub mod view;

pub use catalog::{Catalog, CatalogEntry};
pub use error::StoreError;
pub use import::{import, ImportOptions, ImportReport};
pub use repo::{DiskUsage, Store};
pub use transport::SourceRef;
