#!/usr/bin/env bash
# Build the registry fixtures for the `unistore pull` tests and benchmark,
# offline and idempotently (cached; a stamp covers this script, the registry
# starter and the image fixtures' stamp).
#
# Output: $UNISTORE_REGISTRY_FIXTURES (default /var/tmp/unistore-registry)/<version>/,
# printed last on stdout as REGISTRY_FIXTURES_DIR=<dir>:
#   open/        docker-registry filesystem storage, no auth:
#                  fixture/{base,derived,app}:gzip          gzip layers (OCI)
#                  fixture/{base,derived,app}:zstd-chunked  zstd:chunked layers (OCI); the
#                                                           base layer of derived and app is
#                                                           the gzip blob (see mix_base_gzip)
#                  fixture/app:v2s2                         Docker schema 2, gzip
#                  fixture/update:1, fixture/update:2       zstd:chunked over the gzip base layer
#                  fixture/update:1-gzip, fixture/update:2-gzip
#                  fixture/multi:1                          OCI index: app for linux/amd64,
#                                                           base for linux/arm64
#   auth/        storage of a registry with basic auth (htpasswd): private/app:1 (gzip)
#   htpasswd     bcrypt htpasswd with $REG_USER:$REG_PASS
#   update1.oci/ update2.oci/  the update images as uncompressed OCI layouts
#   registry.env variables (source it): paths, credentials, image IDs, manifest digests
#
# The update images: base:1 plus ONE layer /srv/update with big.bin and the 2000
# small files of derived:1's layer 5, an 8 MiB random large.bin and version.txt.
# update:2 differs from update:1 in three files: large.bin (new random bytes),
# many/d3/f0300.txt and version.txt — a zstd:chunked pull of update:2 into a
# store holding update:1 needs only those three files' chunks.
#
# Needs root, podman, skopeo, docker-registry, htpasswd, jq, python3.
set -euo pipefail

T0=$(date +%s)
log() { printf '[registry-fixtures +%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf '[registry-fixtures] ERROR: %s\n' "$*" >&2; exit 1; }

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
ROOT=$(readlink -f "$HERE/../..")
BASE=$(realpath -m "${UNISTORE_REGISTRY_FIXTURES:-/var/tmp/unistore-registry}")
case "$BASE" in
  / | /root | /home | /tmp | /var | /var/tmp | /usr | /etc) die "refusing to use '$BASE'" ;;
esac
REG_USER=unistore
REG_PASS=s3cret-pass

[[ $(id -u) == 0 ]] || die "must run as root"
for t in podman skopeo docker-registry htpasswd jq python3 flock unshare; do
  command -v "$t" >/dev/null || die "required tool '$t' is not installed (scripts/deps.sh installs it)"
done

# The image fixtures first (cached by their own stamp).
"$ROOT/tests/fixtures/build-fixtures.sh" >&2
FIX=$(realpath -m "${UNISTORE_FIXTURES:-/var/tmp/unistore-fixtures}")
# shellcheck disable=SC1091
. "$FIX/fixtures.env"

# One directory per version of this script (and of the image fixtures):
# checkouts at different commits (concurrent sessions) never rebuild each
# other's fixtures under a running test. Versions unused for 2 days are removed.
STAMP_WANT="$(cat "$HERE/build-registry-fixtures.sh" "$HERE/start-registry.sh" "$FIX/stamp" | sha256sum | cut -d' ' -f1)"
OUT=$BASE/${STAMP_WANT:0:16}
mkdir -p "$BASE"
exec 9>"$BASE/.lock"
flock 9
done_msg() {
  touch "$OUT/stamp" # last use, for the clean-up of old versions
  echo "REGISTRY_FIXTURES_DIR=$OUT"
}
if [[ ${UNISTORE_FIXTURES_FORCE:-0} != 1 && -f $OUT/stamp && "$(cat "$OUT/stamp")" == "$STAMP_WANT" &&
  -f $OUT/registry.env && -d $OUT/open/docker && -d $OUT/auth/docker ]]; then
  echo "registry fixtures up to date ($OUT)" >&2
  done_msg
  exit 0
