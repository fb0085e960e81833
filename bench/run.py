"""Measurements of bench/run.sh (set up by it; see docs/benchmarks.md).

Every cell: one untimed warm-up run, then REPS timed runs; variants are
interleaved within each repetition so that a change of machine load hits them
alike. "cold" = `sync; echo 3 > /proc/sys/vm/drop_caches` before each run.
Reported: the median and its ratio to the row's native baseline.
"""

import glob
import hashlib
import json
import mmap
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

W = os.environ["WORK"]
REPS = int(os.environ["REPS"])
# The 1 GiB rows and `podman run` are the noisiest cells on a VM (a cold read
# of the same file, FUSE or not, takes 0.48 s or 0.7-1.0 s from one run to the
# next, as the host serves it): they get more runs, so that a few slow ones
# do not make the median.
NOISY_REPS = int(os.environ.get("NOISY_REPS") or max(REPS, 11))
IMG = os.environ["IMG"]
U = os.environ["UNISTORE_BIN"]
HELPERS = os.environ["HELPERS"]
RUN_FLAGS = os.environ["RUN_FLAGS"].split()
LAYERS = os.environ["LAYERS"].split()
OUT = os.environ["OUT"]
ROW_SEL = [s for s in os.environ.get("ROWS", "").split(",") if s]
VAR_SEL = [s for s in os.environ.get("VARIANTS", "").split(",") if s]
SYSTEM = os.environ.get("SYSTEM", "1") != "0"
IMG_DIR = "images/" + IMG  # images/<registry>/<repo>:<tag>


