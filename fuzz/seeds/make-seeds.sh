#!/usr/bin/env bash
# Regenerate the fuzz seed corpora in fuzz/seeds/<target>/ from the real test
# fixtures (tests/fixtures/build-fixtures.sh) and a few hand-written inputs.
# The output is committed; rerun only when the fixtures or formats change.
# Needs: the fixtures, jq, python3, zstd, and target/debug/unistore.
set -euo pipefail
cd "$(dirname "$0")"
FX=${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}
UNISTORE=${UNISTORE_BIN:-../../target/debug/unistore}
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
manifest_of() { blob "$1" "$(jq -r '.manifests[0].digest' "$1/index.json")"; }
config_of() { blob "$1" "$(jq -r '.config.digest' "$(manifest_of "$1")")"; }

rm -rf layer_tar manifest_config oci_layout archive layer_index
mkdir -p layer_tar manifest_config oci_layout archive layer_index

# layer_tar: the small real layers (whiteouts, opaque dirs, hard links,
# symlinks, xattrs, devices, long and UTF-8 names), plus GNU/PAX extensions.
for d in app.oci derived.oci; do
  jq -r '.layers[] | select(.size < 32768) | .digest' "$(manifest_of "$FX/$d")" |
    while read -r l; do cp "$(blob "$FX/$d" "$l")" "layer_tar/${d%.oci}-${l:7:12}.tar"; done
done
python3 - <<'PY'
import io, tarfile
def write(name, fmt, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    open("layer_tar/" + name, "wb").write(buf.getvalue())
def m(name, typ=tarfile.REGTYPE, data=None, **kw):
    ti = tarfile.TarInfo(name); ti.type = typ
    if data is not None: ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    return (ti, data)
long = "d/" + "n" * 150 + "/" + "f" * 120
write("gnu-longnames.tar", tarfile.GNU_FORMAT, [
    m("d/", tarfile.DIRTYPE, mode=0o755), m(long, data=b"x" * 100, uid=3000000),
    m("d/l", tarfile.SYMTYPE, linkname="/" + "t" * 200), m("d/h", tarfile.LNKTYPE, linkname=long),
    m("d/.wh..wh..opq"), m("d/.wh.gone"), m("d/dev", tarfile.CHRTYPE, devmajor=1, devminor=3)])
pax = m("p/file", data=b"hello\n" * 20, mtime=1700000000.25)
pax[0].pax_headers = {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability": "\x01\x00",
                      "path": "p/renamed-by-pax", "uid": "70000"}
write("pax-xattrs.tar", tarfile.PAX_FORMAT, [m("p/", tarfile.DIRTYPE), pax,
    m("p/fifo", tarfile.FIFOTYPE), m("p/small", data=b"tiny")])
PY

# manifest_config: MANIFEST \0 CONFIG; oci_layout: INDEX \0 MANIFEST \0 CONFIG \0 REF
# with @MD@/@MS@/@CD@/@CS@ standing for the digests and sizes.
for d in base.oci app.oci derived.oci; do
  n=${d%.oci}; m=$(manifest_of "$FX/$d"); c=$(config_of "$FX/$d")
  { cat "$m"; printf '\0'; cat "$c"; } > "manifest_config/$n"
  jq -c '.manifests[0].digest = "@MD@"' "$FX/$d/index.json" | sed 's/"size":[0-9]*/"size":@MS@/' |
    tr -d '\n' > "oci_layout/$n"
  printf '\0' >> "oci_layout/$n"
  jq -c '.config.digest = "@CD@"' "$m" | sed 's/\("digest":"@CD@","size":\)[0-9]*/\1@CS@/; s/"size":\([0-9]*\),"digest":"@CD@"/"size":@CS@,"digest":"@CD@"/' |
    tr -d '\n' >> "oci_layout/$n"
  { printf '\0'; cat "$c"; printf '\0'; } >> "oci_layout/$n"
  { cat "oci_layout/$n"; printf 'latest'; } > "oci_layout/$n-ref"
done

# archive: tiny docker-archive and oci-archive images (one small real layer).
python3 - "$(blob "$FX/app.oci" "$(jq -r '.layers[1].digest' "$(manifest_of "$FX/app.oci")")")" <<'PY'
import gzip, hashlib, io, json, sys, tarfile
layer = open(sys.argv[1], "rb").read()
sha = lambda b: hashlib.sha256(b).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]}}).encode()
def archive(name, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for n, data in files:
            ti = tarfile.TarInfo(n); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    open("archive/" + name, "wb").write(buf.getvalue())
archive("docker", [(sha(layer) + ".tar", layer), (sha(cfg) + ".json", cfg),
    ("manifest.json", json.dumps([{"Config": sha(cfg) + ".json", "RepoTags": ["localhost/fuzz:1"],
                                   "Layers": [sha(layer) + ".tar"]}]).encode())])
for comp, blob, mt in [("", layer, "application/vnd.oci.image.layer.v1.tar"),
                       ("-gzip", gzip.compress(layer, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")]:
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": mt, "digest": "sha256:" + sha(blob), "size": len(blob)}]}).encode()
    idx = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + sha(man), "size": len(man),
        "annotations": {"org.opencontainers.image.ref.name": "localhost/fuzz:1"}}]}).encode()
    archive("oci" + comp, [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx),
        ("blobs/sha256/" + sha(man), man), ("blobs/sha256/" + sha(cfg), cfg), ("blobs/sha256/" + sha(blob), blob)])
PY

# layer_index: the index objects of the small layers, as stored (mode 0) and
# as raw bincode (mode 1).
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
"$UNISTORE" --store "$store" init >/dev/null
for d in app.oci derived.oci; do "$UNISTORE" --store "$store" import -q "oci:$FX/$d" >/dev/null; done
for d in app.oci derived.oci; do
  img=$(jq -r '.config.digest' "$(manifest_of "$FX/$d")"); img=${img#sha256:}
  "$UNISTORE" --store "$store" inspect --json "$img" | jq -r '.Layers[].IndexObject'
done | sort -u | while read -r o; do
  f="$store/repo/objects/${o:0:2}/${o:2}"
  [ "$(stat -c %s "$f")" -lt 16384 ] || continue
  { printf '\0'; cat "$f"; } > "layer_index/stored-${o:0:12}"
  { printf '\1'; zstd -dc "$f"; } > "layer_index/raw-${o:0:12}"
done
ls -l layer_tar manifest_config oci_layout archive layer_index
