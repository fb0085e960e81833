//! Records kept in the composefs repository for images and layers.
//!
//! Layout of streams (content identifiers in `streams/`):
//! - `unistore-layer-<diffid hex>`: the layer tar as a splitstream;
//! - `unistore-layermeta-<diffid hex>`: a [`LayerMeta`] (JSON, inline),
//!   referencing the tar stream, the index object and the tar-split object;
//! - `unistore-image-<manifest hex>`: an [`ImageRecord`] (JSON, inline),
//!   referencing the manifest and config objects and every layer meta stream.
//!
//! Each stream is written only after everything it references is durable,
//! so the existence of a meta stream proves its layer is complete.

use serde::{Deserialize, Serialize};

/// Splitstream content type of layer tars ("unistore-layer-tar").
pub const LAYER_TAR_CONTENT_TYPE: u64 = 0x554e_4953_5441_5231;
/// Content type of layer meta streams.
pub const LAYER_META_CONTENT_TYPE: u64 = 0x554e_4953_4c4d_4554;
/// Content type of image record streams.
pub const IMAGE_CONTENT_TYPE: u64 = 0x554e_4953_494d_4731;

/// Stream identifier of a layer's tar.
pub fn layer_tar_id(diff_hex: &str) -> String {
    format!("unistore-layer-{diff_hex}")
}
/// Stream identifier of a layer's meta record.
pub fn layer_meta_id(diff_hex: &str) -> String {
    format!("unistore-layermeta-{diff_hex}")
}
/// Stream identifier of an image record.
pub fn image_stream_id(manifest_hex: &str) -> String {
    format!("unistore-image-{manifest_hex}")
}

/// Everything the views need to know about one layer, without its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    /// Object (hex) of the tar splitstream.
    pub tar_stream: String,
    /// Object (hex) of the encoded [`crate::index::LayerIndex`].
    pub index_object: String,
    /// Object (hex) of the gzip tar-split.
    pub tarsplit_object: String,
    /// Number of tar members.
    pub entries: u64,
    /// Sorted distinct uids of all members but whiteouts.
    pub uids: Vec<u32>,
    /// Sorted distinct gids of all members but whiteouts.
    pub gids: Vec<u32>,
}

/// One layer as a particular image references it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// Layer facts.
    pub meta: LayerMeta,
    /// Object (hex) of the layer meta stream.
    pub meta_stream: String,
    /// Digest of the blob the manifest lists.
    pub blob_digest: String,
    /// Size of that blob.
    pub blob_size: u64,
    /// Media type of that blob.
    pub media_type: String,
    /// 0 = none, 2 = gzip, 4 = zstd (c/storage's numbering).
    pub compression: u8,
}

/// An image: manifest, config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Manifest digest.
    pub manifest_digest: String,
    /// Manifest media type.
    pub manifest_media_type: String,
    /// Object (hex) holding the manifest bytes.
    pub manifest_object: String,
    /// Manifest size.
    pub manifest_size: u64,
    /// Config digest (the image ID with `sha256:`).
    pub config_digest: String,
    /// Object (hex) holding the config bytes.
    pub config_object: String,
    /// Config size.
    pub config_size: u64,
    /// `created` from the config.
    pub created: Option<String>,
    /// `architecture` from the config.
    pub architecture: Option<String>,
    /// `os` from the config.
    pub os: Option<String>,
    /// Layers, base first.
    pub layers: Vec<ImageLayer>,
}

impl ImageRecord {
    /// Image ID (config digest without `sha256:`).
    pub fn id(&self) -> &str {
        self.config_digest.trim_start_matches("sha256:")
    }
}
