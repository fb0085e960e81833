#!/usr/bin/env bash
# Benchmark (not a test): reading image data through unistore's
# containers-storage view vs natively, in one run.
#
#   native      = the same layer extracted with `tar -xf` (from `unistore
#                 layer-tar`, i.e. the original layer tar) onto the local
#                 filesystem that also holds the store; for `podman run`,
#                 podman's own storage holding the same image
#   view pt=on  = `unistore mount -o passthrough=on`  (kernel FUSE passthrough)
#   view pt=off = `unistore mount -o passthrough=off` (daemon pread)
#
# Rows: 1 GiB sequential read (warm, cold), mmap read touching every page
# (warm, cold), `find` walk and `ls -lR` of a tree of many small files (cold,
# warm), cat of every small file (cold, warm), `podman run --rm IMG true`; the
# median of $REPS runs (default 5) and the ratio to native. Also the daemons'
# VmRSS after walking (stat of every entry) every layer of every image.
# "cold" = `sync; echo 3 > /proc/sys/vm/drop_caches` before each run (this
# drops the caches of the whole machine).
#
# The bench image (base fixture + a 1 GiB random file + $SMALL small files) is
# built once with podman build and cached in $CACHE. Results: a table on stdout
# and JSON in bench/results/view-<date>.json.
#
# Environment: UNISTORE_BIN (default: target/release/unistore, built if
# needed), REPS (5), SMALL (20000), BIG_MB (1024),
# CACHE (/var/tmp/unistore-bench-cache), WORK (/var/tmp/unistore-bench-work,
# removed at the end unless KEEP=1).
# Needs root, /dev/fuse, podman, runc, python3 and the test fixtures
# (tests/fixtures/build-fixtures.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
REPS=${REPS:-5}
SMALL=${SMALL:-20000}
BIG_MB=${BIG_MB:-1024}
CACHE=${CACHE:-/var/tmp/unistore-bench-cache}
WORK=${WORK:-/var/tmp/unistore-bench-work}
IMG=localhost/unistore-bench/view:1
RUN_FLAGS=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 --network none --pull never)

