#!/usr/bin/env python3
"""Generate unistore's corpus of hostile and corrupt image inputs.

    python3 tests/hostile/gen.py OUTDIR

writes one OCI layout directory (or one oci-archive / docker-archive tar) per
case into OUTDIR, plus OUTDIR/README with one line per case:

    NAME <TAB> SOURCE <TAB> EXPECT <TAB> DESCRIPTION

SOURCE is a containers-transports(5) reference relative to OUTDIR
(`oci:NAME`, `oci-archive:NAME.tar`, `docker-archive:NAME.tar`). EXPECT is
`OK` (a positive control: odd but legal, must import and read back
bit-exactly) or `ERR a|b|c`: `unistore import` must fail with one line
`Error: ...` that contains one of the `|`-separated texts (case-insensitive).

Only the standard library is used, and the output is deterministic: the same
bytes on every run (fixed mtimes, gzip mtime 0, zstd frames written by hand).
OUTDIR must not exist or be empty. The corpus is ~20 MiB (two cases need JSON
larger than unistore's 8 MiB limit, and two cases are a FIFO and a symlink
to /dev/zero), so it is generated at test time rather than committed; see
tests/hostile/README.md.
"""

import hashlib
import json
import os
import struct
import sys
import zlib

MTIME = 1700000000
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MAX_JSON = 8 << 20
# Files up to this size are inline in unistore's splitstreams; larger ones become objects.
INLINE_MAX = 64


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def noise(seed, n):
    """Deterministic incompressible bytes, different for every seed."""
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def js(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------
# tar, byte by byte (tarfile refuses most of what we need to write)


def octal(n, width):
    return ("%0*o" % (width - 1, n)).encode() + b"\0"


def pax_record(key, value):
    """One PAX record `LEN key=value\\n` with a correct LEN."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(value, str):
        value = value.encode()
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


class Tar:
    def __init__(self, gnu=False):
        self.buf = bytearray()
        self.gnu = gnu

    def header(self, name, typeflag, size=0, link=b"", mode=0o644, uid=0, gid=0,
               mtime=MTIME, devmajor=0, devminor=0, prefix=b"", size_field=None,
               mode_field=None, bad_checksum=False):
        if isinstance(name, str):
            name = name.encode()
        if isinstance(link, str):
            link = link.encode()
        if isinstance(prefix, str):
            prefix = prefix.encode()
        h = bytearray(512)

        def put(at, width, v):
            assert len(v) <= width, (at, v)
            h[at:at + len(v)] = v

        put(0, 100, name)
        put(100, 8, mode_field if mode_field is not None else octal(mode, 8))
        put(108, 8, octal(uid, 8))
        put(116, 8, octal(gid, 8))
        put(124, 12, size_field if size_field is not None else octal(size, 12))
        put(136, 12, octal(mtime, 12))
        put(148, 8, b"        ")
        h[156] = typeflag if isinstance(typeflag, int) else typeflag[0]
        put(157, 100, link)
        if self.gnu:
            put(257, 8, b"ustar  \0")
        else:
            put(257, 6, b"ustar\0")
            put(263, 2, b"00")
        put(265, 32, b"root")
        put(297, 32, b"root")
        put(329, 8, octal(devmajor, 8))
        put(337, 8, octal(devminor, 8))
        if not self.gnu:
            put(345, 155, prefix)
        s = sum(h)
        if bad_checksum:
            s += 1
        put(148, 8, ("%06o" % s).encode() + b"\0 ")
        self.buf += h
        return self

    def data(self, data):
        self.buf += data
        self.buf += b"\0" * (-len(data) % 512)
        return self

    def file(self, name, data, **kw):
        self.header(name, b"0", size=len(data), **kw)
        return self.data(data)

    def dir(self, name, **kw):
        kw.setdefault("mode", 0o755)
        return self.header(name, b"5", **kw)

    def symlink(self, name, target, **kw):
        kw.setdefault("mode", 0o777)
        return self.header(name, b"2", link=target, **kw)

    def hardlink(self, name, target, **kw):
        return self.header(name, b"1", link=target, **kw)

    def pax(self, records, name="PaxHeaders/x", typeflag=b"x"):
        """A PAX extended header: `records` is raw bytes or a list of (key, value)."""
        if not isinstance(records, (bytes, bytearray)):
            records = b"".join(pax_record(k, v) for k, v in records)
        self.header(name, typeflag, size=len(records))
        return self.data(records)

    def gnu_long(self, typeflag, value):
        if isinstance(value, str):
            value = value.encode()
        value += b"\0"
        self.header("././@LongLink", typeflag, size=len(value), mode=0)
        return self.data(value)

    def raw(self, data):
        self.buf += data
        return self

    def end(self, record=None):
        self.buf += b"\0" * 1024
        if record:
            self.buf += b"\0" * (-len(self.buf) % record)
        return bytes(self.buf)

    def unfinished(self):
        return bytes(self.buf)


def payload(case, gnu=False):
    """The start of every test layer: a directory, a file large enough to be
    stored as an object (unique per case, so a failure later in the layer
    happens after an object was written) and a small inline file."""
    return (Tar(gnu=gnu)
            .dir("data/")
            .file("data/payload.bin", noise(case, 8192))
            .file("data/small.txt", ("case %s\n" % case).encode()))


# ---------------------------------------------------------------------------
# compression


def gz(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip wrapper, mtime 0, no name
    return c.compress(data) + c.flush()


def gz_stream(chunks):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = bytearray()
    for ch in chunks:
        out += c.compress(ch)
    out += c.flush()
    return bytes(out)


def zst(data):
    """A valid zstd frame of raw (stored) blocks: magic, single-segment frame
    header with an 8-byte content size, blocks of at most 128 KiB."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out.append(0xE0)  # FCS 8 bytes, single segment, no checksum, no dictionary
    out += struct.pack("<Q", len(data))
    chunks = [data[i:i + 131072] for i in range(0, len(data), 131072)] or [b""]
    for i, ch in enumerate(chunks):
        last = 1 if i == len(chunks) - 1 else 0
        hdr = (len(ch) << 3) | (0 << 1) | last  # Raw_Block
        out += struct.pack("<I", hdr)[:3]
        out += ch
    return bytes(out)


MT_OF = {"tar": MT_TAR, "gzip": MT_GZIP, "zstd": MT_ZSTD}
COMPRESS = {"tar": lambda b: b, "gzip": gz, "zstd": zst}


class Layer:
    def __init__(self, tar, comp="tar", blob=None, media_type=None):
        self.tar = tar
        self.blob = blob if blob is not None else COMPRESS[comp](tar)
        self.media_type = media_type or MT_OF[comp]
        self.diff_id = sha256(tar)
        self.digest = None  # digest the manifest claims (default: the blob's)
        self.size = None  # size the manifest claims (default: the blob's)
        self.present = True  # whether the blob file exists


# ---------------------------------------------------------------------------
# images: an in-memory tree {relative path: bytes | ("symlink", target) | ("fifo",)}


def config_for(case, diff_ids, **extra):
    cfg = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Labels": {"unistore.hostile.case": case}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    }
    cfg.update(extra)
    return cfg


def oci_tree(case, layers, diff_ids=None, config=None, config_bytes=None,
             config_digest=None, config_size=None, config_present=True,
             manifest=None, manifest_bytes=None, manifest_digest=None,
             manifest_size=None, manifest_media_type=MT_MANIFEST,
             manifest_present=True, index_bytes=None):
    """The files of an OCI layout; every keyword injects one defect."""
    tree = {"oci-layout": js({"imageLayoutVersion": "1.0.0"})}

    def blob(digest, data):
        tree["blobs/sha256/" + digest.split(":", 1)[1]] = data

    descs = []
    for l in layers:
        d = l.digest or sha256(l.blob)
        if l.present:
            blob(d, l.blob)
        descs.append({"mediaType": l.media_type, "digest": d,
                      "size": l.size if l.size is not None else len(l.blob)})
    if config_bytes is None:
        ids = diff_ids if diff_ids is not None else [l.diff_id for l in layers]
        config_bytes = js(config if config is not None else config_for(case, ids))
    cd = config_digest or sha256(config_bytes)
    if config_present:
        blob(cd, config_bytes)
    if manifest_bytes is None:
        m = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": cd,
                       "size": config_size if config_size is not None else len(config_bytes)},
            "layers": descs,
        }
        if manifest:
            m = manifest(m)
        manifest_bytes = js(m)
    md = manifest_digest or sha256(manifest_bytes)
    if manifest_present and not md.startswith("sha256:.."):
        blob(md, manifest_bytes)
    if index_bytes is None:
        index_bytes = js({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": manifest_media_type,
                "digest": md,
                "size": manifest_size if manifest_size is not None else len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name":
                                "localhost/unistore-hostile/%s:1" % case},
            }],
        })
    if index_bytes is not False:
        tree["index.json"] = index_bytes
    return tree


