#!/usr/bin/env bash
# The floor under the warm small-file row: the same files read natively,
# through the cheapest FUSE server of the same tree (bench/helpers' nullfs:
# everything in memory, OPEN a table lookup, same fuser, transport, mount
# options and scheduling class as unistore), and through unistore's per-image
# view, alternating. What the null server adds to native is what any FUSE
# server adds on this kernel and machine; unistore's own cost is the rest.
# A second null server answers OPEN with ENOSYS (FUSE_NO_OPEN_SUPPORT: no OPEN
# and no RELEASE after that, and no passthrough either): what the round trips
# cost.
# Asserts no time. Documentation: docs/benchmarks.md ("What is not met").
#
#   bench/floor.sh [N]        N rounds (11), as root
#
# Needs a bench work dir kept by `KEEP=1 bash bench/run.sh` (WORK, default
# /var/tmp/unistore-bench-run) and FUSE over io_uring in the kernel (the script
# turns /sys/module/fuse/parameters/enable_uring on for its run and restores
# it). UNISTORE_BIN: default target/release/unistore.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
N=${1:-11}
W=${WORK:-/var/tmp/unistore-bench-run}
U=${UNISTORE_BIN:-$ROOT/target/release/unistore}
IMG_DIR=images/localhost/unistore-bench/run:1
die() { printf '[floor.sh] ERROR: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root"
[[ -d $W/store && -d $W/native && -f $W/list-native-0 ]] ||
  die "$W is not a kept bench work dir of this version (KEEP=1 bash bench/run.sh)"
[[ -x $U ]] || die "$U: not built (cargo build --release -p unistore-cli)"
command -v chrt >/dev/null || die "chrt (util-linux) is missing"
cargo build -q --release --manifest-path "$HERE/helpers/Cargo.toml" --target-dir "$ROOT/target/bench-helpers" ||
  die "building bench/helpers failed"
NULLFS=$ROOT/target/bench-helpers/release/unistore-bench-nullfs
URING=/sys/module/fuse/parameters/enable_uring
[[ -e $URING ]] || die "this kernel has no FUSE over io_uring"
URING_WAS=$(cat "$URING")
OUT=$(mktemp)
NULL_PIDS=
cleanup() {
  for m in m-null m-null-noopen; do mountpoint -q "$W/$m" && umount "$W/$m"; done
  [[ -n $NULL_PIDS ]] && wait $NULL_PIDS 2>/dev/null
  mountpoint -q "$W/m-on" && "$U" umount "$W/m-on"
  echo "$URING_WAS" >"$URING"
  rm -f "$OUT"
}
trap cleanup EXIT
echo Y >"$URING"
mkdir -p "$W/m-null" "$W/m-null-noopen" "$W/m-on"
chrt --batch 0 "$NULLFS" "$W/native" "$W/m-null" &
NULL_PIDS=$!
chrt --batch 0 "$NULLFS" --no-open "$W/native" "$W/m-null-noopen" &
NULL_PIDS="$NULL_PIDS $!"
for m in m-null m-null-noopen; do
  for _ in $(seq 100); do mountpoint -q "$W/$m" && break; sleep 0.2; done
  mountpoint -q "$W/$m" || die "nullfs did not mount at $W/$m"
done
"$U" --store "$W/store" mount "$W/m-on" -o uring=on
declare -A TREE=([native]="$W/native" [nullfs]="$W/m-null" [nullfs-no-open]="$W/m-null-noopen"
  [unistore]="$W/m-on/$IMG_DIR")
VARIANTS="native nullfs nullfs-no-open unistore"
run() { (cd "${TREE[$1]}" && xargs -0 cat <"$W/list-native-0" >/dev/null); }
for v in $VARIANTS; do run "$v"; done # warm-up
for k in $(seq "$N"); do
  # each round in its own order
  for v in $(printf '%s\n' $VARIANTS | shuf --random-source=<(yes "$k")); do
    s=$(date +%s%N)
    run "$v"
    e=$(date +%s%N)
    echo "$v $(((e - s) / 1000))" >>"$OUT"
  done
done
python3 - "$OUT" "$(tr -cd '\0' <"$W/list-native-0" | wc -c)" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, us = line.split()
    runs[v].append(int(us))
files = int(sys.argv[2])
nat = statistics.median(runs["native"])
print(f"warm cat of {files} small files, relative to each tree's root, median of {len(runs['native'])} rounds")
for v in ("native", "nullfs", "nullfs-no-open", "unistore"):
    m = statistics.median(runs[v])
    print(f"  {v:14} {m / 1000:7.1f} ms  x{m / nat:.2f}  (+{(m - nat) / files:.2f} us/file)"
          f"  min {min(runs[v]) / 1000:.1f}  max {max(runs[v]) / 1000:.1f}")
PY
