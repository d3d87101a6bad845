#!/usr/bin/env bash
# Regenerates demo/: synthetic export rows (`mde-relay gen`, seed 2026) laid out like the real
# storage export, one container folder per table and one PT1H.json blob per hour, plus two
# hand-made quirks: a re-delivered DeviceProcessEvents row (identical properties, later `time`)
# in the next hour's blob. The generated rows already carry the others (CRLF, JSON-in-string
# columns, a DeviceNetworkEvents row with AdditionalFields as a native object, EmailEvents
# `_TimeReceivedBySvc` without the `Z`, ReportIds above 2^53). Every row is valid, so
# `mde-relay process demo/` shows clean output.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/mde-relay
seed=2026
tenant=$("$bin" gen --table AlertInfo --rows 1 --seed $seed 2>/dev/null |
  grep -o '"tenantId":"[^"]*"' | cut -d'"' -f4)

blob() { # table, hour
  echo "demo/insights-logs-advancedhunting-${1,,}/tenantId=$tenant/y=2026/m=11/d=24/h=$2/m=00/PT1H.json"
}

rm -rf demo
while read -r table rows; do
  f=$(blob "$table" 09)
  mkdir -p "$(dirname "$f")"
  "$bin" gen --table "$table" --rows "$rows" --seed $seed --out "$f" 2>/dev/null
done <<EOF
DeviceProcessEvents 10
DeviceNetworkEvents 12
DeviceInfo 10
AlertInfo 10
AlertEvidence 12
EmailEvents 10
IdentityLogonEvents 10
CloudAppEvents 10
IdentityDirectoryEvents 6
CloudAuditEvents 6
EntraIdSignInEvents 6
UrlClickEvents 6
EOF

# The quirks the demo is meant to show must be there.
grep -q '"AdditionalFields":{' "$(blob DeviceNetworkEvents 09)" ||
  { echo "demo: no DeviceNetworkEvents row with a native AdditionalFields object" >&2; exit 1; }
grep -q '"_TimeReceivedBySvc":"[^"Z]*",' "$(blob EmailEvents 09)" ||
  { echo "demo: no EmailEvents row with _TimeReceivedBySvc lacking the Z" >&2; exit 1; }

# Re-delivery: row 3 of the 09:00 DeviceProcessEvents blob again, byte-identical properties,
# fresh `time` and `_TimeReceivedBySvc`, in the 10:00 blob.
src=$(blob DeviceProcessEvents 09)
dst=$(blob DeviceProcessEvents 10)
mkdir -p "$(dirname "$dst")"
sed -n 3p "$src" | sed -E \
  -e 's/^\{"time":"[^"]*"/{"time":"2026-11-24T10:02:17.4410092Z"/' \
  -e 's/"_TimeReceivedBySvc":"[^"]*"/"_TimeReceivedBySvc":"2026-11-24T10:02:16.9030000Z"/' >"$dst"

du -sb demo
