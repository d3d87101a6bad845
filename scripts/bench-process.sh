#!/usr/bin/env bash
# End-to-end benchmark of `mde-relay process --out FILE` on one core, with peak RSS, next to
# `jq -c .` on the same file in the same run. Usage: scripts/bench-process.sh [SIZE] [TABLE]
# (default 1GiB DeviceProcessEvents). Needs jq and GNU time (/usr/bin/time).
#
# OLD_BIN=/path/to/old/mde-relay (and optionally NEW_BIN) compares instead: old and new binary alternately, ROUNDS times
# each (default 3), on the same input, then the best of each and the ratio new/old. For the
# "no regression" check of a hot-path change (docs/benchmarks.md says how to build the old one).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
table=${2:-DeviceProcessEvents}
dir=${BENCH_DIR:-/tmp/mde-relay-bench}
mkdir -p "$dir"
if [ -n "${NEW_BIN:-}" ]; then
  bin=$NEW_BIN # a binary copied aside (e.g. while the old one is built in the same target dir)
else
  cargo build --release --quiet
  bin=target/release/mde-relay
fi
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
if [ -n "${OLD_BIN:-}" ]; then
  rounds=${ROUNDS:-3}
  : >"$dir/compare.txt"
  for fmt in normalized raw; do
    for i in $(seq "$rounds"); do
      for which in old new; do
        b=$bin; [ "$which" = old ] && b=$OLD_BIN
        measure "$which $fmt #$i" "$b" process --format "$fmt" "$input" --out "$dir/out.ndjson" |
          tee -a "$dir/compare.txt"
      done
    done
    awk -v f="$fmt" '$2 == f { s = $(NF-5); if (!($1 in best) || s > best[$1]) best[$1] = s }
      END { printf "%s: best old %.1f MB/s, best new %.1f MB/s, new/old %.3f\n", f, best["old"], best["new"], best["new"] / best["old"] }' \
      "$dir/compare.txt"
  done
  rm -f "$dir/out.ndjson"
  exit 0
fi
measure "mde-relay process (normalized)" "$bin" process "$input" --out "$dir/out.ndjson"
measure "mde-relay process (raw)" "$bin" process --format raw "$input" --out "$dir/out.ndjson"
measure "mde-relay process (ocsf)" "$bin" process --format ocsf "$input" --out "$dir/out.ndjson"
if command -v jq >/dev/null; then
  measure "jq -c ." sh -c "jq -c . '$input' > '$dir/jq.ndjson'"
else
  echo "jq not installed: apt-get install jq"
fi
rm -f "$dir/out.ndjson" "$dir/jq.ndjson"
