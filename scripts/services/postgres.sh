#!/usr/bin/env bash
# A throw-away PostgreSQL server for the test suite, from Debian's packages.
#   postgres.sh start   installs PostgreSQL if missing, starts a fresh server on a free
#                       loopback port and prints its connection URL on stdout
#   postgres.sh stop    stops the server that `start` started and deletes its data
# The data directory lives under /tmp, outside the repository, because the server runs as the
# unprivileged `postgres` user (PostgreSQL refuses to run as root), which may not be able to
# enter the clone's directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
record="$root/.test-services/postgres.dir"

log() { echo "postgres: $*" >&2; }
# shellcheck source=common.sh
source "$root/scripts/services/common.sh"

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

ensure_installed() {
  if find_bin > /dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL is not installed. Install Debian's 'postgresql' package (as root), then retry."
    exit 1
  fi
  log "installing PostgreSQL from Debian's packages"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  find_bin > /dev/null || { log "the postgresql package installed no server binaries"; exit 1; }
}

# Runs a command as the user that owns the server: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  ensure_installed
  local bin dir port
  bin="$(find_bin)"
  dir="$(mktemp -d /tmp/medlake-postgres.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  mkdir -p "$(dirname "$record")"
  echo "$dir" > "$record"
  port="$(free_port 55432 55532)"

  as_owner "$bin/initdb" -D "$dir/data" -U medlake --auth=trust -E UTF8 --no-locale > "$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" start > /dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
  log "started $("$bin/postgres" --version) on 127.0.0.1:$port"
  echo "postgres://medlake@127.0.0.1:$port/postgres"
}

stop() {
  [ -f "$record" ] || return 0
  local dir bin
  dir="$(cat "$record")"
  bin="$(find_bin)"
  if [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop > /dev/null 2>&1 || true
    log "stopped"
  fi
  rm -rf "$dir" "$record"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
