#!/usr/bin/env bash
# The one benchmark of unistore (issue 7): builds what it needs, sets up every
# peer on the same image tree, measures with warm-up and REPS repetitions, and
# writes bench/results/run-<date>.{json,png} plus a table on stdout. It asserts
# no time. Documentation: docs/benchmarks.md.
#
# Variants (columns), all serving the same image (the derived fixture plus a
# layer with a BIG_MB random file and SMALL small files):
#   native        the image's root filesystem (podman export) extracted on the
#                 local ext4: the limit
#   native-layers podman's own overlay storage of the same image: per-layer
#                 diff/ dirs (the baseline of the containers-storage rows)
#   cfs-kernel    composefs done by the kernel: an EROFS image written by the
#                 composefs crate (bench/helpers) + overlayfs with the store's
#                 objects as data-only lower layer: the kernel ceiling
#   img pt=on/off unistore per-image view MNT/images/<name>/, -o passthrough=on/off
#   cs pt=on/off  unistore containers-storage view, the layers' diff/ dirs
#   bindfs        bindfs (Debian package, default options) over `native`
#   cfs-fuse      composefs-rs's FUSE server (composefs-fuse crate, as it comes)
#                 over the same EROFS image and objects
#
# Environment: REPS (5), NOISY_REPS (runs of the 1 GiB rows and podman run,
#   default max(REPS, 11)), SMALL (20000), BIG_MB (1024), THREADS (daemon
#   threads, default: the daemon's default), MOUNT_OPTS (more -o options for
#   the unistore mounts, e.g. prefetch=0), URING (1: FUSE over io_uring,
#   enabling /sys/module/fuse/parameters/enable_uring for the run; 0: /dev/fuse),
#   ROWS / VARIANTS (comma-separated substrings of "NAME (CACHE)" / variant names
#   selecting rows / variants, default all), SYSTEM=0 (skip the
#   system-level rows), CACHE (/var/tmp/unistore-bench-cache), WORK
#   (/var/tmp/unistore-bench-run; removed at the end unless KEEP=1; with
#   REUSE=1 a kept WORK is reused without rebuilding the store and trees),
#   UNISTORE_BIN (default: target/release/unistore, built), WAIT_LOAD (wait up to
#   this many seconds for the 1-min load average to fall below 1.5 first; 0).
# Needs root, /dev/fuse, podman, runc, ostree, bindfs, python3 (matplotlib is
# installed with pip if missing), GNU tar, cargo.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
export REPS=${REPS:-5}
SMALL=${SMALL:-20000}
BIG_MB=${BIG_MB:-1024}
CACHE=${CACHE:-/var/tmp/unistore-bench-cache}
export WORK=${WORK:-/var/tmp/unistore-bench-run}
export IMG=localhost/unistore-bench/run:1
export RUN_FLAGS="--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 --network none --pull never"

log() { printf '[run.sh +%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[run.sh] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
if ! command -v bindfs >/dev/null; then
  log "installing bindfs"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q bindfs >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bindfs >/dev/null; } ||
    log "bindfs cannot be installed: its column will be n/a"
fi
for t in podman runc python3 tar ostree cargo; do command -v $t >/dev/null || die "$t is not installed"; done
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib >&2 ||
  log "matplotlib cannot be installed: the plot falls back to a plain SVG"

# ------------------------------------------------------------------ builds
if [[ -z ${UNISTORE_BIN:-} ]]; then
  log "building unistore (cargo build --release -p unistore-cli)"
  (cd "$ROOT" && cargo build -q --release -p unistore-cli) || die "cargo build failed"
  UNISTORE_BIN=$ROOT/target/release/unistore
fi
export UNISTORE_BIN
log "building the bench helpers (bench/helpers: EROFS writer, composefs-fuse runner)"
HELPERS=$ROOT/target/bench-helpers/release
cargo build -q --release --manifest-path "$HERE/helpers/Cargo.toml" --target-dir "$ROOT/target/bench-helpers" ||
  die "building bench/helpers failed"
export HELPERS

log "fixtures"
bash "$ROOT/tests/fixtures/build-fixtures.sh" >/dev/null
# shellcheck disable=SC1091
. /var/tmp/unistore-fixtures/fixtures.env
export FIXTURE_DERIVED_IMAGE FIXTURE_DERIVED_DOCKER_TAR FIXTURE_APP_OCI_DIR FIXTURE_CONTAINERS_CONF

