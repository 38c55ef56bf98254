#!/usr/bin/env bash
# Regenerates the default models models/food.json and models/tourism.json and
# their model cards (models/*.md) from a seeded simulated history.
# Deterministic: the same seed gives the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-2026}"
BUSINESSES="${BUSINESSES:-1500}"
DAYS="${DAYS:-365}"
VERSION="${VERSION:-2026.12.8}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
bin=target/release/reviewguard
"$bin" simulate --seed "$SEED" --businesses "$BUSINESSES" --days "$DAYS" \
  --reviews "$work/reviews.jsonl" --inspections "$work/inspections.csv"
for domain in food tourism; do
  "$bin" train --reviews "$work/reviews.jsonl" --inspections "$work/inspections.csv" \
    --domain "$domain" --out "models/$domain.json" --version "$VERSION" --seed "$SEED" --history --features invariant --prior none
done
# The defaults are compiled into the binary: rebuild so it serves the new ones.
cargo build --release --quiet
echo "models/food.json and models/tourism.json regenerated (seed $SEED)"