def write_tree(root, tree):
    for rel in sorted(tree):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        v = tree[rel]
        if isinstance(v, tuple) and v[0] == "symlink":
            os.symlink(v[1], p)
        elif isinstance(v, tuple) and v[0] == "fifo":
            os.mkfifo(p, 0o644)
        elif isinstance(v, tuple) and v[0] == "dir":
            os.mkdir(p)
        else:
            with open(p, "wb") as f:
                f.write(v)
    # Fixed times on everything, so listings of the corpus are reproducible.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME), follow_symlinks=False)
    os.utime(root, (MTIME, MTIME))


def tar_of_tree(tree):
    """An archive of the tree: the small top-level files first (as `docker
    save` writes manifest.json first), then everything else in name order."""
    t = Tar()
    dirs = set()
    for rel in sorted(tree, key=lambda r: ("/" in r, r)):
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in dirs:
                dirs.add(d)
                t.dir(d)
        v = tree[rel]
        if isinstance(v, tuple):
            t.symlink(rel, v[1])
        else:
            t.file(rel, v)
    return t.end()


def docker_tree(case, layers, diff_ids=None, config_bytes=None, manifest=None,
                layer_names=None, config_name=None):
    """The members of a docker-archive (`docker save` layout)."""
    ids = diff_ids if diff_ids is not None else [sha256(l) for l in layers]
    config_bytes = config_bytes or js(config_for(case, ids))
    cname = config_name or sha256(config_bytes).split(":")[1] + ".json"
    tree = {}
    names = []
    for i, l in enumerate(layers):
        n = "%064x/layer.tar" % (i + 1)
        names.append(n)
        if l is not None:
            tree[n] = l
    if layer_names is not None:
        names = layer_names
    tree[cname] = config_bytes
    items = [{"Config": cname,
              "RepoTags": ["localhost/unistore-hostile/%s:1" % case],
              "Layers": names}]
    tree["manifest.json"] = js(items) if manifest is None else manifest
    return tree


# ---------------------------------------------------------------------------
# the cases

CASES = []


def case(name, expect, desc, transport=None):
    """Register a case. Its function returns a dict (the files of an OCI
    layout directory, transport `oci`) or bytes (an archive: `docker-*`
    cases are docker-archives, `ociarchive-*` cases oci-archives)."""
    if transport is None:
        transport = ("docker-archive" if name.startswith("docker-") else
                     "oci-archive" if name.startswith("ociarchive-") else "oci")

    def reg(fn):
        CASES.append((name, expect, desc, transport, fn))
        return fn
    return reg


def oci(name, **kw):
    """An OCI layout with one uncompressed layer built from the tar `kw['tar']`."""
    tar = kw.pop("tar")
    comp = kw.pop("comp", "tar")
    return oci_tree(name, [Layer(tar, comp)], **kw)


ESC = "unistore-hostile-escape"

# --- path traversal ---------------------------------------------------------


