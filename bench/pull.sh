#!/usr/bin/env bash
# Benchmark (issue 8): `unistore pull` vs `podman pull` of the same image from
# the same local registry, in one run.
#
# A docker-registry (Debian's package) on 127.0.0.1 serves the registry
# fixtures (tests/registry/build-registry-fixtures.sh); a byte-counting proxy
# (tests/registry/proxy.py) in front of it counts what each pull downloads.
# Cases (REPS runs each, default 3, tools interleaved, page cache dropped
# before every timed run; medians reported):
#
#   full     fixture/derived:gzip into an empty store / graph root
#   full-zc  fixture/derived:zstd-chunked into an empty store / graph root
#   update   fixture/update:2 (zstd:chunked; three files differ from update:1)
#            into a store / graph root that already holds fixture/update:1
#            (pulled untimed first). podman runs twice: as configured by
#            default (c/storage partial pulls off) and with
#            `enable_partial_images = "true"` (podman-partial).
#
# Columns:
#   seconds       wall-clock of the pull alone
#   +sync         the pull followed by `sync`
#   downloaded    bytes the registry sent for this pull (proxy count: HTTP
#                 headers and bodies)
#   written       bytes the process caused to be written to storage
#                 (getrusage ru_oublock * 512 = /proc/PID/io write_bytes of the
#                 process tree; measured with GNU time)
#   du delta      growth of the store / graph root (du -sb)
#
# Needs root (drop_caches, podman), podman, docker-registry, GNU time, python3.
# Usage: bench/pull.sh [REPS]
#   UNISTORE_BIN=...  another binary (default: cargo build --release)
#   CASES="full update", TOOLS="unistore podman"  run a subset
set -euo pipefail

REPS=${1:-${REPS:-3}}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "REPS must be a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "must run as root (drop_caches, podman)" >&2; exit 1; }
for t in podman docker-registry python3 skopeo; do
  command -v "$t" >/dev/null || { echo "$t is not installed (scripts/deps.sh)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is not installed: apt-get install time" >&2; exit 1; }

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"

if [[ -n ${UNISTORE_BIN:-} ]]; then
  UNISTORE=$UNISTORE_BIN
else
  echo "building release binary..." >&2
  cargo build --release -q -p unistore-cli
  UNISTORE=$ROOT/target/release/unistore
fi

echo "ensuring registry fixtures..." >&2
RF=$(bash tests/registry/build-registry-fixtures.sh | sed -n 's/^REGISTRY_FIXTURES_DIR=//p')
[[ -n $RF && -f $RF/registry.env ]] || { echo "building the registry fixtures failed" >&2; exit 1; }
FIX=${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}
# shellcheck disable=SC1091
. "$RF/registry.env"
# shellcheck disable=SC1091
. "$FIX/fixtures.env"

WORK=$(mktemp -d /var/tmp/unistore-bench-pull.XXXXXX)
REG_PID='' PROXY_PID=''
unmount_below() {
  awk -v p="$1" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}
cleanup() {
  [[ -n $PROXY_PID ]] && kill "$PROXY_PID" 2>/dev/null || true
  [[ -n $REG_PID ]] && kill "$REG_PID" 2>/dev/null || true
  unmount_below "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REG_PORT=$(free_port)
REG_PID=$(tests/registry/start-registry.sh "$REG_OPEN_DIR" "$REG_PORT" --readonly --log "$WORK/registry.log")
PORT=$(free_port)
CTL=$(free_port)
python3 tests/registry/proxy.py "$PORT" "$REG_PORT" "$CTL" &
PROXY_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$CTL") 2>/dev/null && break
  sleep 0.05
done
sent() { python3 -c 'import json,socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); print(json.loads(s.makefile().readline())["sent"])' "$CTL"; }

# A private client configuration (no host registries.conf or credentials).
printf '' >"$WORK/registries.conf"
echo '{"auths":{}}' >"$WORK/auth.json"
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf REGISTRY_AUTH_FILE=$WORK/auth.json
export CONTAINERS_CONF=$FIXTURE_CONTAINERS_CONF

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# setup TOOL DIR: an empty store / graph root; prints the pull command prefix via globals
tool_cmd() { # TOOL DIR -> sets CMD (array, without the reference) and TARGET
  local tool=$1 dir=$2
  case $tool in
    unistore)
      [[ -d $dir/store ]] || "$UNISTORE" --store "$dir/store" init >/dev/null
      CMD=("$UNISTORE" --store "$dir/store" pull --quiet --tls-verify=false)
      TARGET=$dir/store
      ;;
    podman | podman-partial)
      if [[ ! -f $dir/storage.conf ]]; then
        mkdir -p "$dir/tmp" "$dir/root"
        # runroot must be short (< 50 characters)
        ln -sfn "$(mktemp -d /tmp/ubp-XXXXXX)" "$dir/runlink"
        printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
          "$dir/root" "$(readlink "$dir/runlink")" >"$dir/storage.conf"
        if [[ $tool == podman-partial ]]; then
          printf '[storage.options.pull_options]\nenable_partial_images = "true"\n' >>"$dir/storage.conf"
        fi
      fi
      CMD=(env "CONTAINERS_STORAGE_CONF=$dir/storage.conf"
        podman --root "$dir/root" --runroot "$(readlink "$dir/runlink")" --storage-driver overlay
        --tmpdir "$dir/tmp" --runtime runc --cgroup-manager cgroupfs --events-backend none
        pull -q --tls-verify=false)
      TARGET=$dir/root
      ;;
  esac
}

