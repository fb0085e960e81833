#!/usr/bin/env bash
# A/B of two unistore binaries on one workload: both daemons mounted side by
# side on the bench store, the workload alternating between them, then again
# with the two mount points swapped (the second mount point of a pair measured
# 0.1–0.3 µs per file slower whatever daemon served it). Reports the median of
# each binary at each mount point. Asserts no time. Documentation:
# docs/benchmarks.md ("A/B of two builds").
#
#   bench/ab.sh BIN_A BIN_B [N] [CMD] [CACHE]
#
# BIN_A, BIN_B: unistore binaries; N: runs per binary and order (11);
# CMD: the workload, `{}` standing for the per-image tree (default `find {}`);
# CACHE: cold (drop_caches before each run, the default) or warm.
# Needs a bench work dir kept by `KEEP=1 bash bench/run.sh` (WORK, default
# /var/tmp/unistore-bench-run), root and /dev/fuse. MOUNT_OPTS: more -o options.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,17p' "$0" >&2; exit 2; }
A=$1 B=$2 N=${3:-11} CMD=${4:-'find {}'} CACHE=${5:-cold}
W=${WORK:-/var/tmp/unistore-bench-run}
IMG_DIR=images/localhost/unistore-bench/run:1
die() { printf '[ab.sh] ERROR: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root"
[[ -d $W/store && -d $W/m-on && -d $W/m-off ]] || die "$W is not a kept bench work dir (KEEP=1 bash bench/run.sh)"
[[ -x $A && -x $B ]] || die "BIN_A and BIN_B must be executables"
[[ $CACHE == cold || $CACHE == warm ]] || die "CACHE is cold or warm, not $CACHE"
URING=/sys/module/fuse/parameters/enable_uring
URING_WAS=$(cat "$URING" 2>/dev/null || true)
OPTS=(-o uring=on)
[[ -n $URING_WAS ]] && echo Y >"$URING" || OPTS=(-o uring=off)
[[ -n ${MOUNT_OPTS:-} ]] && OPTS+=(-o "$MOUNT_OPTS")
OUT=$(mktemp)
cleanup() {
  for m in m-on m-off; do mountpoint -q "$W/$m" && "$A" umount "$W/$m" || true; done
  [[ -n $URING_WAS ]] && echo "$URING_WAS" >"$URING"
  rm -f "$OUT"
}
trap cleanup EXIT
for order in AB BA; do
  if [[ $order == AB ]]; then X=$A Y=$B; else X=$B Y=$A; fi
  "$X" --store "$W/store" mount "$W/m-on" "${OPTS[@]}"
  "$Y" --store "$W/store" mount "$W/m-off" "${OPTS[@]}"
  for m in m-on m-off; do (eval "${CMD//\{\}/\'$W/$m/$IMG_DIR\'}") >/dev/null; done # warm-up
  for _ in $(seq "$N"); do
    for m in m-on m-off; do
      bin=$X; [[ $m == m-off ]] && bin=$Y
      [[ $CACHE == cold ]] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
      s=$(date +%s%N)
      (eval "${CMD//\{\}/\'$W/$m/$IMG_DIR\'}") >/dev/null
      e=$(date +%s%N)
      echo "$([[ $bin == "$A" ]] && echo A || echo B) $m $(((e - s) / 1000))" >>"$OUT"
    done
  done
  "$X" umount "$W/m-on"
  "$Y" umount "$W/m-off"
done
python3 - "$OUT" "$A" "$B" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, m, us = line.split()
    runs[(who, m)].append(int(us))
names = {"A": sys.argv[2], "B": sys.argv[3]}
for (who, m), v in sorted(runs.items()):
    print(f"{who} at {m:5} median {statistics.median(v) / 1000:8.2f} ms  min {min(v) / 1000:8.2f}  max {max(v) / 1000:8.2f}  ({names[who]})")
PY
