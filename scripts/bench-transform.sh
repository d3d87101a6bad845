#!/usr/bin/env bash
# Cost of KQL transforms (docs/transforms.md) on `process --out FILE`, side by side with no
# transform, on one core: wall time (ROUNDS alternating runs, best of each) and, with
# CALLGRIND=1, instruction counts (valgrind --tool=callgrind, deterministic) on a smaller file.
# Usage: scripts/bench-transform.sh [SIZE] (default 256MiB). BIN=path (default: release build).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-256MiB}
dir=${BENCH_DIR:-/tmp/mde-relay-bench}
mkdir -p "$dir"
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/mde-relay
fi
net="$dir/DeviceNetworkEvents-$size.json"
proc="$dir/DeviceProcessEvents-$size.json"
[ -f "$net" ] || "$BIN" gen --table DeviceNetworkEvents --bytes "$size" --seed 1 --out "$net"
[ -f "$proc" ] || "$BIN" gen --table DeviceProcessEvents --bytes "$size" --seed 1 --out "$proc"
# The cases: a where on two columns that keeps every row (one pivot column, one found by the
# scan of properties), one that drops the noisy ActionTypes, and a project-away.
printf '%s\n' 'DeviceNetworkEvents | where ActionType !in ("NoSuchAction", "Other") and RemoteIPType != "Nope"' >"$dir/keep-all.kql"
printf '%s\n' 'DeviceNetworkEvents | where ActionType !in ("ConnectionSuccess", "ConnectionRequest") or RemoteIPType == "Reserved"' >"$dir/drop-noisy.kql"
printf '%s\n' 'DeviceProcessEvents | project-away InitiatingProcessVersionInfo*, InitiatingProcessParentFileName' >"$dir/project-away.kql"
printf '%s\n' 'DeviceNetworkEvents | where ActionType == "ConnectionSuccess"' >"$dir/pivot-only.kql"
cases=("net none" "net keep-all" "net drop-noisy" "net pivot-only" "proc none" "proc project-away")
args_of() { # input transform
  printf '%s\n' process "$1" --out "$dir/out.ndjson"
  [ "$2" = none ] || printf '%s\n' --transform "$dir/$2.kql"
}
input_of() { [ "$1" = net ] && echo "$net" || echo "$proc"; }
rounds=${ROUNDS:-3}
: >"$dir/transform.txt"
for i in $(seq "$rounds"); do
  for c in "${cases[@]}"; do
    set -- $c
    input=$(input_of "$1")
    t0=$(date +%s.%N)
    mapfile -t args < <(args_of "$input" "$2")
    taskset -c 0 "$BIN" "${args[@]}" >/dev/null 2>&1
    t1=$(date +%s.%N)
    awk -v c="$1/$2" -v b="$(stat -c %s "$input")" -v a="$t0" -v z="$t1" \
      'BEGIN { printf "%-20s %8.1f MB/s\n", c, b / (z - a) / 1e6 }' | tee -a "$dir/transform.txt"
  done
done
awk '{ if (!($1 in best) || $2 > best[$1]) best[$1] = $2 } END { for (k in best) printf "best %-20s %8.1f MB/s\n", k, best[k] }' "$dir/transform.txt" | sort
if [ -n "${CALLGRIND:-}" ]; then
  small_net="$dir/DeviceNetworkEvents-20MiB.json"
  small_proc="$dir/DeviceProcessEvents-20MiB.json"
  [ -f "$small_net" ] || "$BIN" gen --table DeviceNetworkEvents --bytes 20MiB --seed 1 --out "$small_net"
  [ -f "$small_proc" ] || "$BIN" gen --table DeviceProcessEvents --bytes 20MiB --seed 1 --out "$small_proc"
  for c in "${cases[@]}"; do
    set -- $c
    input=$small_net; [ "$1" = proc ] && input=$small_proc
    mapfile -t args < <(args_of "$input" "$2")
    n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "${args[@]}" 2>&1 |
      sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    printf 'instructions %-20s %s\n' "$1/$2" "$n"
  done
fi
