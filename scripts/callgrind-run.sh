#!/usr/bin/env bash
# Counts the instructions `reviewguard run` spends per review, under
# valgrind's callgrind: a figure that does not drift with this VM's speed
# (wall-clock runs here vary by half within an hour), for comparing builds
# of the stream path to a fraction of a percent.
#
#   scripts/callgrind-run.sh BINARY OUT_FILE [DAYS]    (default 40 days)
#
# Starts a fresh Tansu broker, creates the topics (6 partitions), produces a
# seeded simulated world (300 businesses per domain; 40 days is about 37,000
# reviews), then runs BINARY under callgrind with a group of its own until
# it has consumed every review, and stops it with SIGTERM. Prints the
# program's instructions per review, and the stream path's main parts.
# Startup (models, automata) is in the total: compare builds at the same
# DAYS. Needs tansu, valgrind and curl.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/callgrind-run.sh BINARY OUT_FILE [DAYS]" >&2
  exit 2
fi
bin=$(realpath "$1")
out=$(realpath -m "$2")
days=${3:-40}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
for tool in tansu valgrind curl; do
  command -v "$tool" >/dev/null || { echo "callgrind-run: $tool is not installed" >&2; exit 2; }
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
tansu broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" >/dev/null 2>&1 &
pids+=($!)

export REVIEWGUARD_KAFKA_BROKERS="127.0.0.1:$port" REVIEWGUARD_METRICS_ADDR="127.0.0.1:$mport"
export REVIEWGUARD_PRIVACY_PSEUDONYM_KEY=callgrind-run-key REVIEWGUARD_LOG=warn

ready() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "callgrind-run: the service did not get ready" >&2
  exit 1
}
# Topics, created by the service itself.
REVIEWGUARD_KAFKA_GROUP_ID=callgrind-setup "$bin" run --config config/reviewguard.toml --create-topics 6 &
setup=$!
pids+=("$setup")
ready
kill -TERM "$setup"
wait "$setup" || true

n=$("$bin" simulate --seed 31 --businesses 300 --days "$days" --brokers "127.0.0.1:$port" 2>&1 |
  sed -n 's/.* \([0-9][0-9]*\) reviews,.*/\1/p' | sed -n 1p)
[ -n "$n" ] || { echo "callgrind-run: simulate did not say how many reviews it sent" >&2; exit 1; }

REVIEWGUARD_KAFKA_GROUP_ID=callgrind-run valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$bin" run --config config/reviewguard.toml 2>/dev/null &
svc=$!
pids+=("$svc")
consumed=0
for _ in $(seq 1 6000); do
  # (No answer while valgrind starts the service: 0.)
  consumed=$({ curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null || true; } |
    awk '/^reviewguard_reviews_consumed_total/ {s += $2} END {print s + 0}')
  if [ "$consumed" -ge "$n" ]; then
    break
  fi
  sleep 0.2
done
kill -TERM "$svc"
wait "$svc" || true
[ "$consumed" -ge "$n" ] || { echo "callgrind-run: consumed $consumed of $n" >&2; exit 1; }

# The stream path's parts, by the (inclusive) cost of the functions that do
# them; their sum is the figure to compare builds by. The program total also
# holds startup and timers that valgrind's slowness multiplies (librdkafka's
# statistics each second, the model and lexicon file check), and work_out's
# own count depends on which thread ran the pool's jobs.
echo "$n reviews; instructions per review (inclusive), $out:"
# (Annotated from /: inside the repository callgrind_annotate names the
# source files relatively and splits a function's rows differently.)
(cd / && callgrind_annotate --inclusive=yes --auto=no "$out" 2>/dev/null) | grep -v '=>' | awk -v n="$n" '
  function part(label) { c = $1; gsub(",", "", c); v[label] = c / n }
  /PROGRAM TOTALS/ { part("program total (startup and timers included)") }
  /batch\.rs:reviewguard::core::batch::prepare_run[< ]/ { part("prepare: decode, extract, offset, time, shard") }
  /mod\.rs:reviewguard::core::review::decode_ref \[/ { part("  of which decode") }
  /mod\.rs:reviewguard::core::extract::Extractor::extract \[/ { part("  of which extract") }
  /spec_extend\.rs:<alloc::vec::Vec<T,A> as alloc::vec::spec_extend::SpecExtend<T,I>>::spec_extend \[/ { part("fold and score (fold_shard)") }
  /gather\.rs:reviewguard::service::kafka::gather::gather \[/ { part("gather: reading messages from librdkafka") }
  /rdkafka_broker\.c:rd_kafka_broker_thread_main \[/ { part("librdkafka fetch thread") }
  /out\.rs:reviewguard::service::kafka::out::Out::apply \[/ { part("Out::apply: counts and outputs") }
  END {
    split("prepare: decode, extract, offset, time, shard|fold and score (fold_shard)|gather: reading messages from librdkafka|librdkafka fetch thread|Out::apply: counts and outputs", path, "|")
    order = "program total (startup and timers included)|prepare: decode, extract, offset, time, shard|  of which decode|  of which extract|fold and score (fold_shard)|gather: reading messages from librdkafka|librdkafka fetch thread|Out::apply: counts and outputs"
    k = split(order, names, "|")
    for (i = 1; i <= k; i++) printf "%10.0f  %s\n", v[names[i]], names[i]
    for (i in path) sum += v[path[i]]
    printf "%10.0f  %s\n", sum, "stream path (the five parts above, summed)"
  }'