def log(msg):
    print(f"[run.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def sh(cmd, **kw):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, **kw)


def vmrss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# ------------------------------------------------------------------ variants
# kind "tree": one root holding the image's root filesystem; kind "layers":
# the image's layer diff/ dirs (their union is the image). `base` is the
# native variant its ratios are taken against.
native_layers = [f"{W}/podman-native/root/overlay/{i}/diff" for i in LAYERS]
VARIANTS = {
    "native": {"roots": [f"{W}/native"], "base": "native", "status": "ok"},
    "native-layers": {"roots": native_layers, "base": "native-layers", "status": "ok",
                      "big": f"{W}/native"},
    "cfs-kernel": {"roots": [f"{W}/cfs-kernel"], "base": "native", "status": os.environ["CFS_KERNEL"]},
    "img pt=on": {"roots": [f"{W}/m-on/{IMG_DIR}"], "base": "native", "status": "ok",
                  "pid": os.environ["PID_on"]},
    "img pt=off": {"roots": [f"{W}/m-off/{IMG_DIR}"], "base": "native", "status": "ok",
                   "pid": os.environ["PID_off"]},
    "cs pt=on": {"roots": [f"{W}/m-on/containers-storage/overlay/{i}/diff" for i in LAYERS],
                 "base": "native-layers", "status": "ok", "pid": os.environ["PID_on"]},
    "cs pt=off": {"roots": [f"{W}/m-off/containers-storage/overlay/{i}/diff" for i in LAYERS],
                  "base": "native-layers", "status": "ok", "pid": os.environ["PID_off"]},
    "bindfs": {"roots": [f"{W}/bindfs"], "base": "native", "status": os.environ["BINDFS"],
               "pid": os.environ.get("PID_bindfs")},
    "cfs-fuse": {"roots": [f"{W}/cfs-fuse"], "base": "native", "status": os.environ["CFS_FUSE"],
                 "pid": os.environ.get("PID_cfsfuse")},
}
for name, v in VARIANTS.items():
    if VAR_SEL and name not in ("native", "native-layers") and not any(s in name for s in VAR_SEL):
        v["status"] = "n/a: not selected (VARIANTS)"
    if v["status"] == "ok" and not all(os.path.isdir(r) for r in v["roots"]):
        v["status"] = f"n/a: {v['roots'][0]} is not a directory"
ACTIVE = [n for n, v in VARIANTS.items() if v["status"] == "ok"]


def big_path(name):
    v = VARIANTS[name]
    if "big" in v:
        return f"{v['big']}/bench/big.bin"
    for r in reversed(v["roots"]):
        if os.path.exists(f"{r}/bench/big.bin"):
            return f"{r}/bench/big.bin"
    raise FileNotFoundError(f"{name}: no bench/big.bin")


# Small files: every non-empty regular file below 1 MiB (composefs-fuse 0.9.4
# fails to open empty files: EIO), listed once from the native
# trees (same relative paths in each variant of the same kind). Each variant
# reads them relative to its tree root (`cd ROOT && xargs -0 cat`): what is
# measured is the tree, not the walk from / to wherever the tree is mounted
# (for the per-image view 4 more components, images/<registry>/<repo>/<tag>,
# than for the native tree; docs/benchmarks.md).
def small_list(roots):
    out = []
    for i, r in enumerate(roots):
        for d, _, files in os.walk(r):
            for f in files:
                p = os.path.join(d, f)
                st = os.lstat(p)
                if (st.st_mode & 0o170000) == 0o100000 and 0 < st.st_size < (1 << 20):
                    out.append((i, os.path.relpath(p, r)))
    return out


SMALL = {"native": small_list(VARIANTS["native"]["roots"]),
         "native-layers": small_list(VARIANTS["native-layers"]["roots"])}
for name in ACTIVE:
    v = VARIANTS[name]
    lst = SMALL[v["base"]]
    v["lists"] = []
    for i, root in enumerate(v["roots"]):
        path = f"{W}/list-{name.replace(' ', '_').replace('=', '')}-{i}"
        with open(path, "wb") as f:
            for j, rel in lst:
                if j == i:
                    f.write(rel.encode() + b"\0")
        v["lists"].append((root, path))


def each_root(name, cmd):
    """`cmd` (reading NUL-separated relative paths on stdin) run in each tree
    root of `name` in turn, on that root's list."""
    return " && ".join(f"(cd '{root}' && {cmd} <'{path}' >/dev/null)"
                       for root, path in VARIANTS[name]["lists"])


BIG = os.path.getsize(big_path("native"))
log(f"small files: {len(SMALL['native'])} (tree), {len(SMALL['native-layers'])} (layers); big file {BIG >> 20} MiB")


def seq_read(name):
    n = 0
    with open(big_path(name), "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        while k := f.readinto(buf):
            n += k
    assert n == BIG, f"{name}: read {n} of {BIG} bytes"


def mmap_read(name):
    with open(big_path(name), "rb") as f:
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            return sum(memoryview(m)[::4096])  # one byte of every page


def roots(name):
    return " ".join(f"'{r}'" for r in VARIANTS[name]["roots"])


def tar_tree(name):
    # GNU tar skips reading file data when the archive is /dev/null, so the
    # archive goes through a pipe: this reads every byte of the tree.
    v = VARIANTS[name]
    for r in v["roots"]:
        sh(f"tar -C '{r}' -cf - . | cat >/dev/null")


ROWS = [
    # (name, cache, fn, bytes); the rows with bytes get NOISY_REPS runs
    (f"seq read {BIG >> 20} MiB", "warm", seq_read, BIG),
    (f"seq read {BIG >> 20} MiB", "cold", seq_read, BIG),
    (f"mmap read {BIG >> 20} MiB", "warm", mmap_read, BIG),
    (f"mmap read {BIG >> 20} MiB", "cold", mmap_read, BIG),
    ("find walk", "warm", lambda n: sh(f"find {roots(n)} >/dev/null"), None),
    ("find walk", "cold", lambda n: sh(f"find {roots(n)} >/dev/null"), None),
    ("ls -lR", "warm", lambda n: sh(f"ls -lR {roots(n)} >/dev/null"), None),
    ("ls -lR", "cold", lambda n: sh(f"ls -lR {roots(n)} >/dev/null"), None),
    ("read small files", "warm", lambda n: sh(each_root(n, "xargs -0 cat")), None),
    ("read small files", "cold", lambda n: sh(each_root(n, "xargs -0 cat")), None),
    ("8 parallel readers", "warm",
     lambda n: sh(each_root(n, "xargs -0 -P8 -n200 cat")), None),
    ("8 parallel readers", "cold",
     lambda n: sh(each_root(n, "xargs -0 -P8 -n200 cat")), None),
    ("tar cf - TREE | cat", "warm", tar_tree, None),
]

results = []
doc = {
    "transport": os.environ.get("TRANSPORT", "?"),
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "machine": platform.machine(),
             "loadavg_at_start": loadavg()},
    "unistore_bin": U,
    "unistore_version": subprocess.run([U, "--version"], capture_output=True, text=True).stdout.strip(),
    "git": subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                           "--always", "--dirty"], capture_output=True, text=True).stdout.strip(),
    "reps": REPS,
    "noisy_reps": NOISY_REPS,
    "image": IMG,
    "variants": {n: {"status": v["status"], "base": v["base"], "roots": v["roots"]}
                 for n, v in VARIANTS.items()},
    "small_files": {"tree": len(SMALL["native"]), "layers": len(SMALL["native-layers"])},
    "rows": results,
}


