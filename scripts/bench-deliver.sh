#!/usr/bin/env bash
# Delivery throughput against a webhook that answers after LATENCY_MS (default 150 ms, a normal
# SIEM round trip): `process --sink webhook` over a local file, and the drain of one export blob
# (`process --source dir:...`, the handler's drain with checkpoints), each with
# RELAY_INFLIGHT_BATCHES=1 (one batch at a time, as before issue 15) and with the default 8,
# side by side in one run. Usage: scripts/bench-deliver.sh [SIZE] (default 64MiB).
# Needs python3 (the receiver is scripts/slow-webhook.py).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-64MiB}
latency=${LATENCY_MS:-150}
dir=${BENCH_DIR:-/tmp/mde-relay-bench-deliver}
mkdir -p "$dir"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/mde-relay
fi
input="$dir/DeviceProcessEvents-$size.json"
[ -f "$input" ] || "$BIN" gen --table DeviceProcessEvents --bytes "$size" --seed 1 --out "$input"
bytes=$(stat -c %s "$input")
# One export blob of the same rows, laid out as <container>/<blob> for the dir: source.
blob="$dir/src/insights-logs-advancedhunting-deviceprocessevents/tenantId=0f3c6a5e-1111-4222-8333-944455556666/y=2026/m=01/d=01/h=00/m=00/PT1H.json"
mkdir -p "$(dirname "$blob")"
[ -f "$blob" ] || cp "$input" "$blob"
echo "input: $input ($bytes bytes); webhook latency ${latency} ms"
echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 scripts/slow-webhook.py "$port" "$latency" "$dir/stats.txt" &
rx=$!
trap 'kill $rx 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.05
done
export RELAY_SINK=webhook RELAY_WEBHOOK_URL="http://127.0.0.1:$port/ingest"

run() { # label, inflight, command...
  local label=$1 inflight=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  RELAY_INFLIGHT_BATCHES=$inflight "$@" >/dev/null 2>"$dir/stderr.txt" || { cat "$dir/stderr.txt"; exit 1; }
  t1=$(date +%s.%N)
  awk -v l="$label" -v b="$bytes" -v a="$t0" -v z="$t1" \
    'BEGIN { s = z - a; printf "%-44s %7.2f s %8.1f MB/s\n", l, s, b / s / 1e6 }'
}
for inflight in 1 8; do
  run "process --sink webhook, inflight $inflight" "$inflight" \
    "$BIN" process --dead-letter "$dir/dead.ndjson" "$input"
  rm -rf "$dir/state"
  RUST_LOG=mde_relay::metrics=info run "one blob drained (dir: source), inflight $inflight" "$inflight" \
    "$BIN" process --source "dir:$dir/src" --since 2026-01-01T00 --until 2026-01-01T01 \
    --state "$dir/state" --dead-letter "$dir/dead.ndjson"
  # The drain's own counters (drain_summary): batches in flight, checkpoint writes, sink wait.
  sed 's/\x1b\[[0-9;]*m//g' "$dir/stderr.txt" |
    grep -o 'batches=[0-9]*\|batches_in_flight_max=[0-9]*\|checkpoints_written=[0-9]*\|sink_wait_ms=[0-9]*\|duration_ms=[0-9]*' |
    tr '\n' ' ' | sed 's/^/    drain_summary: /'
  echo
done
kill -TERM $rx; wait $rx 2>/dev/null || true
read -r reqs rbytes maxc <"$dir/stats.txt"
echo "receiver: $reqs requests, $rbytes bytes, at most $maxc at once"