@case("traversal-dotdot", "ERR `..`", "member `../" + ESC + "`")
def _(n):
    return oci(n, tar=payload(n).file("../" + ESC, b"x\n").end())


@case("traversal-absolute", "ERR absolute", "member `/tmp/" + ESC + "`")
def _(n):
    return oci(n, tar=payload(n).file("/tmp/" + ESC, b"x\n").end())


@case("traversal-dot-dotdot", "ERR `..`", "member `./a/../../" + ESC + "`")
def _(n):
    return oci(n, tar=payload(n).file("./a/../../" + ESC, b"x\n").end())


@case("traversal-ustar-prefix", "ERR `..`", "`..` hidden in the ustar prefix field")
def _(n):
    t = payload(n)
    t.header(ESC, b"0", size=3, prefix="../../../tmp")
    return oci(n, tar=t.data(b"x\n\n").end())


@case("traversal-pax-path", "ERR `..`", "innocent ustar name, PAX path=../../tmp/" + ESC)
def _(n):
    t = payload(n).pax([("path", "../../tmp/" + ESC)])
    return oci(n, tar=t.file("data/innocent", b"x\n").end())


@case("traversal-gnu-longname", "ERR `..`", "GNU long name (L) `../../../../tmp/...`")
def _(n):
    t = payload(n).gnu_long(b"L", "../" * 40 + "tmp/" + ESC)
    return oci(n, tar=t.file("data/innocent", b"x\n").end())


@case("traversal-symlink-dir", "ERR symlink",
      "symlink data/link -> real (a dir of the layer), then member data/link/evil")
def _(n):
    t = payload(n).dir("data/real/").symlink("data/link", "real")
    return oci(n, tar=t.file("data/link/evil", b"x\n").end())


@case("traversal-symlink-root", "ERR symlink", "symlink rootlink -> /, then rootlink/tmp/" + ESC)
def _(n):
    t = payload(n).symlink("rootlink", "/")
    return oci(n, tar=t.file("rootlink/tmp/" + ESC, b"x\n").end())


@case("traversal-symlink-dotdot", "ERR symlink", "symlink up -> ../../../.., then up/" + ESC)
def _(n):
    t = payload(n).symlink("up", "../../../..")
    return oci(n, tar=t.file("up/" + ESC, b"x\n").end())


@case("traversal-symlink-then-dir", "ERR symlink", "symlink s -> /tmp, then directory s/x/")
def _(n):
    return oci(n, tar=payload(n).symlink("s", "/tmp").dir("s/x/").end())


# --- hard links ---------------------------------------------------------------


@case("hardlink-dotdot", "ERR `..`", "hard link to ../../etc/passwd")
def _(n):
    return oci(n, tar=payload(n).hardlink("data/hard", "../../etc/passwd").end())


@case("hardlink-absolute", "ERR absolute", "hard link to /etc/shadow")
def _(n):
    return oci(n, tar=payload(n).hardlink("data/hard", "/etc/shadow").end())


@case("hardlink-missing", "ERR not in the layer", "hard link to a member that does not exist")
def _(n):
    return oci(n, tar=payload(n).hardlink("data/hard", "data/nonexistent").end())


@case("hardlink-forward", "ERR not in the layer", "hard link to a member that only comes later")
def _(n):
    t = payload(n).hardlink("data/hard", "data/later")
    return oci(n, tar=t.file("data/later", b"later\n").end())


@case("hardlink-to-dir", "ERR directory", "hard link to a directory of the layer")
def _(n):
    return oci(n, tar=payload(n).dir("data/sub/").hardlink("data/hard", "data/sub").end())


@case("hardlink-to-whiteout", "ERR whiteout|not in the layer", "hard link to a whiteout member")
def _(n):
    t = payload(n).file("data/.wh.gone", b"")
    return oci(n, tar=t.hardlink("data/hard", "data/.wh.gone").end())


@case("hardlink-through-symlink", "ERR symlink|not in the layer",
      "hard link to data/sl/passwd where data/sl -> /etc")
def _(n):
    t = payload(n).symlink("data/sl", "/etc")
    return oci(n, tar=t.hardlink("data/hard", "data/sl/passwd").end())


# --- duplicates -------------------------------------------------------------


@case("duplicate-file", "ERR duplicate", "the same file twice")
def _(n):
    t = payload(n).file("data/dup", b"first\n").file("data/dup", b"second\n")
    return oci(n, tar=t.end())


@case("duplicate-normalized", "ERR duplicate", "data/x and ./data//x")
def _(n):
    t = payload(n).file("data/x", b"first\n").file("./data//x", b"second\n")
    return oci(n, tar=t.end())


@case("duplicate-file-then-dir", "ERR duplicate", "file data/y, then directory data/y/")
def _(n):
    return oci(n, tar=payload(n).file("data/y", b"y\n").dir("data/y/").end())


# --- PAX ----------------------------------------------------------------------


@case("pax-size-huge", "ERR truncated|too large",
      "PAX size=999999999999 on a file with 8 bytes of data")
def _(n):
    t = payload(n).pax([("size", "999999999999")])
    return oci(n, tar=t.file("data/huge", b"8 bytes\n").end())


@case("pax-size-negative", "ERR PAX", "PAX size=-1")
def _(n):
    t = payload(n).pax([("size", "-1")])
    return oci(n, tar=t.file("data/neg", b"x\n").end())


@case("pax-size-nonnumeric", "ERR PAX", "PAX size=12abc")
def _(n):
    t = payload(n).pax([("size", "12abc")])
    return oci(n, tar=t.file("data/nan", b"x\n").end())


@case("pax-uid-huge", "ERR PAX", "PAX uid=99999999999 (above 2^32)")
def _(n):
    t = payload(n).pax([("uid", "99999999999")])
    return oci(n, tar=t.file("data/uid", b"x\n").end())


