//! Pulls images from OCI / Docker registries (`docker://` references) into a
//! unistore store.
//!
//! The registry protocol (token and basic auth, manifests, blobs, range
//! requests) is the `oci-client` crate's; this crate adds what podman users
//! expect around it: `registries.conf` ([`conf`]), `auth.json` ([`auth`]),
//! platform selection from manifest lists, resumable downloads kept under
//! the store's `tmp/pull/`, progress events, and the store's own
//! deduplication: layers the store already holds are never downloaded.
//! Downloaded layers go through the store's normal importer
//! ([`unistore_store::import::import_from`]), so the layer digest, the diffID
//! and the store's publish-last guarantee hold exactly as for local imports.
//! The crate has no terminal code: progress is a stream of [`Event`]s.

pub mod auth;
pub mod conf;
pub mod pull;

pub use pull::{pull, Event, LayerReport, Mode, PullOptions, PullReport};

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("invalid reference `{0}`: {1}")]
    BadReference(String, String),
    /// `registries.conf` could not be read or parsed.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The registry is `blocked` in `registries.conf`.
    #[error("registry for `{0}` is blocked in registries.conf")]
    Blocked(String),
    /// A short name with nothing to resolve it.
    #[error("short name `{0}`: no alias and no unqualified-search-registries in registries.conf; use a fully qualified name (HOST/REPO[:TAG])")]
    ShortName(String),
    /// Credentials are missing, malformed or refused.
    #[error("authentication: {0}")]
    Auth(String),
    /// The tag, digest or blob does not exist.
    #[error("{0}: not found in the registry")]
    NotFound(String),
    /// Content does not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Manifest or blob.
        what: String,
        /// Digest it should have.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// No manifest in the index matches the platform.
    #[error("{reference}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// Platforms in the index.
        available: String,
    },
    /// A manifest type this store cannot hold (e.g. Docker schema 1).
    #[error("{0}: unsupported manifest: {1}")]
    Unsupported(String, String),
    /// The registry could not be reached or answered with an error.
    #[error("{0}: {1}")]
    Transport(String, String),
}