if [[ ${WAIT_LOAD:-0} -gt 0 ]]; then
  end=$((SECONDS + WAIT_LOAD))
  while (($(awk '{ print ($1 >= 1.5) }' /proc/loadavg))) && ((SECONDS < end)); do
    log "load average $(cut -d' ' -f1-3 /proc/loadavg): waiting for < 1.5"
    sleep 30
  done
fi

# ------------------------------------------------------------------ cleanup
# Only what this script started: its daemons (by pid, checked again), and the
# mounts under $WORK.
PIDS=()
cleanup() {
  set +e
  awk -v p="$WORK" '{ if (index($2, p "/") == 1) print $2 }' /proc/mounts | sort -r | while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done
  sleep 0.3
  for pid in "${PIDS[@]}"; do
    if { tr "\0" " " <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$WORK"; then kill -9 "$pid" 2>/dev/null; fi
  done
}
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_WAS=$(cat "$URING_PARAM" 2>/dev/null || true)
finish() {
  cleanup
  [[ -z $URING_WAS ]] || echo "$URING_WAS" >"$URING_PARAM" 2>/dev/null
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap finish EXIT

# --------------------------------------------------------- the bench image
# The derived fixture plus one layer (one COPY) with big.bin and the small files.
ARCHIVE=$CACHE/run-v1-$BIG_MB-$SMALL.docker.tar
if [[ ! -s $ARCHIVE ]]; then
  log "building the bench image ($BIG_MB MiB file, $SMALL small files, FROM $FIXTURE_DERIVED_IMAGE)"
  rm -rf "$CACHE/ctx" "$CACHE/root" "$CACHE/run" && mkdir -p "$CACHE/ctx/bench/small"
  B=(podman --root "$CACHE/root" --runroot "$CACHE/run" --storage-driver overlay)
  head -c $((BIG_MB << 20)) /dev/urandom >"$CACHE/ctx/bench/big.bin"
  python3 - "$CACHE/ctx/bench/small" "$SMALL" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(100, 8192)))
PY
  printf 'FROM %s\nCOPY bench /bench\n' "$FIXTURE_DERIVED_IMAGE" >"$CACHE/ctx/Containerfile"
  "${B[@]}" load -q -i "$FIXTURE_DERIVED_DOCKER_TAR" >/dev/null
  "${B[@]}" build -q --pull=never --layers --format oci -t "$IMG" "$CACHE/ctx" >/dev/null
  "${B[@]}" save -q --format docker-archive -o "$ARCHIVE.tmp" "$IMG"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  "${B[@]}" rmi -a -f >/dev/null 2>&1 || true
  awk -v p="$CACHE" '{ if (index($2, p "/") == 1) print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$CACHE/ctx" "$CACHE/root" "$CACHE/run"
fi
export ARCHIVE

# ------------------------------------------- store, native trees, podman store
cleanup
U=("$UNISTORE_BIN" --store "$WORK/store")
PN=(podman --root "$WORK/podman-native/root" --runroot "$WORK/podman-native/run" --storage-driver overlay)
if [[ ${REUSE:-0} == 1 && -f $WORK/.ready && $(cat "$WORK/.ready") == "$ARCHIVE" ]]; then
  log "reusing $WORK"
else
  log "setting up $WORK (store, native tree, podman's store)"
  rm -rf "$WORK"
  mkdir -p "$WORK"/{native,podman-view}
  "${U[@]}" init >/dev/null
  "${U[@]}" import -q "docker-archive:$ARCHIVE" >/dev/null
  "${U[@]}" import -q "docker-archive:$FIXTURE_DERIVED_DOCKER_TAR" >/dev/null
  "${PN[@]}" load -q -i "$ARCHIVE" >/dev/null
  # native: the image's root filesystem as podman shows it, on ext4
  cid=$("${PN[@]}" create $RUN_FLAGS "$IMG" true)
  "${PN[@]}" export "$cid" | tar -x --numeric-owner --xattrs --xattrs-include='*' -p -C "$WORK/native"
  "${PN[@]}" rm "$cid" >/dev/null
  # the composefs EROFS image of the same tree, objects in the store
  "$HELPERS/unistore-bench-mkerofs" "$WORK/store" "$IMG" "$WORK/image.erofs" 2>&1 | sed 's/^/  /' >&2
  echo "$ARCHIVE" >"$WORK/.ready"
