#!/usr/bin/env bash
# Start Debian's docker-registry (the CNCF distribution registry) on a loopback
# port, in the background, and print its PID once /v2/ answers.
#
#   start-registry.sh STORAGE_DIR PORT [--htpasswd FILE] [--readonly] [--log FILE]
#
# STORAGE_DIR  filesystem storage root (created if missing)
# PORT         TCP port on 127.0.0.1 (plain HTTP)
# --htpasswd   require basic auth against this bcrypt htpasswd file (htpasswd -B)
# --readonly   maintenance read-only mode: pulls only (for a shared, cached storage dir)
# --log FILE   registry log (default /dev/null)
#
# Stop it with `kill PID`. Nothing but 127.0.0.1 is ever listened on.
set -euo pipefail
die() { printf 'start-registry: %s\n' "$*" >&2; exit 1; }
(($# >= 2)) || die "usage: start-registry.sh STORAGE_DIR PORT [--htpasswd FILE] [--readonly] [--log FILE]"
DIR=$(realpath -m "$1")
PORT=$2
shift 2
HTPASSWD='' READONLY=false LOG=/dev/null
while (($#)); do
  case $1 in
    --htpasswd) HTPASSWD=$(realpath "$2"); shift 2 ;;
    --readonly) READONLY=true; shift ;;
    --log) LOG=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $PORT =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"
command -v docker-registry >/dev/null || die "docker-registry is not installed (apt-get install docker-registry)"
mkdir -p "$DIR"

CONF=$(mktemp /tmp/unistore-registry-XXXXXX.yml)
{
  cat <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $DIR
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: $READONLY
http:
  addr: 127.0.0.1:$PORT
EOF
  if [[ -n $HTPASSWD ]]; then
    cat <<EOF
auth:
  htpasswd:
    realm: unistore-test
    path: $HTPASSWD
EOF
  fi
} >"$CONF"

docker-registry serve "$CONF" >"$LOG" 2>&1 </dev/null &
PID=$!
# /v2/ answers 200 (open) or 401 (auth) once the registry is up.
for _ in $(seq 1 200); do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$CONF"
    die "docker-registry exited during start-up (log: $LOG)"
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /v2/ HTTP/1.0\r\n\r\n' >&3 &&
    read -r line <&3 && [[ $line == *" 200 "* || $line == *" 401 "* ]]) 2>/dev/null; then
    rm -f "$CONF"
    echo "$PID"
    exit 0
  fi
  sleep 0.05
done
kill "$PID" 2>/dev/null || true
rm -f "$CONF"
die "docker-registry on 127.0.0.1:$PORT did not answer /v2/ within 10 s"
