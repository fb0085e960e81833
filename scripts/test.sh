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
cargo test --workspace --exclude unistore-integration-tests
scripts/fuzz.sh 30 # every parser of outside data, 30 s each (fuzz/, issue 6)
cargo build -p unistore-cli
tests/fixtures/build-fixtures.sh
cargo test -p unistore-integration-tests --test integration -- --test-threads=1
