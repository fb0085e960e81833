#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, then the integration
# tests against real FUSE, podman, skopeo and ostree (root required; they
# fail, not skip, when something is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CI=${CI:-1}
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
# unistore-ostree-ext-check (ostree-ext, test only) turns on zstd's pkg-config
# feature; left out here so the unit tests link what `cargo build` ships.
cargo test --workspace --exclude unistore-integration-tests --exclude unistore-ostree-ext-check
scripts/fuzz.sh 30 # every parser of outside data, 30 s each (fuzz/, issue 6)
cargo build -p unistore-cli
cargo build -p unistore-ostree-ext-check # next to unistore; a separate build keeps its features out of unistore
tests/fixtures/build-fixtures.sh
tests/registry/build-registry-fixtures.sh # registry storage for the pull tests (issue 8)
cargo test -p unistore-integration-tests --test integration -- --test-threads=1