def finish_row(row):
    for name, cell in row["variants"].items():
        if cell.get("median_s") is None:
            continue
        base = row["variants"].get(row.get("base_of", {}).get(name, VARIANTS.get(name, {}).get("base", "native")))
        if base and base.get("median_s"):
            cell["ratio_to_native"] = cell["median_s"] / base["median_s"]
            # The same ratio round by round (each round runs every variant once):
            # the host's slow stretches hit a variant and its baseline alike.
            a, b = cell.get("runs_s") or [], base.get("runs_s") or []
            if a and len(a) == len(b):
                cell["paired_ratio_median"] = statistics.median(x / y for x, y in zip(a, b))
    results.append(row)


def measure(name, cache, cells, nbytes=None, base_of=None, system=False, reps=REPS, prepare=None):
    """cells: {variant: callable}. `prepare()` once, a warm-up run of each
    cell, then `reps` interleaved rounds, each in its own (seeded) order."""
    row = {"row": name, "cache": cache, "bytes": nbytes, "variants": {}, "loadavg": loadavg(),
           "system": system, "reps": reps}
    if base_of:
        row["base_of"] = base_of
    times = {v: [] for v in cells}
    ok = {}
    if prepare:
        prepare()
    for v, fn in cells.items():
        try:
            fn()
            ok[v] = True
        except Exception as e:  # the cell is n/a, the row goes on
            ok[v] = False
            row["variants"][v] = {"median_s": None, "error": str(e)[:300]}
            log(f"  {name} ({cache}) {v}: n/a: {str(e)[:200]}")
    # Each round in its own order (seeded: the same for every run): no variant
    # always runs right after the same other one. In the 11:24 run of
    # 2026-12-04 (fixed order) the per-image view's cold 1 GiB read, always
    # right after the kernel composefs mount's, was slow in 6 of 11 rounds,
    # native's in 1; measured without the other variants, 0.96x of native.
    names = list(cells)
    for k in range(reps):
        order = names[:]
        random.Random(k).shuffle(order)
        for v in order:
            fn = cells[v]
            if not ok[v]:
                continue
            if cache == "cold":
                drop_caches()
            t = time.perf_counter()
            fn()
            times[v].append(time.perf_counter() - t)
    for v in cells:
        if ok[v]:
            row["variants"][v] = {"median_s": statistics.median(times[v]), "runs_s": times[v]}
    finish_row(row)
    log(f"measured {name} ({cache}), load {' '.join(row['loadavg'])}")
    return row


def selected(name, cache=""):
    """ROWS substrings match "NAME (CACHE)", e.g. "small files (cold)"."""
    label = f"{name} ({cache})" if cache else name
    return not ROW_SEL or any(s in label for s in ROW_SEL)


