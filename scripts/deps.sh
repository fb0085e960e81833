#!/usr/bin/env bash
# Install everything unistore builds and tests with on Debian 12 (as root).
set -euo pipefail
PKGS=(podman skopeo ostree runc fuse3 bindfs uidmap jq attr util-linux
      pkg-config libssl-dev libfuse3-dev build-essential python3 ca-certificates
      libostree-dev libzstd-dev
      docker-registry apache2-utils)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[deps] installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi
command -v cargo >/dev/null || { echo "[deps] cargo (rustup toolchain) is required" >&2; exit 1; }
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "[deps] /dev/fuse is missing" >&2; exit 1; }
