//! Integration tests of unistore: the real binary, real images built by
//! `tests/fixtures/build-fixtures.sh`, real podman. They need root and fail
//! (never skip) when a prerequisite is missing.
//!
//! Run: `cargo build -p unistore-cli && cargo test -p unistore-integration-tests --test integration -- --test-threads=1`

mod common;
mod concurrency;
mod host;
mod import;
mod ostree;
mod pull;
mod registry;
mod robust;
mod view;
