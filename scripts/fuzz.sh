#!/usr/bin/env bash
# Fuzz every parser of outside data (issue 6): the targets in fuzz/fuzz_targets,
# each for SECONDS (default 30), seeded from fuzz/seeds/TARGET (real fixture
# layers, manifests, configs, indexes, archives, option strings). Exits non-zero
# on the first crash, leaving the input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz drives libFuzzer, which needs nightly compiler features; the
# stable toolchain provides them with RUSTC_BOOTSTRAP=1. Reproduce a crash with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(layer_tar manifest_config oci_layout archive layer_index
                               mount_options source_ref storage_conf zstd_chunked)
# Largest input per target: small inputs keep each run fast (layer_tar and
# archive write objects into a throwaway store for every input).
declare -A max_len=([layer_tar]=32768 [archive]=32768 [oci_layout]=16384
                    [manifest_config]=16384 [layer_index]=8192 [storage_conf]=4096
                    [mount_options]=512 [source_ref]=512 [zstd_chunked]=16384)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code is safe Rust (unsafe_code is denied), so libFuzzer
# looks for panics (including overflow checks and debug assertions, which
# cargo-fuzz turns on), aborts, leaks of time and memory; the build is faster
# and every run does about twice the executions.
flags=(--sanitizer none)
cargo fuzz build "${flags[@]}"

# The targets' scratch stores go here (tmpfs when there is one), removed at the end.
TMPDIR=$(mktemp -d /dev/shm/unistore-fuzz.XXXXXX 2>/dev/null || mktemp -d /var/tmp/unistore-fuzz.XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  echo "[fuzz] $t: ${secs}s" >&2
  if ! cargo fuzz run "${flags[@]}" "$t" "$corpus" "fuzz/seeds/$t" -- \
      -max_total_time="$secs" -max_len="${max_len[$t]:-4096}" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$TMPDIR/$t.log" 2>&1; then
    tail -n 60 "$TMPDIR/$t.log" >&2
    echo "[fuzz] $t: CRASH (input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "$TMPDIR/$t.log" | sed "s/^/[fuzz] $t: /" >&2 || true
done
echo "[fuzz] ${#targets[@]} targets, ${secs}s each: no crash" >&2
