//! Typed errors at the store's API edge.

use std::path::PathBuf;

/// Errors that callers (the CLI, the FUSE daemon) branch on.
///
/// Admin paths wrap these in `anyhow` with context; the FUSE adapter maps
/// them to errnos in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store directory does not hold an initialised store.
    #[error("no unistore store at {path} (run `unistore --store {path} init`)")]
    NotInitialized {
        /// Store root that was opened.
        path: PathBuf,
    },
    /// A source reference uses a transport we do not implement.
    #[error("transport `{transport}` is not supported yet (supported: oci:, oci-archive:, docker-archive:, containers-storage:, docker://)")]
    UnsupportedTransport {
        /// The transport name as given.
        transport: String,
    },
    /// A source reference could not be parsed.
    #[error("invalid image reference `{0}`: {1}")]
    BadReference(String, String),
    /// The named image is not in the catalog.
    #[error("image not known: {0}")]
    ImageNotFound(String),
    /// A name is already used by a different image.
    #[error("name {name} is already used by image {id}")]
    NameInUse {
        /// The contested name.
        name: String,
        /// The image that holds it.
        id: String,
    },
    /// Input data (archive, manifest, layer) is malformed or hostile.
    #[error("{file}: {problem}")]
    BadInput {
        /// The file or blob the problem was found in.
        file: String,
        /// What is wrong, in one line.
        problem: String,
    },
    /// A blob's digest does not match what the manifest promised.
    #[error("{file}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob that was read.
        file: String,
        /// What the manifest or config says.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// An I/O error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// Path being accessed.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Shorthand for [`StoreError::BadInput`].
    pub fn bad_input(file: impl Into<String>, problem: impl Into<String>) -> Self {
        StoreError::BadInput {
            file: file.into(),
            problem: problem.into(),
        }
    }
}
