#!/usr/bin/env bash
# Set up everything, then run the main job on a built-in example:
# build real images offline, import them into a store, show images and df,
# mount the store and let podman run an image straight from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --workspace
U=$PWD/target/release/unistore
tests/fixtures/build-fixtures.sh
# shellcheck disable=SC1091
source "${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}/fixtures.env"
DEMO=${UNISTORE_DEMO_DIR:-/var/tmp/unistore-demo}
if grep -qs " $DEMO/mnt " /proc/mounts; then "$U" umount "$DEMO/mnt" || umount -l "$DEMO/mnt"; fi
rm -rf "$DEMO" && mkdir -p "$DEMO/mnt"
export UNISTORE_STORE=$DEMO/store
"$U" init
"$U" import "oci:$FIXTURE_BASE_OCI_DIR" --name localhost/unistore-fixture/base:1
"$U" import "docker-archive:$FIXTURE_DERIVED_DOCKER_TAR"
"$U" import "oci-archive:$FIXTURE_APP_OCI_TAR"
"$U" images
"$U" df
"$U" mount "$DEMO/mnt"
trap '"$U" umount "$DEMO/mnt" 2>/dev/null || umount -l "$DEMO/mnt"; umount "$DEMO/podman/overlay" 2>/dev/null || true' EXIT
P=(podman --root "$DEMO/podman" --runroot "$DEMO/podman-run" --storage-opt "additionalimagestore=$DEMO/mnt/containers-storage")
"${P[@]}" images
"${P[@]}" run --rm --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 --network none \
  localhost/unistore-fixture/derived:1 sh -c 'echo "hello from a container whose files come from unistore"; cat /srv/fixture/overwrite.txt'
