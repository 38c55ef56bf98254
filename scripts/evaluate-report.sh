#!/usr/bin/env bash
# The headline evaluation (docs/evaluation.md): a simulated year of BUSINESSES
# businesses per domain, a model fitted on the earlier 70% of inspections and
# judged on the later 30% (time-ordered), then the same model judged on another
# seed's world (cross-seed). Writes reports with plots under OUT and prints a
# Markdown table. Deterministic for the seeds. Takes long at the default size:
# not for CI (tests/cli.rs runs a small version).
# Usage: scripts/evaluate-report.sh   (env: SEED_A, SEED_B, BUSINESSES, DAYS, DOMAINS, OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED_A="${SEED_A:-2026}"
SEED_B="${SEED_B:-4242}"
BUSINESSES="${BUSINESSES:-5000}"
DAYS="${DAYS:-365}"
DOMAINS="${DOMAINS:-food tourism}"
OUT="${OUT:-target/evaluation}"
mkdir -p "$OUT"
cargo build --release --quiet
bin=target/release/reviewguard
row() { # label, json
  python3 -c 'import json,sys; m=json.loads(sys.argv[2]); print("| %s | %d (%d) | %.3f | %.3f | %.2fx | %.2fx | %.2fx | %.4f |" % (sys.argv[1], m["n"], m["positives"], m["roc_auc"], m["pr_auc"], m["lift_at_5pct"], m["lift_at_10pct"], m["lift_at_20pct"], m["brier"]))' "$1" "$2"
}
table="| evaluation | inspections (violations) | ROC-AUC | PR-AUC | lift@5% | lift@10% | lift@20% | Brier |
|---|---|---|---|---|---|---|---|"
for domain in $DOMAINS; do
  for seed in "$SEED_A" "$SEED_B"; do
    w="$OUT/world-$domain-$seed"
    if [ ! -f "$w.done" ]; then
      "$bin" simulate --seed "$seed" --businesses "$BUSINESSES" --days "$DAYS" --domain "$domain" \
        --reviews "$w.jsonl" --inspections "$w.csv"
      touch "$w.done"
    fi
  done
  a="$OUT/world-$domain-$SEED_A"
  b="$OUT/world-$domain-$SEED_B"
  # The scorecard, fitted on the earlier 70% (chosen by cross-validation inside it).
  "$bin" train --reviews "$a.jsonl" --inspections "$a.csv" --domain "$domain" --seed "$SEED_A" --history \
    --out "$OUT/$domain.json" --report "$OUT/$domain-train"
  # The held-out part again, through evaluate: the later 30% of seed A's inspections.
  n=$(($(wc -l < "$a.csv") - 1))
  keep=$((n - (n * 7 + 5) / 10))
  { head -1 "$a.csv"; tail -n "$keep" "$a.csv"; } > "$OUT/$domain-later.csv"
  later=$("$bin" evaluate --reviews "$a.jsonl" --inspections "$OUT/$domain-later.csv" \
    --model "$OUT/$domain.json" --report "$OUT/$domain-later" --json)
  cross=$("$bin" evaluate --reviews "$b.jsonl" --inspections "$b.csv" \
    --model "$OUT/$domain.json" --report "$OUT/$domain-cross-seed" --json)
  table="$table
$(row "$domain (scorecard): seed $SEED_A, later 30% (time split)" "$later")
$(row "$domain (scorecard): fitted on seed $SEED_A, all of seed $SEED_B (cross-seed)" "$cross")"
done
printf '%s\n' "$table" | tee "$OUT/table.md"
for domain in $DOMAINS; do
  echo
  echo "$domain, cross-validation inside the fitting part of seed $SEED_A:"
  sed -n '/^| candidate | cross-validated ROC-AUC/,/^$/p' "$OUT/$domain.md"
done | tee -a "$OUT/table.md"
echo "reports and plots: $OUT/<domain>-train, <domain>-later, <domain>-cross-seed"