fi
for old in "$BASE"/*/; do
  old=${old%/}
  [[ $old != "$OUT" && -f $old/.unistore-registry-fixtures && -n $(find "$old/stamp" -mtime +2 2>/dev/null) ]] || continue
  log "removing $old (unused for 2 days)"
  rm -rf "$old"
done

REG_PID=
PODMAN_DIR=
PODMAN_RUN=
unmount_below() {
  local mp
  [[ -n $1 ]] || return 0
  awk -v p="$1" '{ if ($2 == p || index($2, p "/") == 1) print $2 }' /proc/mounts | sort -r |
    while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
}
cleanup() {
  if [[ -n $REG_PID ]]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  unmount_below "$PODMAN_DIR"
  if [[ -n $PODMAN_RUN ]]; then unmount_below "$PODMAN_RUN"; rm -rf "$PODMAN_RUN"; fi
}
trap cleanup EXIT

if [[ -e $OUT ]]; then
  [[ -f $OUT/.unistore-registry-fixtures || -z "$(ls -A "$OUT")" ]] ||
    die "$OUT exists and was not created by this script; refusing to delete it"
  log "removing stale $OUT"
  unmount_below "$OUT"
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
touch "$OUT/.unistore-registry-fixtures"
WORK=$OUT/work
mkdir -p "$WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------- update images
PODMAN_DIR=$WORK/podman
PODMAN_RUN=$(mktemp -d /tmp/ureg-run-XXXXXX) # runroot must be short (< 50 chars)
mkdir -p "$PODMAN_DIR/tmp"
cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_RUN"
EOF
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
export CONTAINERS_CONF=$FIXTURE_CONTAINERS_CONF
pm() {
  podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_RUN" --storage-driver overlay \
    --tmpdir "$PODMAN_DIR/tmp" --runtime runc --cgroup-manager cgroupfs --events-backend none "$@"
}
PCS="containers-storage:[overlay@$PODMAN_DIR/root+$PODMAN_RUN]"

log "loading base:1 into an isolated podman store"
skopeo copy --quiet "oci:$FIXTURE_BASE_OCI_DIR:latest" "${PCS}localhost/unistore-fixture/base:1"

log "preparing the update contexts"
layer5=$(jq -r '.layers[4].digest' "$FIXTURE_DERIVED_OCI_DIR/blobs/sha256/$(jq -r '.manifests[0].digest' "$FIXTURE_DERIVED_OCI_DIR/index.json" | cut -d: -f2)")
CTX=$WORK/ctx
mkdir -p "$CTX/x" "$CTX/v1/srv/update"
tar -C "$CTX/x" -xf "$FIXTURE_DERIVED_OCI_DIR/blobs/sha256/${layer5#sha256:}" srv/fixture/big.bin srv/fixture/many
mv "$CTX/x/srv/fixture/big.bin" "$CTX/x/srv/fixture/many" "$CTX/v1/srv/update/"
rm -rf "$CTX/x"
head -c $((8 << 20)) /dev/urandom >"$CTX/v1/srv/update/large.bin"
echo "update version 1" >"$CTX/v1/srv/update/version.txt"
cp -a "$CTX/v1" "$CTX/v2"
head -c $((8 << 20)) /dev/urandom >"$CTX/v2/srv/update/large.bin"
echo "update version 2" >"$CTX/v2/srv/update/version.txt"
printf 'small file 0300, changed in update version 2\n' >"$CTX/v2/srv/update/many/d3/f0300.txt"
for v in 1 2; do
  printf 'FROM localhost/unistore-fixture/base:1\nLABEL io.unistore.fixture="update-%s"\nCOPY v%s/ /\nCMD ["/bin/sh"]\n' "$v" "$v" >"$CTX/Containerfile.$v"
  log "building localhost/unistore-fixture/update:$v"
  pm build -q --pull=never --layers --format oci -f "$CTX/Containerfile.$v" \
    -t "localhost/unistore-fixture/update:$v" "$CTX" >"$WORK/build-$v.log" 2>&1 ||
    { tail -30 "$WORK/build-$v.log" >&2; die "podman build update:$v failed"; }
  skopeo copy --quiet --dest-oci-accept-uncompressed-layers \
    "${PCS}localhost/unistore-fixture/update:$v" "oci:$OUT/update$v.oci:latest"
done
UPDATE1_ID=$(pm image inspect --format '{{.Id}}' localhost/unistore-fixture/update:1)
UPDATE2_ID=$(pm image inspect --format '{{.Id}}' localhost/unistore-fixture/update:2)
unmount_below "$PODMAN_DIR"
unmount_below "$PODMAN_RUN"
rm -rf "$PODMAN_DIR" "$PODMAN_RUN"
PODMAN_DIR='' PODMAN_RUN=''

# ---------------------------------------------------------- the multi-arch index
# An OCI layout whose index.json points at an image index: app for linux/amd64,
# base for linux/arm64 (the configs say amd64 for both; only the index matters).
log "creating the multi-platform index"
MULTI=$WORK/multi.oci
mkdir -p "$MULTI/blobs/sha256"
for d in "$FIXTURE_APP_OCI_DIR" "$FIXTURE_BASE_OCI_DIR"; do
  cp -n "$d"/blobs/sha256/* "$MULTI/blobs/sha256/"
done
mdesc() { # oci-dir os arch -> descriptor with platform
  local dg size
  dg=$(jq -r '.manifests[0].digest' "$1/index.json")
  size=$(stat -c %s "$1/blobs/sha256/${dg#sha256:}")
  jq -cn --arg d "$dg" --argjson s "$size" --arg os "$2" --arg arch "$3" \
    '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s, platform: {os: $os, architecture: $arch}}'
}
jq -cn --argjson a "$(mdesc "$FIXTURE_APP_OCI_DIR" linux amd64)" --argjson b "$(mdesc "$FIXTURE_BASE_OCI_DIR" linux arm64)" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [$a, $b]}' >"$WORK/index-blob.json"
IDX=$(sha256sum "$WORK/index-blob.json" | cut -d' ' -f1)
cp "$WORK/index-blob.json" "$MULTI/blobs/sha256/$IDX"
jq -cn --arg d "sha256:$IDX" --argjson s "$(stat -c %s "$WORK/index-blob.json")" \
  '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$MULTI/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$MULTI/oci-layout"

# ------------------------------------------------------------------ pushes
ENV=$WORK/registry.env
{
  echo "# generated by tests/registry/build-registry-fixtures.sh; source this file"
  printf 'REG_DIR=%q\n' "$OUT"
  printf 'REG_OPEN_DIR=%q\n' "$OUT/open"
  printf 'REG_AUTH_DIR=%q\n' "$OUT/auth"
  printf 'REG_HTPASSWD=%q\n' "$OUT/htpasswd"
  printf 'REG_USER=%q\n' "$REG_USER"
  printf 'REG_PASS=%q\n' "$REG_PASS"
  printf 'REG_UPDATE1_ID=%q\n' "$UPDATE1_ID"
  printf 'REG_UPDATE2_ID=%q\n' "$UPDATE2_ID"
  printf 'REG_UPDATE1_OCI_DIR=%q\n' "$OUT/update1.oci"
  printf 'REG_UPDATE2_OCI_DIR=%q\n' "$OUT/update2.oci"
} >"$ENV"

push() { # src dest-ref format(gzip|zstd:chunked|v2s2) [extra skopeo args]
  local src=$1 ref=$2 fmt=$3
  shift 3
  local -a args=(--quiet --dest-tls-verify=false)
  case $fmt in
    gzip) args+=(--dest-compress-format gzip) ;;
    zstd:chunked) args+=(--dest-compress-format zstd:chunked) ;;
    v2s2) args+=(--format v2s2 --dest-compress-format gzip) ;;
    all) args+=(--all) ;;
  esac
  log "pushing $ref ($fmt)"
  # A private, empty blob-info cache per push (tmpfs in a mount namespace):
  # with the host's cache, c/image reuses a gzip blob it pushed before for a
  # zstd:chunked push of the same layer (and vice versa).
  mkdir -p /var/lib/containers/cache
  unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /var/lib/containers/cache && exec "$@"' sh \
    skopeo copy "${args[@]}" --digestfile "$WORK/digest" "$@" "$src" "docker://127.0.0.1:$PORT/$ref"
  local var
  var=REG_DIGEST_$(tr -c 'A-Za-z0-9\n' '_' <<<"${ref/:/__}" | tr 'a-z' 'A-Z')
  printf '%s=%s\n' "$var" "$(cat "$WORK/digest")" >>"$ENV"
}

PORT=$(free_port)
REG_PID=$("$HERE/start-registry.sh" "$OUT/open" "$PORT" --log "$WORK/open.log")
for s in base derived app; do
  d=FIXTURE_${s^^}_OCI_DIR
  push "oci:${!d}:latest" "fixture/$s:gzip" gzip
  push "oci:${!d}:latest" "fixture/$s:zstd-chunked" zstd:chunked
done
push "oci:$FIXTURE_APP_OCI_DIR:latest" fixture/app:v2s2 v2s2
for v in 1 2; do
  push "oci:$OUT/update$v.oci:latest" "fixture/update:$v" zstd:chunked
  push "oci:$OUT/update$v.oci:latest" "fixture/update:$v-gzip" gzip
done
push "oci:$MULTI:latest" fixture/multi:1 all

# skopeo 1.9.3's zstd:chunked writer drops the tar's trailing record padding:
# base:1's layer (GNU tar, padded to 10 KiB records) decompresses to 1024
# bytes less than its diffID says (fixture/base:zstd-chunked keeps that blob,
# as a known-lossy case). Layers podman built (Go's tar writer) are exact. For
# derived, app and update the zstd:chunked manifests get the base layer's gzip
# blob instead, as podman itself writes a zstd:chunked image whose base layer
# it reused from a gzip image.
mix_base_gzip() { # repo zstd-tag gzip-tag
  local digest var
  digest=$(python3 - "$PORT" "$1" "$2" "$3" <<'PY'
import hashlib, json, sys, urllib.request
port, repo, ztag, gtag = sys.argv[1:]
url = f"http://127.0.0.1:{port}/v2/{repo}/manifests/"
def get(tag):
    req = urllib.request.Request(url + tag, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    return json.loads(urllib.request.urlopen(req).read())
z, g = get(ztag), get(gtag)
assert z["config"] == g["config"], "different images"
z["layers"][0] = g["layers"][0]
body = json.dumps(z, indent=2).encode()
req = urllib.request.Request(url + ztag, data=body, method="PUT", headers={"Content-Type": z["mediaType"]})
urllib.request.urlopen(req).read()
print("sha256:" + hashlib.sha256(body).hexdigest())
PY
  )
  var=REG_DIGEST_$(tr -c 'A-Za-z0-9\n' '_' <<<"${1}__${2}" | tr 'a-z' 'A-Z')
  sed -i "/^$var=/d" "$ENV"
  printf '%s=%s\n' "$var" "$digest" >>"$ENV"
  log "$1:$2: base layer gzip, the rest zstd:chunked ($digest)"
}
mix_base_gzip fixture/derived zstd-chunked gzip
mix_base_gzip fixture/app zstd-chunked gzip
mix_base_gzip fixture/update 1 1-gzip
mix_base_gzip fixture/update 2 2-gzip
kill "$REG_PID"
wait "$REG_PID" 2>/dev/null || true
REG_PID=

log "auth registry"
htpasswd -Bbc "$OUT/htpasswd" "$REG_USER" "$REG_PASS" 2>/dev/null
PORT=$(free_port)
REG_PID=$("$HERE/start-registry.sh" "$OUT/auth" "$PORT" --htpasswd "$OUT/htpasswd" --log "$WORK/auth.log")
push "oci:$FIXTURE_APP_OCI_DIR:latest" private/app:1 gzip --dest-creds "$REG_USER:$REG_PASS"
kill "$REG_PID"
wait "$REG_PID" 2>/dev/null || true
REG_PID=

mv "$ENV" "$OUT/registry.env"
rm -rf "$WORK"
echo "$STAMP_WANT" >"$OUT/stamp"
log "done: $OUT ($(du -sh "$OUT" | cut -f1))"
done_msg