@case("pax-record-length-overflow", "ERR PAX", "PAX record claims 9999 bytes, has 12")
def _(n):
    t = payload(n).pax(b"9999 path=x\n")
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("pax-record-length-short", "ERR PAX", "PAX record length 3 (shorter than its own key)")
def _(n):
    t = payload(n).pax(b"3 path=data/x\n")
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("pax-record-length-nonnumeric", "ERR PAX", "PAX record length `abc`")
def _(n):
    t = payload(n).pax(b"abc path=x\n")
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("pax-record-length-negative", "ERR PAX", "PAX record length -12")
def _(n):
    t = payload(n).pax(b"-12 path=x\n")
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("pax-record-no-equals", "ERR PAX", "PAX record without `=`")
def _(n):
    t = payload(n).pax(b"11 pathxyz\n")
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("pax-header-size-huge", "ERR too large", "PAX header whose size field says 8 GiB")
def _(n):
    t = payload(n)
    t.header("PaxHeaders/x", b"x", size=0o77777777777)
    return oci(n, tar=t.raw(pax_record("path", "x")).end())


@case("pax-header-chain", "ERR too large",
      "40 PAX headers of 64 KiB each before one member (2.5 MiB of headers for one file)")
def _(n):
    t = payload(n)
    for i in range(40):
        t.pax([("comment", "c" * 65500)])
    return oci(n, tar=t.file("data/f", b"x\n").end(), comp="gzip")


# --- names ------------------------------------------------------------------


@case("name-over-path-max", "ERR PATH_MAX", "PAX path of 5000 bytes")
def _(n):
    t = payload(n).pax([("path", "data/" + "d/" * 2497 + "f")])
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("name-component-over-name-max", "ERR NAME_MAX", "path component of 300 bytes")
def _(n):
    t = payload(n).pax([("path", "data/" + "n" * 300)])
    return oci(n, tar=t.file("data/f", b"x\n").end())


@case("gnu-longname-too-large", "ERR too large", "GNU long-name header whose size says 8 GiB")
def _(n):
    t = payload(n)
    t.header("././@LongLink", b"L", size=0o77777777777)
    return oci(n, tar=t.raw(b"a" * 512).end())


@case("gnu-longname-truncated", "ERR truncated",
      "GNU long-name header of 100000 bytes in an archive that ends after 1024")
def _(n):
    t = payload(n)
    t.header("././@LongLink", b"L", size=100000)
    return oci(n, tar=t.raw(b"a" * 1024).unfinished())


@case("gnu-longname-never-ends", "ERR too large",
      "64 GNU long-name headers of 64 KiB, one after the other, and never a member")
def _(n):
    t = payload(n)
    for i in range(64):
        t.gnu_long(b"L", "data/" + "l" * 65000)
    return oci(n, tar=t.unfinished(), comp="gzip")


@case("name-control-chars", "ERR `..`",
      "member `../<ESC>[31mred<ESC>[0m<LF>Error: forged second line<CR>`: the error must stay one "
      "line with the control characters escaped")
def _(n):
    t = payload(n).file(b"../\x1b[31mred\x1b[0m\nError: forged second line\r", b"x\n")
    return oci(n, tar=t.end())


# --- member types -----------------------------------------------------------


@case("sparse-gnu", "ERR sparse", "GNU sparse member (typeflag S)")
def _(n):
    t = payload(n)
    t.header("data/sparse", b"S", size=512)
    return oci(n, tar=t.data(b"s" * 512).end())


@case("sparse-pax", "ERR sparse", "PAX GNU.sparse.* records (sparse format 1.0)")
def _(n):
    t = payload(n).pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                        ("GNU.sparse.name", "data/sparse"),
                        ("GNU.sparse.realsize", "1048576")])
    return oci(n, tar=t.file("data/GNUSparseFile.0/sparse", b"1\n0\n512\n").end())


@case("unknown-typeflag", "ERR unsupported tar member type", "typeflag `Z`")
def _(n):
    return oci(n, tar=payload(n).header("data/z", b"Z").end())


@case("multivolume-typeflag", "ERR unsupported tar member type", "GNU multi-volume continuation (M)")
def _(n):
    t = payload(n, gnu=True)
    t.header("data/m", b"M", size=512)
    return oci(n, tar=t.data(b"m" * 512).end())


# --- tar headers ------------------------------------------------------------


@case("bad-checksum-first", "ERR not a tar archive", "first header's checksum off by one")
def _(n):
    t = Tar().header("data/", b"5", mode=0o755, bad_checksum=True)
    return oci(n, tar=t.file("data/f", noise(n, 4096)).end())


@case("bad-checksum-later", "ERR corrupt tar header", "fourth header's checksum off by one")
def _(n):
    t = payload(n)
    t.header("data/bad", b"0", size=0, bad_checksum=True)
    return oci(n, tar=t.end())


@case("bad-size-field", "ERR size field", "size field `zzzzzzzzzzz`")
def _(n):
    t = payload(n)
    t.header("data/bad", b"0", size_field=b"zzzzzzzzzzz\0")
    return oci(n, tar=t.end())


@case("bad-mode-field", "ERR mode field", "mode field `9999999` (not octal)")
def _(n):
    t = payload(n)
    t.header("data/bad", b"0", mode_field=b"9999999\0")
    return oci(n, tar=t.end())


# --- truncated tars -----------------------------------------------------------


@case("truncated-mid-header", "ERR truncated", "archive ends 100 bytes into a header")
def _(n):
    t = payload(n).unfinished() + Tar().header("data/next", b"0").unfinished()[:100]
    return oci(n, tar=t)


@case("truncated-mid-file-object", "ERR truncated",
      "archive ends inside a 20000-byte file (stored as an object)")
def _(n):
    t = payload(n)
    t.header("data/big", b"0", size=20000)
    return oci(n, tar=t.raw(noise(n + "big", 12000)).unfinished())


@case("truncated-mid-file-inline", "ERR truncated",
      "archive ends inside a 60-byte file (stored inline)")