def read_every_big_file():
    """The same page cache for every warm 1 GiB row: the big file of every
    variant read once with read(), from a dropped cache. Pages a mmap fault
    brings in come in smaller folios than read-ahead's, and several variants
    share one backing object: without this, a warm mmap row measured whichever
    way the previous row had left each file (native 13.4 or 19.7 ms from one
    run to the next; the views 22.7 ms in one run, 15.4 ms after a read())."""
    drop_caches()
    for v in ACTIVE:
        try:
            seq_read(v)
        except Exception as e:  # the cell will say why
            log(f"  reading {v}'s big file: {str(e)[:200]}")


for name, cache, fn, nbytes in ROWS:
    if selected(name, cache):
        measure(name, cache, {v: (lambda v=v, fn=fn: fn(v)) for v in ACTIVE}, nbytes,
                reps=NOISY_REPS if nbytes else REPS,
                prepare=read_every_big_file if nbytes and cache == "warm" else None)

# ---------------------------------------------------------------- system level
PODMAN_NATIVE = ["podman", "--root", f"{W}/podman-native/root", "--runroot", f"{W}/podman-native/run"]


def podman_view(m):
    return ["podman", "--root", f"{W}/podman-view/root", "--runroot", f"{W}/podman-view/run",
            "--storage-opt", f"additionalimagestore={W}/{m}/containers-storage"]


def podman_run(base):
    subprocess.run(base + ["--storage-driver", "overlay", "run", "--rm"] + RUN_FLAGS + [IMG, "true"],
                   check=True, stdout=subprocess.DEVNULL)


if SYSTEM and selected("podman run"):
    # control: the same image in an additional image store that podman itself
    # wrote, on ext4 (podman's native graph root used as the AIS): what the
    # additional-image-store path costs without any FUSE
    ais = ["podman", "--root", f"{W}/podman-ais/root", "--runroot", f"{W}/podman-ais/run",
           "--storage-opt", f"additionalimagestore={W}/podman-native/root"]
    cells = {"native": lambda: podman_run(PODMAN_NATIVE), "AIS on ext4": lambda: podman_run(ais)}
    for pt in ("on", "off"):
        if f"cs pt={pt}" in ACTIVE:
            cells[f"cs pt={pt}"] = lambda pt=pt: podman_run(podman_view(f"m-{pt}"))
    measure("podman run --rm IMG true", "warm", cells,
            base_of={"cs pt=on": "native", "cs pt=off": "native", "AIS on ext4": "native"}, system=True,
            reps=NOISY_REPS)

if SYSTEM and selected("ostree checkout"):
    derived = os.environ["FIXTURE_DERIVED_IMAGE"]
    ref = json.loads(subprocess.run([U, "--store", f"{W}/store", "inspect", "--json", derived],
                                    check=True, capture_output=True, text=True).stdout)["OstreeRef"]
    disk = f"{W}/ostree-disk"
    shutil.rmtree(disk, ignore_errors=True)
    sh(f"ostree init --mode=bare --repo={disk}")
    sh(f"ostree --repo={disk} pull-local {W}/m-on/ostree '{ref}'")
    co = f"{W}/ostree-co"

    def checkout(repo, copy):
        shutil.rmtree(co, ignore_errors=True)
        sh(f"ostree --repo={repo} checkout {'-C ' if copy else ''}'{ref}' {co}")
        shutil.rmtree(co, ignore_errors=True)

    cells = {"native": lambda: checkout(disk, True)}
    for pt in ("on", "off"):
        if f"img pt={pt}" in ACTIVE:
            cells[f"ostree view pt={pt}"] = lambda pt=pt: checkout(f"{W}/m-{pt}/ostree", False)
    measure(f"ostree checkout ({derived.split('/')[-1]})", "warm", cells,
            base_of={"ostree view pt=on": "native", "ostree view pt=off": "native"}, system=True)