# run_one CASE TOOL REP: prints "CASE TOOL REP seconds +sync downloaded written du_delta"
run_one() {
  local case=$1 tool=$2 rep=$3 dir=$WORK/$1-$2-$3 ref prep=
  mkdir -p "$dir"
  case $case in
    full) ref=fixture/derived:gzip ;;
    full-zc) ref=fixture/derived:zstd-chunked ;;
    update) ref=fixture/update:2 prep=fixture/update:1 ;;
  esac
  tool_cmd "$tool" "$dir"
  if [[ -n $prep ]]; then
    "${CMD[@]}" "docker://127.0.0.1:$PORT/$prep" >/dev/null 2>"$dir/prep.err" ||
      { cat "$dir/prep.err" >&2; echo "$tool: pull of $prep failed" >&2; exit 1; }
  fi
  local du0 b0 t0 t1 t2 b1 oublock du1
  du0=$(du -sb "$TARGET" | cut -f1)
  drop_caches
  b0=$(sent)
  t0=$(now)
  /usr/bin/time -f '%O' -o "$dir/rusage" "${CMD[@]}" "docker://127.0.0.1:$PORT/$ref" >"$dir/out" 2>"$dir/err" ||
    { cat "$dir/err" >&2; echo "$case: $tool run $rep failed" >&2; exit 1; }
  t1=$(now)
  sync
  t2=$(now)
  b1=$(sent)
  oublock=$(tail -1 "$dir/rusage")
  du1=$(du -sb "$TARGET" | cut -f1)
  printf '%s %s %s %.3f %.3f %s %s %s\n' "$case" "$tool" "$rep" "$(sub "$t1" "$t0")" "$(sub "$t2" "$t0")" \
    "$((b1 - b0))" "$((oublock * 512))" "$((du1 - du0))"
  unmount_below "$dir"
  [[ -L $dir/runlink ]] && rm -rf "$(readlink "$dir/runlink")"
  rm -rf "$dir"
}

tools_for() { # CASE -> the tools it runs (TOOLS=... restricts them)
  local t all="unistore podman"
  [[ $1 == update ]] && all="unistore podman podman-partial"
  for t in $all; do
    [[ -z ${TOOLS:-} || " $TOOLS " == *" $t "* ]] && printf '%s ' "$t"
  done
}

RESULTS=$WORK/results
: >"$RESULTS"
CASES=${CASES:-full full-zc update}
for case in $CASES; do
  tools=$(tools_for "$case")
  for rep in $(seq 1 "$REPS"); do
    for tool in $tools; do
      echo "$case run $rep: $tool..." >&2
      run_one "$case" "$tool" "$rep" >>"$RESULTS"
    done
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$1" -v t="$2" -v k="$3" '$1 == c && $2 == t { print $k }' "$RESULTS"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
blob_bytes() { # repo:tag -> manifest + config + layers
  local d
  d=REG_DIGEST_$(tr -c 'A-Za-z0-9\n' '_' <<<"${1/:/__}" | tr 'a-z' 'A-Z')
  local m=$REG_OPEN_DIR/docker/registry/v2/blobs/sha256/${!d:7:2}/${!d#sha256:}/data
  echo $(($(stat -c %s "$m") + $(jq '.config.size + ([.layers[].size] | add)' "$m")))
}

echo
echo "unistore $("$UNISTORE" --version | awk '{print $2}') vs $(podman --version); $(nproc) CPUs; kernel $(uname -r)"
echo "registry: docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null) on 127.0.0.1 (plain HTTP), proxy-counted; $REPS runs, caches dropped; medians"
echo "image bytes (manifest+config+layer blobs): derived:gzip $(mib "$(blob_bytes fixture/derived:gzip)") MiB," \
  "derived:zstd-chunked $(mib "$(blob_bytes fixture/derived:zstd-chunked)") MiB, update:2 $(mib "$(blob_bytes fixture/update:2)") MiB"
echo
printf '%-8s %-15s %8s %8s %15s %12s %12s\n' case tool seconds +sync "downloaded MiB" "written MiB" "du delta MiB"
for case in $CASES; do
  tools=$(tools_for "$case")
  for tool in $tools; do
    printf '%-8s %-15s %8s %8s %15s %12s %12s\n' "$case" "$tool" \
      "$(col "$case" "$tool" 4 | median)" "$(col "$case" "$tool" 5 | median)" \
      "$(mib "$(col "$case" "$tool" 6 | median)")" "$(mib "$(col "$case" "$tool" 7 | median)")" \
      "$(mib "$(col "$case" "$tool" 8 | median)")"
  done
done
echo
echo "per run:"
cat "$RESULTS"