log() { printf '[bench +%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
for t in podman runc python3 tar; do command -v $t >/dev/null || die "$t is not installed"; done

if [[ -z ${UNISTORE_BIN:-} ]]; then
  log "building the release binary (cargo build --release -p unistore-cli)"
  (cd "$ROOT" && cargo build -q --release -p unistore-cli) || die "cargo build failed"
  UNISTORE_BIN=$ROOT/target/release/unistore
fi
[[ -x $UNISTORE_BIN ]] || die "no unistore binary at $UNISTORE_BIN"

log "fixtures"
bash "$ROOT/tests/fixtures/build-fixtures.sh" >/dev/null
# shellcheck disable=SC1091
. /var/tmp/unistore-fixtures/fixtures.env

# ------------------------------------------------------------------ cleanup
DAEMONS=()
cleanup() {
  set +e
  for m in "$WORK/m-on" "$WORK/m-off"; do
    if grep -q " $m fuse" /proc/mounts; then
      "$UNISTORE_BIN" --store "$WORK/store" umount "$m" 2>/dev/null || umount -l "$m"
    fi
  done
  sleep 0.3
  for pid in "${DAEMONS[@]}"; do
    # Only the daemons this script started, and only if they still are ours.
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--store $WORK/store mount"; then
      kill -9 "$pid" 2>/dev/null
    fi
  done
  awk -v p="$WORK" '{ if (index($2, p "/") == 1) print $2 }' /proc/mounts | sort -r | while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done
}
finish() {
  cleanup
  # The store, the extracted tree and podman's roots (a few GiB); KEEP=1 keeps them.
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap finish EXIT

# --------------------------------------------------------- the bench image
# podman build in a private root, from the base fixture: one layer with the
# 1 GiB random file and $SMALL small files (100..8191 bytes, 100 per dir).
ARCHIVE=$CACHE/bench-v2-$BIG_MB-$SMALL.docker.tar
if [[ ! -s $ARCHIVE ]]; then
  log "building the bench image ($BIG_MB MiB file, $SMALL small files)"
  rm -rf "$CACHE" && mkdir -p "$CACHE/ctx/bench/small"
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
  # one COPY = one layer holding both
  printf 'FROM %s\nCOPY bench /bench\n' "$FIXTURE_BASE_IMAGE" >"$CACHE/ctx/Containerfile"
  "${B[@]}" load -q -i "$FIXTURE_BASE_DOCKER_TAR" >/dev/null
  "${B[@]}" build -q --pull=never --layers --format oci -t "$IMG" "$CACHE/ctx" >/dev/null
  "${B[@]}" save -q --format docker-archive -o "$ARCHIVE.tmp" "$IMG"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  "${B[@]}" rmi -a -f >/dev/null 2>&1 || true
  awk -v p="$CACHE" '{ if (index($2, p "/") == 1) print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$CACHE/ctx" "$CACHE/root" "$CACHE/run"
fi

# ------------------------------------------------------ store, mounts, native
log "setting up $WORK"
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"/{m-on,m-off,native,podman-native,podman-view}
U=("$UNISTORE_BIN" --store "$WORK/store")
"${U[@]}" init >/dev/null
for a in "$ARCHIVE" "$FIXTURE_DERIVED_DOCKER_TAR" "$FIXTURE_APP_DOCKER_TAR"; do
  "${U[@]}" import -q "docker-archive:$a" >/dev/null
done
NLAYERS=$("${U[@]}" inspect --json "$IMG" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Layers"]))')
TOP=$((NLAYERS - 1))
LAYER_ID=$("${U[@]}" inspect --json "$IMG" | python3 -c '
import hashlib, json, sys
ids = []
for d in json.load(sys.stdin)["RootFS"]["Layers"]:
    h = d.split(":", 1)[1]
    ids.append(h if not ids else hashlib.sha256(f"{ids[-1]}+{h}".encode()).hexdigest())
print(ids[-1])')
# native: the bench layer's original tar, extracted
"${U[@]}" layer-tar "$IMG" "$TOP" | tar -x --numeric-owner -C "$WORK/native"
for pt in on off; do
  "${U[@]}" mount "$WORK/m-$pt" -o "passthrough=$pt"
  pid=$(pgrep -f -- "--store $WORK/store mount $WORK/m-$pt --foreground" | head -1)
  [[ -n $pid ]] || die "no daemon for $WORK/m-$pt"
  DAEMONS+=("$pid")
  grep -a "reads are served" "$WORK/store/tmp/mount-${WORK//\//_}_m-$pt.log" | tail -1 |
    sed 's/\x1b\[[0-9;]*m//g' | sed 's/^/  /' >&2 || true
done
PID_ON=${DAEMONS[0]}
PID_OFF=${DAEMONS[1]}
VIEW_DIFF=containers-storage/overlay/$LAYER_ID/diff
[[ -f $WORK/m-on/$VIEW_DIFF/bench/big.bin ]] || die "big.bin not found in the view at $VIEW_DIFF"
# podman: native storage holding the image, and an empty one using the view
PN=(podman --root "$WORK/podman-native/root" --runroot "$WORK/podman-native/run" --storage-driver overlay)
"${PN[@]}" load -q -i "$ARCHIVE" >/dev/null

export WORK VIEW_DIFF IMG REPS PID_ON PID_OFF UNISTORE_BIN
export RUN_FLAGS_STR="${RUN_FLAGS[*]}"
log "measuring ($REPS runs per cell; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
mkdir -p "$HERE/results"
OUT_JSON=$HERE/results/view-$(date +%Y%m%d-%H%M%S).json python3 - <<'PY'
import json, mmap, os, platform, statistics, subprocess, sys, time

W = os.environ["WORK"]
REPS = int(os.environ["REPS"])
IMG = os.environ["IMG"]
RUN_FLAGS = os.environ["RUN_FLAGS_STR"].split()
roots = {
    "native": f"{W}/native",
    "view pt=on": f"{W}/m-on/{os.environ['VIEW_DIFF']}",
    "view pt=off": f"{W}/m-off/{os.environ['VIEW_DIFF']}",
}
pids = {"view pt=on": int(os.environ["PID_ON"]), "view pt=off": int(os.environ["PID_OFF"])}

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)

BIG = os.path.getsize(f"{roots['native']}/bench/big.bin")

def seq_read(root):
    n = 0
    with open(f"{root}/bench/big.bin", "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        while k := f.readinto(buf):
            n += k
    assert n == BIG, f"{root}: read {n} bytes of {BIG}"

def mmap_read(root):
    with open(f"{root}/bench/big.bin", "rb") as f:
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            s = sum(memoryview(m)[::4096])  # one byte of every page
    return s

def podman_run(what):
    if what == "native":
        base = ["podman", "--root", f"{W}/podman-native/root", "--runroot", f"{W}/podman-native/run"]
    else:
        m = "m-on" if what == "view pt=on" else "m-off"
        base = ["podman", "--root", f"{W}/podman-view/root", "--runroot", f"{W}/podman-view/run",
                "--storage-opt", f"additionalimagestore={W}/{m}/containers-storage"]
    subprocess.run(base + ["--storage-driver", "overlay", "run", "--rm"] + RUN_FLAGS + [IMG, "true"],
                   check=True, stdout=subprocess.DEVNULL)

rows = [
    (f"seq read {BIG >> 20} MiB", "warm", lambda r: seq_read(r), BIG),
    (f"seq read {BIG >> 20} MiB", "cold", lambda r: seq_read(r), BIG),
    (f"mmap read {BIG >> 20} MiB", "warm", lambda r: mmap_read(r), BIG),
    (f"mmap read {BIG >> 20} MiB", "cold", lambda r: mmap_read(r), BIG),
    ("find walk (small tree)", "cold", lambda r: sh(f"find {r}/bench/small >/dev/null"), None),
    ("find walk (small tree)", "warm", lambda r: sh(f"find {r}/bench/small >/dev/null"), None),
    ("ls -lR (small tree)", "cold", lambda r: sh(f"ls -lR {r}/bench/small >/dev/null"), None),
    ("ls -lR (small tree)", "warm", lambda r: sh(f"ls -lR {r}/bench/small >/dev/null"), None),
    ("cat every small file", "cold", lambda r: sh(f"find {r}/bench/small -type f -exec cat {{}} + >/dev/null"), None),
    ("cat every small file", "warm", lambda r: sh(f"find {r}/bench/small -type f -exec cat {{}} + >/dev/null"), None),
    ("podman run --rm IMG true", "warm", None, None),
]

results = []
for name, mode, fn, nbytes in rows:
    row = {"row": name, "cache": mode, "bytes": nbytes, "variants": {}}
    for what, root in roots.items():
        times = []
        # one untimed run first: fills caches for "warm", checks the command works
        (fn(root) if fn else podman_run(what))
        for _ in range(REPS):
            if mode == "cold":
                drop_caches()
            t = time.perf_counter()
            (fn(root) if fn else podman_run(what))
            times.append(time.perf_counter() - t)
        row["variants"][what] = {"median_s": statistics.median(times), "runs_s": times}
    nat = row["variants"]["native"]["median_s"]
    for v in row["variants"].values():
        v["ratio_to_native"] = v["median_s"] / nat if nat > 0 else None
    results.append(row)
    print(f"  measured: {name} ({mode})", file=sys.stderr)

def vmrss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])  # KiB
    return None

rss = {}
for what, pid in pids.items():
    m = "m-on" if what == "view pt=on" else "m-off"
    before = vmrss(pid)
    t = time.perf_counter()
    # stat every entry of every layer of every image
    n = int(subprocess.run(f"find {W}/{m}/containers-storage/overlay/*/diff -printf x | wc -c",
                           shell=True, check=True, capture_output=True, text=True).stdout)
    rss[what] = {"pid": pid, "vmrss_kib_before_walk": before, "vmrss_kib_after_walk": vmrss(pid),
                 "entries_walked": n, "walk_s": time.perf_counter() - t}

def fmt_t(s):
    return f"{s * 1000:9.1f} ms" if s < 10 else f"{s:9.2f} s "

cols = list(roots)
print()
print(f"unistore containers-storage view vs native — median of {REPS} runs; ratio = time / native time")
print(f"{'row':<26} {'cache':<5} " + " ".join(f"{c:>24}" for c in cols))
print("-" * (33 + 25 * len(cols)))
for r in results:
    cells = []
    for c in cols:
        v = r["variants"][c]
        extra = ""
        if r["bytes"]:
            extra = f" {r['bytes'] / v['median_s'] / 2**20:6.0f}MiB/s"
        ratio = "" if c == "native" else f" x{v['ratio_to_native']:.2f}"
        cells.append(f"{fmt_t(v['median_s'])}{ratio}{extra}")
    print(f"{r['row']:<26} {r['cache']:<5} " + " ".join(f"{x:>24}" for x in cells))
print()
for what, v in rss.items():
    print(f"daemon VmRSS ({what}, pid {v['pid']}): {v['vmrss_kib_before_walk'] / 1024:.1f} MiB after setup and "
          f"the runs above, {v['vmrss_kib_after_walk'] / 1024:.1f} MiB after stat-walking every layer of every "
          f"image ({v['entries_walked']} entries, {v['walk_s']:.2f}s)")

doc = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
             "loadavg_at_end": open("/proc/loadavg").read().split()[:3]},
    "unistore_bin": os.environ["UNISTORE_BIN"],
    "reps": REPS,
    "native": "layer tar extracted with tar -x onto the store's filesystem; podman's own overlay storage for podman run",
    "rows": results,
    "daemon_rss": rss,
}
with open(os.environ["OUT_JSON"], "w") as f:
    json.dump(doc, f, indent=2)
print(f"\nJSON: {os.environ['OUT_JSON']}")
PY