def _(n):
    t = payload(n)
    t.header("data/small2", b"0", size=60)
    return oci(n, tar=t.raw(b"s" * 30).unfinished())


@case("truncated-mid-padding", "ERR truncated", "archive ends inside a file's padding")
def _(n):
    t = payload(n)
    t.header("data/pad", b"0", size=700)
    return oci(n, tar=t.raw(b"p" * 700 + b"\0" * 100).unfinished())


# --- compression --------------------------------------------------------------


@case("gzip-truncated", "ERR truncated|corrupt", "gzip layer cut at 60%")
def _(n):
    l = Layer(payload(n).file("data/after", noise(n + "a", 4096)).end(), "gzip")
    l.blob = l.blob[: len(l.blob) * 3 // 5]
    return oci_tree(n, [l])


@case("gzip-bogus-header", "ERR gzip|corrupt|invalid", "gzip magic with compression method 7")
def _(n):
    l = Layer(payload(n).end(), "gzip")
    l.blob = l.blob[:2] + b"\x07" + l.blob[3:]
    return oci_tree(n, [l])


@case("gzip-bad-crc", "ERR checksum|crc|corrupt", "gzip layer whose CRC-32 trailer is wrong")
def _(n):
    l = Layer(payload(n).end(), "gzip")
    b = bytearray(l.blob)
    b[-8] ^= 0xFF
    l.blob = bytes(b)
    return oci_tree(n, [l])


@case("gzip-bad-isize", "ERR length|size|corrupt", "gzip layer whose ISIZE trailer is wrong")
def _(n):
    l = Layer(payload(n).end(), "gzip")
    b = bytearray(l.blob)
    b[-1] ^= 0x01
    l.blob = bytes(b)
    return oci_tree(n, [l])


@case("zstd-truncated", "ERR truncated|corrupt", "zstd layer cut at 60%")
def _(n):
    l = Layer(payload(n).file("data/after", noise(n + "a", 4096)).end(), "zstd")
    l.blob = l.blob[: len(l.blob) * 3 // 5]
    return oci_tree(n, [l])


@case("zstd-bogus", "ERR zstd|corrupt", "zstd magic followed by garbage")
def _(n):
    l = Layer(payload(n).end(), "zstd")
    l.blob = l.blob[:4] + noise(n, 2048)
    return oci_tree(n, [l])


@case("trailing-zeros-bomb", "ERR after the end",
      "1 KiB gzip layer: a valid tar followed by 64 MiB of zeros after the end-of-archive blocks")
def _(n):
    tar = payload(n).end()
    zeros = b"\0" * (1 << 20)
    total = tar + zeros * 64
    blob = gz_stream([tar] + [zeros] * 64)
    l = Layer(total, "gzip", blob=blob)
    return oci_tree(n, [l])


# --- digests and sizes ------------------------------------------------------


@case("layer-digest-mismatch", "ERR digest mismatch", "layer blob does not hash to its digest")
def _(n):
    l = Layer(payload(n).end())
    l.digest = sha256(b"some other layer")
    return oci_tree(n, [l])


@case("config-digest-mismatch", "ERR digest mismatch", "config blob does not hash to its digest")
def _(n):
    return oci(n, tar=payload(n).end(), config_digest=sha256(b"some other config"))


@case("manifest-digest-mismatch", "ERR digest mismatch",
      "manifest blob does not hash to the digest in index.json")
def _(n):
    return oci(n, tar=payload(n).end(), manifest_digest=sha256(b"some other manifest"))


@case("missing-layer-blob", "ERR missing blob", "manifest names a layer blob that is absent")
def _(n):
    l = Layer(payload(n).end())
    l.present = False
    return oci_tree(n, [l])


@case("missing-config-blob", "ERR missing blob", "config blob absent")
def _(n):
    return oci(n, tar=payload(n).end(), config_present=False)


@case("missing-manifest-blob", "ERR missing blob", "manifest blob absent")
def _(n):
    return oci(n, tar=payload(n).end(), manifest_present=False)


@case("layer-size-wrong", "ERR manifest says", "manifest says the layer is one byte longer")
def _(n):
    l = Layer(payload(n).end())
    l.size = len(l.blob) + 1
    return oci_tree(n, [l])


@case("config-size-wrong", "ERR descriptor size", "manifest says the config is one byte longer")
def _(n):
    t = payload(n).end()
    cfg = js(config_for(n, [sha256(t)]))
    return oci(n, tar=t, config_bytes=cfg, config_size=len(cfg) + 1)


@case("manifest-size-wrong", "ERR descriptor size", "index.json says the manifest is one byte shorter")
def _(n):
    t = payload(n).end()
    m = oci_tree(n, [Layer(t)])
    mb = [v for k, v in m.items() if k.startswith("blobs/") and b'"layers"' in v][0]
    return oci(n, tar=t, manifest_size=len(mb) - 1)


@case("layer-size-negative", "ERR not a valid image manifest", "layer descriptor size -1")
def _(n):
    def m(d):
        d["layers"][0]["size"] = -1
        return d
    return oci(n, tar=payload(n).end(), manifest=m)


@case("config-missing-diffids", "ERR 1 diffIDs for 2 layers", "two layers, one diffID")
def _(n):
    l1, l2 = Layer(payload(n).end()), Layer(payload(n + "-2").end())
    return oci_tree(n, [l1, l2], diff_ids=[l1.diff_id])


@case("config-extra-diffids", "ERR 2 diffIDs for 1 layers", "one layer, two diffIDs")
def _(n):
    l = Layer(payload(n).end())
    return oci_tree(n, [l], diff_ids=[l.diff_id, sha256(b"extra")])


@case("config-no-rootfs", "ERR rootfs.diff_ids", "config without rootfs")
def _(n):
    cfg = config_for(n, [])
    del cfg["rootfs"]
    return oci(n, tar=payload(n).end(), config=cfg)


@case("config-diffid-not-string", "ERR not a string", "diff_ids: [42]")
def _(n):
    return oci(n, tar=payload(n).end(), config=config_for(n, [42]))


@case("config-not-json", "ERR not valid JSON", "config blob is not JSON")
def _(n):
    return oci(n, tar=payload(n).end(), config_bytes=b"{\"rootfs\": oops")


@case("diffid-mismatch", "ERR digest mismatch", "valid tar, config names another diffID")
def _(n):
    l = Layer(payload(n).end(), "gzip")
    return oci_tree(n, [l], diff_ids=[sha256(b"another tar")])


@case("diffid-malformed", "ERR malformed digest", "diffID `sha256:zz`")
def _(n):
    return oci(n, tar=payload(n).end(), config=config_for(n, ["sha256:zz"]))


@case("digest-malformed-zz", "ERR malformed digest", "layer digest `sha256:zz`")
def _(n):
    l = Layer(payload(n).end())
    l.digest = "sha256:zz"
    l.present = False
    return oci_tree(n, [l])


@case("digest-md5", "ERR unsupported digest", "layer digest `md5:...`")
def _(n):
    l = Layer(payload(n).end())
    l.digest = "md5:" + hashlib.md5(l.blob).hexdigest()
    l.present = False
    return oci_tree(n, [l])


@case("digest-traversal-layer", "ERR malformed digest",
      "layer digest `sha256:../../../../etc/passwd`")
def _(n):
    l = Layer(payload(n).end())
    l.digest = "sha256:../../../../../../../../etc/passwd"
    l.present = False
    return oci_tree(n, [l])


@case("digest-traversal-manifest", "ERR malformed digest",
      "index.json manifest digest `sha256:../../../../etc/passwd`")
def _(n):
    return oci(n, tar=payload(n).end(),
               manifest_digest="sha256:../../../../../../../../etc/passwd")


# --- media types and document kinds -------------------------------------------


@case("unknown-layer-media-type", "ERR unknown layer media type", "layer media type example.unknown")
def _(n):
    l = Layer(payload(n).end(), media_type="application/vnd.example.unknown.layer")
    return oci_tree(n, [l])


@case("media-type-control-chars", "ERR unknown layer media type",
      "layer media type with a newline and ESC sequences (JSON escapes)")
def _(n):
    l = Layer(payload(n).end(), media_type="application/x\n\x1b[2JError: forged")
    return oci_tree(n, [l])


@case("digest-control-chars", "ERR malformed digest",
      "layer digest `sha256:zz<LF><ESC>[2JError: forged` (JSON escapes)")
def _(n):
    l = Layer(payload(n).end())
    l.digest = "sha256:zz\n\x1b[2JError: forged"
    l.present = False
    return oci_tree(n, [l])


@case("unknown-manifest-media-type", "ERR unknown manifest media type",
      "manifest mediaType application/vnd.example.manifest+json")
def _(n):
    def m(d):
        d["mediaType"] = "application/vnd.example.manifest+json"
        return d
    return oci(n, tar=payload(n).end(), manifest=m)


@case("manifest-schema1", "ERR schemaVersion", "schemaVersion 1")
def _(n):
    def m(d):
        d["schemaVersion"] = 1
        return d
    return oci(n, tar=payload(n).end(), manifest=m)


@case("index-instead-of-manifest", "ERR not supported",
      "index.json points at an image index (nested index)")
def _(n):
    t = payload(n).end()
    inner = oci_tree(n, [Layer(t)])
    idx = js({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})
    return oci(n, tar=t, manifest_bytes=idx, manifest_media_type=MT_INDEX) | {
        k: v for k, v in inner.items() if k.startswith("blobs/")}


@case("index-docker-manifest-list", "ERR not supported", "index.json points at a docker manifest list")
def _(n):
    lst = js({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST, "manifests": []})
    return oci(n, tar=payload(n).end(), manifest_bytes=lst, manifest_media_type=MT_DOCKER_LIST)


@case("index-disguised-as-manifest", "ERR not a valid image manifest",
      "descriptor says manifest, the blob is an image index")
def _(n):
    idx = js({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})
    return oci(n, tar=payload(n).end(), manifest_bytes=idx)


@case("manifest-not-json", "ERR not a valid image manifest", "manifest blob is not JSON")
def _(n):
    return oci(n, tar=payload(n).end(), manifest_bytes=b"this is not a manifest {")


@case("manifest-empty", "ERR not a valid image manifest", "manifest blob of 0 bytes")
def _(n):
    return oci(n, tar=payload(n).end(), manifest_bytes=b"")


@case("manifest-oversized", "ERR too large|larger than",
      "manifest of 9 MiB (valid JSON padded with spaces), descriptor size honest")
def _(n):
    t = payload(n).end()
    m = oci_tree(n, [Layer(t)])
    mb = [v for k, v in m.items() if k.startswith("blobs/") and b'"layers"' in v][0]
    big = mb[:-1] + b" " * (9 << 20) + b"}"
    return oci(n, tar=t, manifest_bytes=big)


@case("index-json-oversized", "ERR larger than",
      "index.json of 9 MiB (valid JSON padded with spaces)")
def _(n):
    tree = oci(n, tar=payload(n).end())
    tree["index.json"] = tree["index.json"][:-1] + b" " * (9 << 20) + b"}"
    return tree


@case("index-json-missing", "ERR no index.json", "layout without index.json")
def _(n):
    return oci(n, tar=payload(n).end(), index_bytes=False)


@case("index-json-not-json", "ERR not valid JSON", "index.json is not JSON")
def _(n):
    return oci(n, tar=payload(n).end(), index_bytes=b"\x00\x01 not json")


@case("index-json-no-manifests", "ERR holds no image", "index.json with an empty manifests list")
def _(n):
    return oci(n, tar=payload(n).end(), index_bytes=js({"schemaVersion": 2, "manifests": []}))


# --- layer blobs that are not layers ----------------------------------------


@case("layer-random-bytes", "ERR not a tar archive", "layer blob is 64 KiB of random bytes")
def _(n):
    b = bytearray(noise(n, 65536))
    b[0] = 0x42  # neither gzip nor zstd magic
    return oci_tree(n, [Layer(bytes(b))])


@case("layer-empty-blob", "ERR empty", "layer blob of 0 bytes")
def _(n):
    return oci_tree(n, [Layer(b"")])


@case("layer-blob-fifo", "ERR not a regular file",
      "the layer blob is a FIFO (an import that opens it blindly hangs)")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("fifo",)
    return tree


@case("layer-blob-dev-zero", "ERR not a regular file",
      "the layer blob is a symlink to /dev/zero (endless zeros)")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("symlink", "/dev/zero")
    return tree


@case("layer-blob-directory", "ERR not a regular file", "the layer blob is a directory")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("dir",)
    return tree


@case("layer-blob-symlink-host-file", "ERR truncated|not a tar|digest mismatch",
      "the layer blob is a symlink to /etc/hostname on the host (followed: layout dirs are "
      "the admin's files; the bytes fail as a tar before their digest is compared)")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("symlink", "/etc/hostname")
    return tree


# --- oci-archive --------------------------------------------------------------


def oci_archive(path, tree):
    with open(path, "wb") as f:
        f.write(tar_of_tree(tree))


@case("ociarchive-truncated", "ERR truncated|corrupt|digest mismatch|missing blob",
      "oci-archive cut in the middle of its layer blob")
def _(n):
    t = payload(n).file("data/more", noise(n + "m", 30000)).end()
    data = tar_of_tree(oci_tree(n, [Layer(t)]))
    # blobs are sorted by digest; cut 20000 bytes into the (largest) layer member
    return data[: data.index(t[:512]) + 20000]


@case("ociarchive-not-a-tar", "ERR not a tar|corrupt|no index.json",
      "oci-archive that is 16 KiB of random bytes")
def _(n):
    return noise(n, 16384)


@case("ociarchive-blob-symlink-absolute", "ERR missing blob",
      "oci-archive whose layer blob member is a symlink to /etc/passwd")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("symlink", "/etc/passwd")
    return tar_of_tree(tree)


@case("ociarchive-blob-symlink-dotdot", "ERR missing blob",
      "oci-archive whose layer blob member is a symlink to ../../../../etc/passwd")
def _(n):
    l = Layer(payload(n).end())
    tree = oci_tree(n, [l])
    tree["blobs/sha256/" + sha256(l.blob).split(":")[1]] = ("symlink", "../../../../etc/passwd")
    return tar_of_tree(tree)


# --- docker-archive -----------------------------------------------------------


@case("docker-no-manifest-json", "ERR no manifest.json", "docker-archive without manifest.json")
def _(n):
    tree = docker_tree(n, [payload(n).end()])
    del tree["manifest.json"]
    return tar_of_tree(tree)


@case("docker-manifest-not-json", "ERR not valid JSON", "manifest.json is not JSON")
def _(n):
    return tar_of_tree(docker_tree(n, [payload(n).end()], manifest=b"[{oops"))


@case("docker-missing-layer", "ERR missing layer", "manifest.json lists a layer the archive lacks")
def _(n):
    return tar_of_tree(docker_tree(n, [payload(n).end(), None],
                                   diff_ids=[sha256(payload(n).end()), sha256(b"gone")]))


@case("docker-more-layers-than-diffids", "ERR 2 layers listed but config has 1",
      "two layers, config with one diffID")
def _(n):
    a, b = payload(n).end(), payload(n + "-2").end()
    return tar_of_tree(docker_tree(n, [a, b], diff_ids=[sha256(a)]))


@case("docker-missing-config", "ERR missing config", "the config member is absent")
def _(n):
    tree = docker_tree(n, [payload(n).end()])
    for k in [k for k in tree if k.endswith(".json") and k != "manifest.json"]:
        del tree[k]
    return tar_of_tree(tree)


@case("docker-diffid-mismatch", "ERR digest mismatch", "layer.tar does not hash to its diffID")
def _(n):
    return tar_of_tree(docker_tree(n, [payload(n).end()], diff_ids=[sha256(b"other")]))


@case("docker-layer-traversal", "ERR missing layer",
      "manifest.json Layers: [\"../../../../etc/passwd\"]")
def _(n):
    t = payload(n).end()
    return tar_of_tree(docker_tree(n, [t], layer_names=["../../../../../../etc/passwd"]))


@case("docker-config-traversal", "ERR missing config", "manifest.json Config: \"/etc/passwd\"")
def _(n):
    t = payload(n).end()
    tree = docker_tree(n, [t])
    items = json.loads(tree["manifest.json"])
    items[0]["Config"] = "/etc/passwd"
    tree["manifest.json"] = js(items)
    return tar_of_tree(tree)


@case("docker-layer-name-control-chars", "ERR missing layer",
      "manifest.json Layers: [\"x<LF><ESC>[2JError: forged\"]")
def _(n):
    t = payload(n).end()
    return tar_of_tree(docker_tree(n, [t], layer_names=["x\n\x1b[2JError: forged"]))


@case("docker-layer-symlink-host", "ERR missing layer",
      "the layer member is a symlink to /etc/passwd")
def _(n):
    t = payload(n).end()
    tree = docker_tree(n, [t])
    tree["%064x/layer.tar" % 1] = ("symlink", "/etc/passwd")
    return tar_of_tree(tree)


# --- positive controls: odd but legal -------------------------------------------


@case("control-basic", "OK", "three layers (tar, gzip, zstd): dirs, files, symlink, hard link")
def _(n):
    t1 = payload(n + "-1").symlink("data/link", "/etc").end()
    t2 = payload(n + "-2").hardlink("data/hard", "data/payload.bin").end()
    t3 = payload(n + "-3").file("data/more.txt", b"more\n").end()
    return oci_tree(n, [Layer(t1), Layer(t2, "gzip"), Layer(t3, "zstd")])


@case("control-non-utf8-names", "OK", "member names that are not UTF-8 (legal: names are bytes)")
def _(n):
    t = payload(n)
    t.file(b"data/caf\xe9.txt", b"latin-1\n")
    t.file(b"data/\xff\xfe\xfd", noise(n, 300))
    t.dir(b"data/dir-\xc3\x28/")
    t.file(b"data/dir-\xc3\x28/inner", b"inner\n")
    t.symlink(b"data/link-\xe9", b"caf\xe9.txt")
    t.pax([(b"path", b"data/pax-\x80\x81-" + b"x" * 120)])
    t.file("data/ignored-name", b"pax path\n")
    return oci_tree(n, [Layer(t.end(), "gzip")])


@case("control-pax-xattrs", "OK",
      "PAX xattrs (user.*, security.capability, binary values), ns mtimes, long path, big uid")
def _(n):
    cap = bytes.fromhex("0100000200200000000000000000000000000000")
    t = payload(n)
    t.pax([("SCHILY.xattr.user.comment", "hello"),
           ("SCHILY.xattr.user.binary", b"\x00\x01\xff\n="),
           ("SCHILY.xattr.security.capability", cap),
           ("mtime", "1700000000.123456789"),
           ("uid", "100000"), ("gid", "100000")])
    t.file("data/xattr.bin", noise(n, 1000))
    t.pax([("path", "data/" + "long-" * 40 + "name"), ("SCHILY.xattr.user.x", "y")])
    t.file("data/short", b"long path\n")
    return oci_tree(n, [Layer(t.end(), "zstd")])


@case("control-gnu-record-padding", "OK",
      "GNU tar format: L/K long names, archive padded to 10 KiB records")
def _(n):
    t = payload(n, gnu=True)
    t.gnu_long(b"L", "data/" + "g" * 150)
    t.file("data/truncated-name", b"gnu long name\n")
    t.gnu_long(b"L", "data/" + "s" * 120)
    t.gnu_long(b"K", "data/" + "g" * 150)
    t.header("data/sym", b"2", mode=0o777)
    return oci_tree(n, [Layer(t.end(record=10240))])


@case("control-empty-layer", "OK",
      "a layer of exactly 1024 zero bytes, a normal layer, and the empty layer again")
def _(n):
    empty = Layer(b"\0" * 1024)
    return oci_tree(n, [empty, Layer(payload(n).end(), "gzip"), empty])


@case("control-odd-but-legal-content", "OK",
      "symlinks to /, ../../.. and /etc/shadow, dangling symlink, hard link to a symlink, "
      "devices, fifo, setuid, whiteouts, opaque dir, 1 MiB of trailing zeros")
def _(n):
    t = payload(n)
    t.symlink("data/to-root", "/").symlink("data/up", "../../../..")
    t.symlink("data/shadow", "/etc/shadow").symlink("data/dangling", "/nonexistent/x")
    t.hardlink("data/hard-to-symlink", "data/shadow")
    t.header("data/null", b"3", mode=0o666, devmajor=1, devminor=3)
    t.header("data/sda", b"4", mode=0o660, devmajor=8, devminor=0)
    t.header("data/fifo", b"6", mode=0o644)
    t.file("data/setuid", b"#!/bin/sh\n", mode=0o4755)
    t.file("data/.wh.removed", b"")
    t.dir("data/opaque/").file("data/opaque/.wh..wh..opq", b"")
    tar = t.end() + b"\0" * (1 << 20)
    return oci_tree(n, [Layer(tar, "gzip")])


@case("control-docker-archive", "OK", "a plain docker-archive (checks the generator)",
      transport="docker-archive")
def _(n):
    return tar_of_tree(docker_tree(n, [payload(n).end(), payload(n + "-2").end()]))


@case("control-oci-archive", "OK", "a plain oci-archive (checks the generator)",
      transport="oci-archive")
def _(n):
    return tar_of_tree(oci_tree(n, [Layer(payload(n).end(), "gzip")]))


# ---------------------------------------------------------------------------


def source(name, transport):
    return transport + ":" + (name if transport == "oci" else name + ".tar")


def markdown():
    """The case table of tests/hostile/README.md."""
    esc = lambda s: s.replace("|", "\\|")
    rows = ["| case | source | expected | what |", "|---|---|---|---|"]
    for name, expect, desc, transport, fn in CASES:
        rows.append("| %s | %s | %s | %s |" % (name, transport, esc(expect), esc(desc)))
    return "\n".join(rows) + "\n"


def main():
    if sys.argv[1:] == ["--markdown"]:
        sys.stdout.write(markdown())
        return
    if len(sys.argv) != 2:
        sys.exit("usage: gen.py OUTDIR | gen.py --markdown")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if os.listdir(out):
        sys.exit("gen.py: %s is not empty" % out)
    lines = []
    names = set()
    for name, expect, desc, transport, fn in CASES:
        assert name not in names, name
        names.add(name)
        assert expect == "OK" or expect.startswith("ERR "), (name, expect)
        assert "\t" not in desc and "\n" not in desc, name
        res = fn(name)
        if isinstance(res, dict):
            assert transport == "oci", name
            write_tree(os.path.join(out, name), res)
        else:
            assert transport != "oci", name
            p = os.path.join(out, name + ".tar")
            with open(p, "wb") as f:
                f.write(res)
            os.utime(p, (MTIME, MTIME))
        lines.append("%s\t%s\t%s\t%s\n" % (name, source(name, transport), expect, desc))
    with open(os.path.join(out, "README"), "w") as f:
        f.write("".join(lines))
    os.utime(os.path.join(out, "README"), (MTIME, MTIME))
    os.utime(out, (MTIME, MTIME))
    bad = sum(1 for l in lines if "\tERR " in l)
    print("%d cases (%d hostile, %d positive controls) in %s" % (len(lines), bad, len(lines) - bad, out))


if __name__ == "__main__":
    main()
