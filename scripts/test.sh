#!/usr/bin/env bash
# Runs every check and test of reviewguard. Installs what the tests need when
# it is missing: the Tansu broker (a Kafka-protocol broker the integration
# tests start on loopback). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tansu >/dev/null 2>&1; then
  echo "== installing tansu $TANSU_VERSION (once; about 7 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
fi
echo "== tansu: $(command -v tansu)"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
