#!/usr/bin/env bash
# Compares two builds of the service on the stream bench in alternating runs:
# on a shared VM the machine's speed drifts within minutes, so runs far apart
# do not compare. The bench produces the stream once to one Tansu broker,
# then OLD and NEW drain it in turns, each run with a group and a changelog
# of its own, and it prints each run's rate and CPU per review, and the
# medians (`STREAM_AB` in benches/stream.rs).
#
#   scripts/ab-stream.sh OLD_BINARY NEW_BINARY [PAIRS]   (default 6 pairs)
#
# Build OLD first, e.g. `git stash; cargo build --release; cp
# target/release/reviewguard /tmp/rg-old; git stash pop`. For a figure that
# does not drift at all, count instructions: scripts/callgrind-run.sh.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/ab-stream.sh OLD_BINARY NEW_BINARY [PAIRS]" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
STREAM_AB="$old,$new" STREAM_PAIRS="${3:-6}" cargo bench --bench stream
