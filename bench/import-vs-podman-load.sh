#!/usr/bin/env bash
# Benchmark: `unistore import docker-archive:derived.docker.tar` (fresh store)
# versus `podman load -i derived.docker.tar` (fresh, isolated graph root).
#
# Builds the release binary, ensures the fixtures, then runs REPS (default 3)
# repetitions of each, alternating, with `sync; echo 3 > /proc/sys/vm/drop_caches`
# before every run. Reports per run and as medians:
#   seconds       wall-clock of the command alone
#   +sync         wall-clock of the command followed by `sync` (unistore fsyncs
#                 its objects itself; podman leaves dirty pages to writeback)
#   write_bytes   bytes the process and its waited-for children caused to be
#                 written to storage (getrusage ru_oublock * 512, i.e. the
#                 write_bytes of /proc/<pid>/io summed over the process tree)
#   du -sb        apparent size of the resulting store / graph root
#   du alloc      allocated size (du -s --block-size=1)
# and the ratio unistore/podman of the median times.
#
# Needs root (drop_caches, podman), podman, GNU time.
# Usage: bench/import-vs-podman-load.sh [REPS]
set -euo pipefail

REPS=${1:-3}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "REPS must be a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "must run as root (drop_caches, podman)" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman is not installed" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is not installed: apt-get install time" >&2; exit 1; }

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"

echo "building release binary..." >&2
cargo build --release -q -p unistore-cli
UNISTORE=$ROOT/target/release/unistore

echo "ensuring fixtures..." >&2
bash tests/fixtures/build-fixtures.sh >&2
FIXTURES=${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}
# shellcheck disable=SC1091
. "$FIXTURES/fixtures.env"
TAR=$FIXTURE_DERIVED_DOCKER_TAR
[[ -s $TAR ]] || { echo "missing $TAR" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/unistore-bench.XXXXXX)
cleanup() {
  # podman's overlay driver may leave mounts in its graph root
  awk -v p="$WORK" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# run_one TOOL REP: prints "TOOL REP seconds seconds_with_sync write_bytes du_apparent du_alloc"
run_one() {
  local tool=$1 rep=$2 dir=$WORK/$1-$2 t0 t1 t2 target
  mkdir -p "$dir"
  local -a cmd
  case $tool in
    unistore)
      "$UNISTORE" --store "$dir/store" init >/dev/null
      cmd=("$UNISTORE" --store "$dir/store" import -q "docker-archive:$TAR")
      target=$dir/store
      ;;
    podman)
      mkdir -p "$dir/tmp"
      printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
        "$dir/root" "$dir/run" >"$dir/storage.conf"
      cmd=(env "CONTAINERS_STORAGE_CONF=$dir/storage.conf" "CONTAINERS_CONF=$FIXTURE_CONTAINERS_CONF"
        podman --root "$dir/root" --runroot "$dir/run" --storage-driver overlay
        --tmpdir "$dir/tmp" --runtime runc --cgroup-manager cgroupfs --events-backend none
        load -q -i "$TAR")
      target=$dir/root
      ;;
  esac
  drop_caches
  t0=$(now)
  /usr/bin/time -f '%O' -o "$dir/rusage" "${cmd[@]}" >"$dir/out" 2>"$dir/err" ||
    { cat "$dir/err" >&2; echo "$tool run $rep failed" >&2; exit 1; }
  t1=$(now)
  sync
  t2=$(now)
  local oublock wb du_app du_alloc
  oublock=$(tail -1 "$dir/rusage")
  wb=$((oublock * 512))
  du_app=$(du -sb "$target" | cut -f1)
  du_alloc=$(du -s --block-size=1 "$target" | cut -f1)
  printf '%s %s %.3f %.3f %s %s %s\n' "$tool" "$rep" \
    "$(sub "$t1" "$t0")" "$(sub "$t2" "$t0")" "$wb" "$du_app" "$du_alloc"
  # free the space before the next run (after measuring)
  awk -v p="$dir" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$dir"
}

RESULTS=$WORK/results
: >"$RESULTS"
echo "input: $TAR ($(du -sb "$TAR" | cut -f1) bytes); $REPS runs each, caches dropped before every run" >&2
for rep in $(seq 1 "$REPS"); do
  for tool in unistore podman; do
    echo "run $rep: $tool..." >&2
    run_one "$tool" "$rep" >>"$RESULTS"
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v t="$1" -v c="$2" '$1 == t { print $c }' "$RESULTS"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

echo
echo "unistore $("$UNISTORE" --version | awk '{print $2}') (release) vs $(podman --version)"
echo "input: $(basename "$TAR") $(mib "$(du -sb "$TAR" | cut -f1)"), ${FIXTURE_DERIVED_LAYERS} layers"
echo
printf '%-9s %4s %9s %9s %14s %14s %14s\n' tool run seconds +sync write_bytes "du -sb" "du alloc"
while read -r tool rep s ss wb da dl; do
  printf '%-9s %4s %9s %9s %14s %14s %14s\n' "$tool" "$rep" "$s" "$ss" "$wb" "$da" "$dl"
done <"$RESULTS"
echo
printf '%-9s %9s %9s %14s %14s %14s\n' median seconds +sync write_bytes "du -sb" "du alloc"
declare -A MED MEDS
for tool in unistore podman; do
  MED[$tool]=$(col "$tool" 3 | median)
  MEDS[$tool]=$(col "$tool" 4 | median)
  printf '%-9s %9s %9s %14s %14s %14s\n' "$tool" "${MED[$tool]}" "${MEDS[$tool]}" \
    "$(col "$tool" 5 | median)" "$(col "$tool" 6 | median)" "$(col "$tool" 7 | median)"
done
echo
printf 'ratio unistore/podman (median seconds): %s   (with sync): %s\n' \
  "$(div "${MED[unistore]}" "${MED[podman]}")" "$(div "${MEDS[unistore]}" "${MEDS[podman]}")"
printf 'write_bytes: unistore %s, podman %s\n' \
  "$(mib "$(col unistore 5 | median)")" "$(mib "$(col podman 5 | median)")"
printf 'du -sb:      unistore %s, podman %s\n' \
  "$(mib "$(col unistore 6 | median)")" "$(mib "$(col podman 6 | median)")"
