#!/usr/bin/env bash
# Compares two builds of the service on the stream bench in alternating runs:
# on a shared VM the machine's speed drifts within minutes, so runs far apart
# do not compare. Each pair runs the same bench binary (and so the same bare
# consumer) once with OLD, then once with NEW, and prints the rows of each.
#
#   scripts/ab-stream.sh OLD_BINARY NEW_BINARY [PAIRS]   (default 3 pairs)
#
# Build OLD first, e.g. `git stash; cargo build --release; cp
# target/release/reviewguard /tmp/rg-old; git stash pop`. The bench starts
# target/release/reviewguard, so each binary is copied there in turn; the
# working tree's own build is put back at the end, whatever happens.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/ab-stream.sh OLD_BINARY NEW_BINARY [PAIRS]" >&2
  exit 2
fi
pairs=${3:-3}
# Copies first: either may be target/release/reviewguard itself.
work=$(mktemp -d)
trap 'if [ -f "$work/keep" ]; then cp "$work/keep" target/release/reviewguard; fi; rm -rf "$work"' EXIT
cp "$1" "$work/old"
cp "$2" "$work/new"
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --quiet
cargo bench --bench stream --no-run --quiet
bench=$(ls -t target/release/deps/stream-* | grep -v '\.d$' | head -n 1)
cp target/release/reviewguard "$work/keep"

for i in $(seq 1 "$pairs"); do
  for side in old new; do
    cp "$work/$side" target/release/reviewguard
    echo "== pair $i, $side, $(date +%T)"
    "$bench" --bench | grep -E '^\| (bare|reviewguard)|^CPU|^\| [0-9]'
  done
done
