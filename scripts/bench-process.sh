#!/usr/bin/env bash
# End-to-end benchmark of `mde-relay process --out FILE` on one core, with peak RSS, next to
# `jq -c .` on the same file in the same run. Usage: scripts/bench-process.sh [SIZE] [TABLE]
# (default 1GiB DeviceProcessEvents). Needs jq and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
table=${2:-DeviceProcessEvents}
dir=${BENCH_DIR:-/tmp/mde-relay-bench}
mkdir -p "$dir"
cargo build --release --quiet
bin=target/release/mde-relay
input="$dir/$table-$size.json"
[ -f "$input" ] || "$bin" gen --table "$table" --bytes "$size" --seed 1 --out "$input"
bytes=$(stat -c %s "$input")
echo "input: $input ($bytes bytes)"
echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores; pinned to core 0"

measure() { # label, command...
  local label=$1; shift
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -o "$dir/time.txt" -f '%M' taskset -c 0 "$@" >/dev/null 2>&1
  rss=$(tail -1 "$dir/time.txt")
  t1=$(date +%s.%N)
  awk -v l="$label" -v b="$bytes" -v a="$t0" -v z="$t1" -v r="$rss" \
    'BEGIN { s = z - a; printf "%-28s %7.2f s %8.1f MB/s  peak RSS %6.1f MiB\n", l, s, b / s / 1e6, r / 1024 }'
}
measure "mde-relay process (normalized)" "$bin" process "$input" --out "$dir/out.ndjson"
measure "mde-relay process (raw)" "$bin" process --format raw "$input" --out "$dir/out.ndjson"
measure "mde-relay process (ocsf)" "$bin" process --format ocsf "$input" --out "$dir/out.ndjson"
if command -v jq >/dev/null; then
  measure "jq -c ." sh -c "jq -c . '$input' > '$dir/jq.ndjson'"
else
  echo "jq not installed: apt-get install jq"
fi
rm -f "$dir/out.ndjson" "$dir/jq.ndjson"
