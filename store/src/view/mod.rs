//! Views of the store as plain data: a tree of nodes with stable numbers,
//! answering lookup, readdir, stat, readlink, xattr and "where are the bytes"
//! questions. The FUSE crate is one consumer; tests are another.
//!
//! Nodes live in an append-only arena (node number = index + 1, the root
//! is 1). Layer trees are expanded lazily on first access and shared by
//! every image that uses the layer. On a catalog change the synthesized
//! top-level nodes are rebuilt as new nodes; old numbers stay valid (the
//! kernel may still hold them) and layer trees are reused.

pub mod cstor;
pub mod images;
pub mod merge;
pub mod ostree;
pub mod tree;

pub use tree::{Attr, Content, NodeKind, Vfs};
