#!/usr/bin/env bash
# A throwaway PostgreSQL server for the Postgres half of the store suite.
#
# Prints one line, the URL to test against:
#   STAFFER_TEST_POSTGRES_URL=postgresql://staffer@127.0.0.1:PORT/staffer_test
# so `export $(bash scripts/postgres-test-server.sh)` sets it. Idempotent: a server
# this script started earlier (state under $STAFFER_PG_DIR, default /tmp/staffer-pg)
# is reused while it runs. Nothing stops it: CI machines are thrown away, and
# locally it keeps running for the next `make test` (stop it with
#   pg_ctl -D /tmp/staffer-pg/data stop   # as the owner of that directory).
# Installs Debian's `postgresql` when it is missing and we are root with apt-get.
# Progress goes to stderr; stdout carries only the URL.
set -euo pipefail

dir=${STAFFER_PG_DIR:-/tmp/staffer-pg}
data=$dir/data
db=staffer_test
role=staffer

log() { echo "postgres-test-server: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  return 1
}

if ! bindir=$(find_bindir); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(find_bindir)
  else
    log "PostgreSQL is not installed (Debian: sudo apt-get install postgresql);" \
        "the Postgres store tests are skipped without it outside CI"
    exit 1
  fi
fi

# The server refuses to run as root: run it as `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
    su "$user" -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

running() {
  [ -f "$dir/port" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

if ! running; then
  mkdir -p "$dir"
  chmod 0755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a cluster in $data"
    rm -rf "$data"
    as_owner "$bindir/initdb" -D "$data" -U "$role" -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >/dev/null
  fi
  # A free loopback port, chosen by the kernel.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Durability is irrelevant for a test server; speed is not.
  opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir"
  opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  opts="$opts -c max_connections=200"
  as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
  echo "$port" >"$dir/port"
  log "started on 127.0.0.1:$port (log: $dir/server.log)"
fi

port=$(cat "$dir/port")
if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$role" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$role" "$db"
fi
echo "STAFFER_TEST_POSTGRES_URL=postgresql://$role@127.0.0.1:$port/$db"
