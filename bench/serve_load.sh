#!/usr/bin/env bash
# Load benchmark of the reward server (issue: reward server). Loopback only, bounded in time.
# Starts `medu1 serve`, records its resident memory, drives /reward with batches of 1, 32 and 256
# golden cases from two keep-alive connections, records memory again, stops the server.
#   bench/serve_load.sh [GOLDEN_FILE] [SECONDS_PER_BATCH_SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
golden="${1:-../shared/golden/rewards.jsonl}"
secs="${2:-10}"
port="${MEDU1_BENCH_PORT:-18777}"
cargo build --release -q -p medu1-cli
cargo build --release -q -p medu1-server --example load
./target/release/medu1 serve --addr "127.0.0.1:$port" --error-reward -3 2>/tmp/medu1-serve-bench.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$pid/status"; }
echo "server RSS before: $(rss)"
./target/release/examples/load --url "http://127.0.0.1:$port" --golden "$golden" --batches 1,32,256 --seconds "$secs"
echo "server RSS after:  $(rss)"
echo "server peak RSS:   $(awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$pid/status")"
