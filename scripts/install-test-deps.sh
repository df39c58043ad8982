#!/usr/bin/env bash
# System packages the test suite needs: Debian's Chromium for the web UI tests and
# PostgreSQL for the Postgres store tests (scripts/postgres-test-server.sh runs it).
# Installs them when running as root with apt-get; otherwise says what to install.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null ||
  missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing test dependencies: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: the web UI and PostgreSQL store tests need ${missing[*]}" \
       "(Debian: sudo apt-get install ${missing[*]}); they are skipped without it outside CI" >&2
fi
