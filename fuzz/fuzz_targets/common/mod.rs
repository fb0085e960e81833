//! Helpers shared by the fuzz targets.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

/// A scratch directory for this fuzzing process, under `$TMPDIR`
/// (`scripts/fuzz.sh` points that at a directory it removes afterwards).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("unistore-fuzz-")
            .tempdir()
            .expect("creating a scratch directory")
    })
    .path()
}

/// A store for this process (created once; targets that import write into it).
pub fn store() -> &'static unistore_store::Store {
    static STORE: OnceLock<unistore_store::Store> = OnceLock::new();
    STORE.get_or_init(|| {
        unistore_store::Store::init(&scratch().join("store"))
            .expect("initialising the fuzz store")
            .0
    })
}

/// `data` split at NUL bytes into at most `n` parts (missing parts are empty).
pub fn split_nul(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |&b| b == 0).collect();
    while parts.len() < n {
        parts.push(b"");
    }
    parts
}

/// Replace every occurrence of `from` in `data` by `to`.
pub fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
