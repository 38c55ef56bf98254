#!/usr/bin/env bash
# Runs every check and test of reviewguard. Installs what the tests need when
# it is missing: the Tansu broker (a Kafka-protocol broker the integration
# tests start on loopback), and Debian's prometheus and docker-compose for the
# operations tests. Usage: scripts/test.sh
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
# OpenSSL headers for the build.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# librdkafka is built with OpenSSL (Kafka TLS and SCRAM): headers and pkg-config.
{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; } || missing+=(libssl-dev pkg-config)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