if SYSTEM and selected("import"):
    tar = os.environ["FIXTURE_DERIVED_DOCKER_TAR"]
    conf = os.environ["FIXTURE_CONTAINERS_CONF"]

    def fresh(d):
        subprocess.run(f"awk -v p='{d}' 'index($2, p) == 1 {{ print $2 }}' /proc/mounts | sort -r "
                       "| xargs -r -n1 umount -l", shell=True)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)

    def imp():
        d = f"{W}/imp-u"
        fresh(d)
        subprocess.run([U, "--store", f"{d}/store", "init"], check=True, stdout=subprocess.DEVNULL)
        drop_caches()
        t = time.perf_counter()
        subprocess.run([U, "--store", f"{d}/store", "import", "-q", f"docker-archive:{tar}"],
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    def load():
        d = f"{W}/imp-p"
        fresh(d)
        os.makedirs(f"{d}/tmp")
        with open(f"{d}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{d}/root"\nrunroot = "{d}/run"\n')
        env = dict(os.environ, CONTAINERS_STORAGE_CONF=f"{d}/storage.conf", CONTAINERS_CONF=conf)
        drop_caches()
        t = time.perf_counter()
        subprocess.run(["podman", "--root", f"{d}/root", "--runroot", f"{d}/run", "--storage-driver",
                        "overlay", "--tmpdir", f"{d}/tmp", "--runtime", "runc", "--cgroup-manager",
                        "cgroupfs", "--events-backend", "none", "load", "-q", "-i", tar],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        return time.perf_counter() - t

    # cold by construction (caches dropped inside, after the fresh store is made)
    row = {"row": "import derived.docker.tar (cold)", "cache": "cold", "bytes": None,
           "variants": {}, "loadavg": loadavg(), "base_of": {"unistore import": "native"}, "system": True}
    imp(), load()  # warm-up
    ts = {"native": [], "unistore import": []}
    for _ in range(REPS):
        ts["unistore import"].append(imp())
        ts["native"].append(load())
    for k, v in ts.items():
        row["variants"][k] = {"median_s": statistics.median(v), "runs_s": v}
    row["note"] = "native = podman load into a fresh graph root"
    finish_row(row)
    fresh(f"{W}/imp-u"), fresh(f"{W}/imp-p")
    log("measured import vs podman load")


def mount_ready_cells():
    """Stores with 1 small image, 20 small images (distinct IDs), and the bench store."""
    stores = {}
    app_oci = os.environ["FIXTURE_APP_OCI_DIR"]
    for n in (1, 20):
        s = f"{W}/store-{n}"
        if not os.path.isdir(s):
            subprocess.run([U, "--store", s, "init"], check=True, stdout=subprocess.DEVNULL)
            for i in range(n):
                d = f"{W}/oci-{i}"
                variant_oci(app_oci, d, i)
                subprocess.run([U, "--store", s, "import", "-q", f"oci:{d}", "--name",
                                f"localhost/unistore-bench/app{i}:1"], check=True, stdout=subprocess.DEVNULL)
        stores[f"{n} image{'s' if n > 1 else ''}"] = s
    stores["bench store (2 images, 1 GiB)"] = f"{W}/store"
    return stores


def variant_oci(src, dst, i):
    """Copy of OCI layout `src` whose config has one more label: a distinct image ID."""
    if os.path.isdir(dst):
        return
    shutil.copytree(src, dst, copy_function=os.link)
    def blob(d):
        return f"{dst}/blobs/{d.replace(':', '/')}"
    def put(data):
        h = "sha256:" + hashlib.sha256(data).hexdigest()
        p = blob(h)
        if os.path.exists(p):
            os.unlink(p)
        with open(p, "wb") as f:
            f.write(data)
        return h
    index = json.load(open(f"{dst}/index.json"))
    mdesc = index["manifests"][0]
    man = json.load(open(blob(mdesc["digest"])))
    cfg = json.load(open(blob(man["config"]["digest"])))
    cfg.setdefault("config", {}).setdefault("Labels", {})["io.unistore.bench.variant"] = str(i)
    cdata = json.dumps(cfg).encode()
    man["config"]["digest"], man["config"]["size"] = put(cdata), len(cdata)
    mdata = json.dumps(man).encode()
    os.unlink(f"{dst}/index.json")
    mdesc["digest"], mdesc["size"] = put(mdata), len(mdata)
    with open(f"{dst}/index.json", "w") as f:
        json.dump(index, f)


if SYSTEM and selected("mount ready"):
    mnt = f"{W}/m-ready"
    os.makedirs(mnt, exist_ok=True)
    stores = mount_ready_cells()

    def mount_ready(s):
        t = time.perf_counter()
        subprocess.run([U, "--store", s, "mount", mnt], check=True)
        os.listdir(f"{mnt}/containers-storage/overlay-images")
        os.listdir(f"{mnt}/images")
        el = time.perf_counter() - t
        pid = subprocess.run(["pgrep", "-f", f"--store {s} mount {mnt} --foreground"],
                             capture_output=True, text=True).stdout.split()
        subprocess.run([U, "--store", s, "umount", mnt], check=True)
        for _ in range(100):  # wait for the daemon to go
            if not pid or not os.path.exists(f"/proc/{pid[0]}"):
                break
            time.sleep(0.02)
        return el

    row = {"row": "mount ready (mount + first listing)", "cache": "warm", "bytes": None,
           "variants": {}, "loadavg": loadavg(), "note": "absolute; target <= 100 ms", "system": True}
    for label, s in stores.items():
        mount_ready(s)
        ts = [mount_ready(s) for _ in range(REPS)]
        row["variants"][label] = {"median_s": statistics.median(ts), "runs_s": ts}
    results.append(row)
    log("measured mount ready")

# daemon RSS after walking every view (stat of every entry, all views)
rss = {}
for v in ("img pt=on", "img pt=off"):
    if v not in ACTIVE:
        continue
    pid = VARIANTS[v]["pid"]
    m = "m-on" if "on" in v else "m-off"
    before = vmrss_kib(pid)
    t = time.perf_counter()
    n = int(subprocess.run(f"find {W}/{m} -printf x | wc -c", shell=True, check=True,
                           capture_output=True, text=True).stdout)
    rss[f"unistore {v.split()[1]}"] = {"pid": pid, "vmrss_kib_before": before, "vmrss_kib_after_walk": vmrss_kib(pid),
                                       "entries_walked": n, "walk_s": time.perf_counter() - t}
for v in ("bindfs", "cfs-fuse"):
    if v in ACTIVE and VARIANTS[v].get("pid"):
        rss[v] = {"pid": VARIANTS[v]["pid"], "vmrss_kib_after_walk": vmrss_kib(VARIANTS[v]["pid"])}
doc["daemon_rss"] = rss
doc["host"]["loadavg_at_end"] = loadavg()

# ------------------------------------------------------------------- targets
def med(row_prefix, cache, var):
    for r in results:
        if r["row"].startswith(row_prefix) and r["cache"] == cache:
            c = r["variants"].get(var) or {}
            return c.get("ratio_to_native"), c.get("median_s")
    return None, None


def paired_ratio(row_prefix, cache, var):
    for r in results:
        if r["row"].startswith(row_prefix) and r["cache"] == cache:
            return (r["variants"].get(var) or {}).get("paired_ratio_median")
    return None


targets = []
def target(what, row, cache, var, limit, absolute=False):
    ratio, m = med(row, cache, var)
    val = m if absolute else ratio
    if val is None:
        return
    t = {"target": what, "variant": var, "value": val, "limit": limit,
         "unit": "s" if absolute else "x native", "met": val <= limit}
    paired = paired_ratio(row, cache, var)
    if not absolute and paired is not None:
        t["paired_ratio_median"] = paired
    targets.append(t)


for v in ("img pt=on", "cs pt=on"):
    target("seq read warm <= 1.05x", "seq read", "warm", v, 1.05)
    target("seq read cold <= 1.05x", "seq read", "cold", v, 1.05)
    target("mmap read warm <= 1.05x", "mmap read", "warm", v, 1.05)
    target("mmap read cold <= 1.05x", "mmap read", "cold", v, 1.05)
    target("find warm <= 1.0x", "find walk", "warm", v, 1.0)
    target("find cold <= 1.0x", "find walk", "cold", v, 1.0)
    target("ls -lR warm <= 1.5x", "ls -lR", "warm", v, 1.5)
    target("ls -lR cold <= 1.5x", "ls -lR", "cold", v, 1.5)
    target("small files warm <= 1.5x", "read small files", "warm", v, 1.5)
    target("small files cold <= 1.3x", "read small files", "cold", v, 1.3)
target("podman run <= 1.1x", "podman run", "warm", "cs pt=on", 1.1)
for r in results:
    if r["row"].startswith("mount ready"):
        for k, c in r["variants"].items():
            targets.append({"target": "mount ready <= 100 ms", "variant": k, "value": c["median_s"],
                            "limit": 0.1, "unit": "s", "met": c["median_s"] <= 0.1})
for k, v in rss.items():
    if k.startswith("unistore") and v.get("vmrss_kib_after_walk"):
        mib = v["vmrss_kib_after_walk"] / 1024
        targets.append({"target": "daemon RSS <= 64 MiB", "variant": k, "value": mib, "limit": 64,
                        "unit": "MiB", "met": mib <= 64})
# faster than bindfs and composefs-fuse on every workload (best unistore variant of the kind)
for r in results:
    vs = r["variants"]
    for peer in ("bindfs", "cfs-fuse"):
        p = (vs.get(peer) or {}).get("median_s")
        ours = [c["median_s"] for k, c in vs.items() if k.startswith(("img", "cs")) and c.get("median_s")]
        if p and ours:
            targets.append({"target": f"faster than {peer}", "variant": f"{r['row']} ({r['cache']})",
                            "value": min(ours) / p, "limit": 1.0, "unit": "x peer", "met": min(ours) < p})
doc["targets"] = targets

with open(OUT + ".json", "w") as f:
    json.dump(doc, f, indent=2)

# --------------------------------------------------------------------- table
def fmt_t(s):
    if s is None:
        return "n/a"
    return f"{s * 1000:.1f}ms" if s < 10 else f"{s:.2f}s"


cols = []
for r in results:
    if not r.get("system"):
        for k in r["variants"]:
            if k not in cols:
                cols.append(k)
lines = []
lines.append(f"unistore benchmark {doc['date']} — kernel {platform.release()}, {os.cpu_count()} CPUs; "
             f"load average {' '.join(doc['host']['loadavg_at_start'])} (start) "
             f"{' '.join(doc['host']['loadavg_at_end'])} (end); git {doc['git']}; "
             f"unistore FUSE transport: {doc.get('transport', '?')}")
lines.append(f"median of {REPS} runs ({NOISY_REPS} for the {BIG >> 20} MiB rows and podman run) after a "
             f"warm-up run; cell = median and ratio to native "
             f"(cs rows: to native-layers, podman's own diff dirs); last column: 1-min load")
head = f"{'workload':<22} {'cache':<5} " + " ".join(f"{c[:14]:>14}" for c in cols) + "  load"
lines.append(head)
lines.append("-" * len(head))


def cell(c, v):
    if v is None:
        return ""
    if v.get("median_s") is None:
        return "n/a"
    ratio = v.get("ratio_to_native")
    return fmt_t(v["median_s"]) + (f" x{ratio:.2f}" if ratio is not None and c not in (
        "native", "native-layers") else "")


for r in results:
    if r.get("system"):
        continue
    cells = [cell(c, r["variants"].get(c)) for c in cols]
    lines.append(f"{r['row'][:22]:<22} {r['cache']:<5} " + " ".join(f"{x:>14}" for x in cells)
                 + f"  {r['loadavg'][0]}")
lines.append("")
lines.append("system level (median; ratio to the native counterpart):")
for r in results:
    if not r.get("system"):
        continue
    parts = [f"{k} {cell(k, v)}" for k, v in r["variants"].items()]
    lines.append(f"  {r['row']:<38} " + "; ".join(parts) + f"  [load {r['loadavg'][0]}]")
lines.append("")
for n, v in VARIANTS.items():
    if v["status"] != "ok":
        lines.append(f"{n}: {v['status']}")
for k, v in rss.items():
    extra = ""
    if "entries_walked" in v:
        extra = f" after stat-walking every view ({v['entries_walked']} entries, {v['walk_s']:.2f}s)"
    lines.append(f"daemon VmRSS {k}: {v['vmrss_kib_after_walk'] / 1024:.1f} MiB{extra}")
lines.append("")
lines.append("targets:")
for t in targets:
    val = f"{t['value']:.3f}" if t["unit"] != "MiB" else f"{t['value']:.1f}"
    paired = f"  (median of per-round ratios {t['paired_ratio_median']:.3f})" if "paired_ratio_median" in t else ""
    lines.append(f"  {'MET ' if t['met'] else 'MISS'} {t['target']:<28} {t['variant']:<40} {val} {t['unit']}{paired}")
table = "\n".join(lines)
print(table)
with open(OUT + ".txt", "w") as f:
    f.write(table + "\n")

# ---------------------------------------------------------------------- plot
def plot():
    labels, series = [], {}
    plot_cols = [c for c in cols if c not in ("native", "native-layers") and not c[0].isdigit()
                 and not c.startswith("bench store")]
    for r in results:
        if r["row"].startswith("mount ready"):
            continue
        labels.append(f"{r['row']}\n({r['cache']})")
        for c in plot_cols:
            series.setdefault(c, []).append((r["variants"].get(c) or {}).get("ratio_to_native"))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401
    except ImportError:
        return plot_svg(labels, series)
    fig, ax = plt.subplots(figsize=(max(12, len(labels) * 1.1), 6))
    width = 0.8 / max(1, len(series))
    for i, (c, vals) in enumerate(series.items()):
        xs = [j + i * width for j, v in enumerate(vals) if v]
        ys = [v for v in vals if v]
        ax.bar(xs, ys, width, label=c)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax.set_ylabel("time / native time (log scale; lower is better)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))])
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_title(f"unistore vs native and peers — {doc['date']}, load {' '.join(doc['host']['loadavg_at_start'])}")
    ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    fig.savefig(OUT + ".png", dpi=110)
    return OUT + ".png"


def plot_svg(labels, series):
    import math
    w, h, pad = 60 * len(labels) + 120, 420, 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 160}">']
    y = lambda v: pad + (h - 2 * pad) * (1 - (math.log10(v) + 1) / 3)  # 0.1x .. 100x
    out.append(f'<line x1="60" x2="{w}" y1="{y(1)}" y2="{y(1)}" stroke="black"/>')
    bw = 50 / max(1, len(series))
    for i, (c, vals) in enumerate(series.items()):
        for j, v in enumerate(vals):
            if v:
                v = min(max(v, 0.11), 99)
                x = 80 + 60 * j + i * bw
                out.append(f'<rect x="{x}" y="{min(y(v), y(1))}" width="{bw}" height="{abs(y(1) - y(v))}" '
                           f'fill="hsl({i * 360 // len(series)},60%,50%)"><title>{c}: {v:.2f}</title></rect>')
    out.append("</svg>")
    with open(OUT + ".svg", "w") as f:
        f.write("\n".join(out))
    return OUT + ".svg"


print(f"\nJSON: {OUT}.json\nplot: {plot()}\ntable: {OUT}.txt")