fi
mkdir -p "$WORK"/{m-on,m-off,cfs-erofs,cfs-kernel,bindfs,cfs-fuse}

# layer IDs (c/image's chain IDs: podman's and the view's overlay/<id>)
LAYERS=$("${U[@]}" inspect --json "$IMG" | python3 -c '
import hashlib, json, sys
ids = []
for d in json.load(sys.stdin)["RootFS"]["Layers"]:
    h = d.split(":", 1)[1]
    ids.append(h if not ids else hashlib.sha256(f"{ids[-1]}+{h}".encode()).hexdigest())
print(" ".join(ids))')
export LAYERS

# ------------------------------------------------------------------ mounts
log "mounting the variants"
THREADS_OPT=()
[[ -n ${THREADS:-} ]] && THREADS_OPT=(-o "threads=$THREADS")
[[ -n ${MOUNT_OPTS:-} ]] && THREADS_OPT+=(-o "$MOUNT_OPTS")
# FUSE over io_uring (docs/benchmarks.md): the kernel offers it only with
# enable_uring=Y; restored at exit. URING=0 measures /dev/fuse instead.
if [[ ${URING:-1} == 1 && -n $URING_WAS ]]; then
  echo Y >"$URING_PARAM" || die "cannot enable FUSE over io_uring ($URING_PARAM)"
  THREADS_OPT+=(-o uring=on)
  export TRANSPORT="FUSE over io_uring"
else
  THREADS_OPT+=(-o uring=off)
  export TRANSPORT="/dev/fuse"
fi
[[ -z ${MOUNT_OPTS:-} ]] || TRANSPORT="$TRANSPORT; mount options $MOUNT_OPTS"
log "FUSE transport: $TRANSPORT"
for pt in on off; do
  "${U[@]}" mount "$WORK/m-$pt" -o "passthrough=$pt" "${THREADS_OPT[@]}"
  pid=$(pgrep -f -- "--store $WORK/store mount $WORK/m-$pt --foreground" | head -1)
  [[ -n $pid ]] || die "no daemon for $WORK/m-$pt"
  PIDS+=("$pid")
  export "PID_$pt=$pid"
done
CFS_KERNEL=ok
if ! mount -t erofs -o loop,ro "$WORK/image.erofs" "$WORK/cfs-erofs" 2>"$WORK/cfs.err" ||
  ! mount -t overlay overlay -o "ro,metacopy=on,redirect_dir=on,lowerdir=$WORK/cfs-erofs::$WORK/store/repo/objects" \
    "$WORK/cfs-kernel" 2>>"$WORK/cfs.err"; then
  CFS_KERNEL="n/a: $(tr '\n' ' ' <"$WORK/cfs.err")"
fi
BINDFS=ok
if command -v bindfs >/dev/null; then
  bindfs -o ro "$WORK/native" "$WORK/bindfs" 2>"$WORK/bindfs.err" || BINDFS="n/a: $(cat "$WORK/bindfs.err")"
  pid=$(pgrep -f -- "bindfs -o ro $WORK/native" | head -1)
  [[ -n $pid ]] && PIDS+=("$pid") && export PID_bindfs=$pid
else
  BINDFS="n/a: bindfs is not installed"
fi
CFS_FUSE=ok
"$HELPERS/unistore-bench-cfs-fuse" "$WORK/image.erofs" "$WORK/store/repo/objects" "$WORK/cfs-fuse" \
  >"$WORK/cfs-fuse.out" 2>"$WORK/cfs-fuse.err" &
PIDS+=("$!")
export PID_cfsfuse=$!
for _ in $(seq 100); do grep -q ready "$WORK/cfs-fuse.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/cfs-fuse.out" || CFS_FUSE="n/a: $(cat "$WORK/cfs-fuse.err")"
export CFS_KERNEL BINDFS CFS_FUSE

log "measuring ($REPS runs per cell after a warm-up run; load average $(cut -d' ' -f1-3 /proc/loadavg))"
mkdir -p "$HERE/results"
OUT=$HERE/results/run-$(date +%Y%m%d-%H%M%S) python3 "$HERE/run.py"
