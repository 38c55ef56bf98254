#!/usr/bin/env bash
# Runs every check and test of reviewguard. Installs what the tests need when
# it is missing: the Tansu broker (a Kafka-protocol broker the integration
# tests start on loopback), Debian's prometheus and docker-compose for the
# operations tests, fonts-dejavu-core for the text of the report plots
# (train/evaluate --report), chromium and chromium-driver for the desk's
# browser test, and postgresql for the desk's PostgreSQL store, which this
# script starts on a free loopback port in a temporary folder and stops when
# the tests end. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tansu >/dev/null 2>&1; then
  echo "== installing tansu $TANSU_VERSION (once; about 7 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
fi
echo "== tansu: $(command -v tansu)"

# promtool, a Prometheus server and docker-compose for the operations tests,
# OpenSSL headers for the build, a font for the report plots.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# librdkafka is built with OpenSSL (Kafka TLS and SCRAM): headers and pkg-config.
{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; } || missing+=(libssl-dev pkg-config)
# The report plots' font (read at run time; no font file is in the repository).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# The desk's browser test (WebDriver) and its PostgreSQL store.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
fi

# A throwaway PostgreSQL server for the desk's store tests. As root, the
# server runs as the postgres user (it refuses to run as root).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/reviewguard-pg.XXXXXX")
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir"
printf '%s\n' "$pg_password" > "$pg_dir/pw"
[ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir/pw"
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U reviewguard --pwfile="$pg_dir/pw" \
  --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log"
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
stop_pg() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
export REVIEWGUARD_TEST_POSTGRES_URL="postgres://reviewguard:$pg_password@127.0.0.1:$pg_port/postgres"
echo "== postgresql $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
