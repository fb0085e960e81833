#!/usr/bin/env bash
# Benchmark: `ostree checkout` and `ostree fsck` of an image commit served by
# the unistore ostree view (FUSE) versus the same commits pulled into a real
# on-disk bare repository (`ostree pull-local`), in one run. Prints medians
# and ratios (view / on-disk).
#
# usage: bench/ostree.sh [RUNS]        (default 5; needs root, ostree, the fixtures)
# env:   UNISTORE_BIN   binary to use (default target/release/unistore, else target/debug/unistore)
#        BENCH_IMAGE    fixture image (default localhost/unistore-fixture/derived:1)
#        BENCH_DIR      scratch directory (default: a new one under /var/tmp)
#
# What is compared (warm page cache; the first round is a discarded warm-up;
# the operations alternate within each round):
#   checkout        view: always a copy (no hard links across mounts)
#                   disk: ostree's default (hard links into the repository)
#   checkout -C     disk with --force-copy: the like-for-like copy
#   fsck            whole repository: every commit the view serves (plain,
#                   ostree-rs-ext image and layer commits), all pulled into
#                   the on-disk repository first
set -euo pipefail

RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "must run as root" >&2; exit 1; }
command -v ostree >/dev/null || { echo "ostree is not installed" >&2; exit 1; }

if [[ -n ${UNISTORE_BIN:-} ]]; then U=$UNISTORE_BIN
elif [[ -x $ROOT/target/release/unistore ]]; then U=$ROOT/target/release/unistore
else U=$ROOT/target/debug/unistore; fi
[[ -x $U ]] || { echo "no unistore binary (cargo build --release)" >&2; exit 1; }

bash "$ROOT/tests/fixtures/build-fixtures.sh" >/dev/null
# shellcheck disable=SC1091
. "${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}/fixtures.env"
IMAGE=${BENCH_IMAGE:-$FIXTURE_DERIVED_IMAGE}
case $IMAGE in
  "$FIXTURE_DERIVED_IMAGE") OCI=$FIXTURE_DERIVED_OCI_DIR ;;
  "$FIXTURE_APP_IMAGE") OCI=$FIXTURE_APP_OCI_DIR ;;
  "$FIXTURE_BASE_IMAGE") OCI=$FIXTURE_BASE_OCI_DIR ;;
  *) echo "unknown fixture image $IMAGE" >&2; exit 1 ;;
esac

W=${BENCH_DIR:-$(mktemp -d /var/tmp/unistore-bench-ostree.XXXXXX)}
STORE=$W/store MNT=$W/mnt DISK=$W/disk
mkdir -p "$MNT"
cleanup() {
  if mountpoint -q "$MNT"; then "$U" --store "$STORE" umount "$MNT" || umount -l "$MNT" || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

"$U" --store "$STORE" init >/dev/null
"$U" --store "$STORE" import -q "oci:$OCI" --name "$IMAGE" >/dev/null
t0=$(date +%s.%N)
"$U" --store "$STORE" mount "$MNT"
t1=$(date +%s.%N)
VIEW=$MNT/ostree
REF=$("$U" --store "$STORE" inspect --json "$IMAGE" | sed -n 's/.*"OstreeRef": "\(.*\)".*/\1/p')
COMMIT=$(ostree --repo="$VIEW" rev-parse "$REF")
mapfile -t REFS < <(ostree --repo="$VIEW" refs)

ostree init --mode=bare --repo="$DISK"
t2=$(date +%s.%N)
ostree --repo="$DISK" pull-local "$VIEW" "${REFS[@]}" >/dev/null
t3=$(date +%s.%N)
[[ $(ostree --repo="$DISK" rev-parse "$REF") == "$COMMIT" ]] || { echo "pull-local gave another commit" >&2; exit 1; }

# time_cmd CMD... -> seconds (wall clock) on stdout
time_cmd() {
  local a b
  a=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
  b=$(date +%s.%N)
  echo "$b - $a" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# The operations alternate within each round, so that a change of machine
# load affects both sides alike.
OPS=(view-checkout disk-checkout disk-checkout-copy view-fsck disk-fsck)
run_op() { # op -> seconds
  local co=$W/co
  rm -rf "$co"
  case $1 in
    view-checkout) time_cmd ostree --repo="$VIEW" checkout "$REF" "$co" ;;
    disk-checkout) time_cmd ostree --repo="$DISK" checkout "$REF" "$co" ;;
    disk-checkout-copy) time_cmd ostree --repo="$DISK" checkout -C "$REF" "$co" ;;
    view-fsck) time_cmd ostree --repo="$VIEW" fsck -q ;;
    disk-fsck) time_cmd ostree --repo="$DISK" fsck -q ;;
  esac
  rm -rf "$co"
}
declare -A ALL RES
for ((i = 0; i <= RUNS; i++)); do
  for op in "${OPS[@]}"; do
    t=$(run_op "$op")
    ((i == 0)) || ALL[$op]="${ALL[$op]:-} $t"
  done
done
for op in "${OPS[@]}"; do
  # shellcheck disable=SC2086
  RES[$op]=$(median ${ALL[$op]})
done

files=$(ostree --repo="$VIEW" ls -R "$REF" | wc -l)
bytes=$(du -sb --apparent-size "$DISK/objects" | cut -f1)
objects=$(find "$DISK/objects" -type f -o -type l | wc -l)
ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf 'unistore ostree view benchmark (%s rounds after 1 warm-up round, warm cache, medians; load average %s)\n' \
  "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'binary %s\nimage %s  ref %s\ncommit %s: %s paths; repository: %s refs, %s objects, %s bytes\n' \
  "$U" "$IMAGE" "$REF" "$COMMIT" "$files" "${#REFS[@]}" "$objects" "$bytes"
printf 'mount (view build) %.3f s; pull-local of all refs into the on-disk repo %.3f s\n' \
  "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t3 - $t2" | bc -l)"
printf '%-34s %10s %10s %8s\n' operation view_s disk_s ratio
printf '%-34s %10.3f %10.3f %8s\n' "checkout (disk: hard links)" "${RES[view-checkout]}" "${RES[disk-checkout]}" "$(ratio "${RES[view-checkout]}" "${RES[disk-checkout]}")"
printf '%-34s %10.3f %10.3f %8s\n' "checkout (disk: --force-copy)" "${RES[view-checkout]}" "${RES[disk-checkout-copy]}" "$(ratio "${RES[view-checkout]}" "${RES[disk-checkout-copy]}")"
printf '%-34s %10.3f %10.3f %8s\n' "fsck (all refs)" "${RES[view-fsck]}" "${RES[disk-fsck]}" "$(ratio "${RES[view-fsck]}" "${RES[disk-fsck]}")"
