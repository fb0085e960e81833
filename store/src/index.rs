//! Per-layer index: the layer's tree as plain data, kept beside the layer's
//! splitstream so the views never re-read a tar.
//!
//! One [`Entry`] per tar member, in archive order, with the metadata the views
//! need (owner, mode, times, xattrs, link targets, device numbers) and where
//! the bytes are: inline (small files) or a composefs object. The index is
//! derived data: it can always be rebuilt from the layer's splitstream.

use serde::{Deserialize, Serialize};

/// Version of the serialized index; bump when [`LayerIndex`] changes shape.
pub const INDEX_VERSION: u32 = 2;

/// What kind of tar member an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Symbolic link (`link` holds the target).
    Symlink,
    /// Hard link to an earlier member of the same layer (`link` holds its path).
    HardLink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Named pipe.
    Fifo,
    /// `.wh.NAME` whiteout: deletes `NAME` from lower layers (the entry's path is `NAME`).
    Whiteout,
    /// `.wh..wh..opq` marker: the parent directory hides lower layers (path is the directory).
    Opaque,
}

/// Where a regular file's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Data {
    /// No content (non-files, empty files).
    None,
    /// Small content kept in the index itself.
    Inline(#[serde(with = "serde_bytes_compat")] Vec<u8>),
    /// A composefs object, by its (hex) fs-verity digest.
    Object(String),
}

/// One tar member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Normalised path relative to the layer root, `/`-separated, no leading
    /// `./` or `/`, no trailing `/`; empty for the root itself.
    pub path: Vec<u8>,
    /// Member kind.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Content size for regular files, 0 otherwise.
    pub size: u64,
    /// Device major number.
    pub rdev_major: u32,
    /// Device minor number.
    pub rdev_minor: u32,
    /// Symlink target or hard-link target path (normalised like `path`).
    pub link: Vec<u8>,
    /// Extended attributes from `SCHILY.xattr.*` PAX records, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Content location.
    pub data: Data,
    /// For regular files: the ostree content checksum (hex), computed while
    /// the bytes streamed past at import (see [`crate::ostree_format`]).
    pub ostree: Option<String>,
}

/// The index of one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    /// Format version ([`INDEX_VERSION`]).
    pub version: u32,
    /// Members in archive order.
    pub entries: Vec<Entry>,
}

impl LayerIndex {
    /// Serialize (bincode, zstd-compressed).
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        let raw = bincode::serialize(self)?;
        Ok(zstd::encode_all(&raw[..], 3)?)
    }

    /// Deserialize what [`LayerIndex::encode`] wrote.
    pub fn decode(data: &[u8]) -> anyhow::Result<Self> {
        let raw = zstd::decode_all(data)?;
        let idx: LayerIndex = bincode::deserialize(&raw)?;
        anyhow::ensure!(
            idx.version == INDEX_VERSION,
            "layer index version {} (expected {INDEX_VERSION})",
            idx.version
        );
        Ok(idx)
    }
}

/// Compact (de)serialization of byte vectors for bincode.
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Vec::<u8>::deserialize(d)
    }
}
