#!/usr/bin/env bash
# Builds the release x86-64 Linux binary and writes the Azure Functions deployment zip:
#
#   host.json                 the custom-handler host configuration (runs ./mde-relay serve)
#   <Function>/function.json  every function folder at the repo root (BlobCreated, Tail, ...)
#   mde-relay                 the executable, mode 0755
#
# Usage: scripts/package.sh [--target TRIPLE] [--binary PATH] [--out ZIP]
#
#   --target  Rust target to build. Default: x86_64-unknown-linux-musl (static, runs on any
#             Linux image) when that target is installed, else x86_64-unknown-linux-gnu (needs
#             the glibc version it was built against, or newer, on the host; printed below).
#             Get the musl target with: rustup target add x86_64-unknown-linux-musl
#             (and `apt-get install musl-tools` for the crates that compile C).
#   --binary  Package this already-built executable instead of building (the tests use it).
#   --out     Zip to write. Default: dist/mde-relay.zip.
#
# Deploy the zip with:
#   az functionapp deployment source config-zip -g <rg> -n <app> --src dist/mde-relay.zip
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=""
binary=""
out="$root/dist/mde-relay.zip"

die() {
  echo "package.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a value}; shift 2 ;;
    --binary) binary=${2:?--binary needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

command -v zip >/dev/null || die "zip not found: apt-get install zip"
[ -f "$root/host.json" ] || die "no host.json at the repo root ($root)"
# host.json names the executable the host starts; it must be the one packaged here.
grep -Eq '"defaultExecutablePath"[[:space:]]*:[[:space:]]*"mde-relay"' "$root/host.json" ||
  die "host.json customHandler.description.defaultExecutablePath is not \"mde-relay\""

functions=()
for dir in "$root"/*/; do
  [ -f "$dir/function.json" ] && functions+=("$(basename "$dir")")
done
[ ${#functions[@]} -gt 0 ] || die "no <Function>/function.json folder at the repo root"

if [ -z "$binary" ]; then
  if [ -z "$target" ]; then
    if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
      target=x86_64-unknown-linux-musl
    else
      target=x86_64-unknown-linux-gnu
      echo "package.sh: musl target not installed; building the glibc binary" \
        "(rustup target add x86_64-unknown-linux-musl for a static one)" >&2
    fi
  fi
  echo "== cargo build --release --locked --target $target" >&2
  (cd "$root" && cargo build --release --locked --target "$target" --bin mde-relay)
  binary="$root/target/$target/release/mde-relay"
fi
[ -f "$binary" ] || die "binary $binary not found"

# The Functions host on Flex Consumption is x86-64 Linux: refuse anything else (an ELF whose
# e_machine, bytes 18-19, is not 0x3e = x86-64).
magic=$(od -An -tx1 -N4 "$binary" | tr -d ' \n')
machine=$(od -An -tx1 -j18 -N2 "$binary" | tr -d ' \n')
[ "$magic" = "7f454c46" ] && [ "$machine" = "3e00" ] ||
  die "$binary is not an x86-64 Linux ELF executable"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$root/host.json" "$stage/host.json"
for f in "${functions[@]}"; do
  mkdir -p "$stage/$f"
  cp "$root/$f/function.json" "$stage/$f/function.json"
done
install -m 0755 "$binary" "$stage/mde-relay"

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
rm -f "$out"
# -X: no uid/gid extra fields; the Unix mode (the run bit) is kept in the external attributes.
(cd "$stage" && zip -q -X -r "$out" host.json "${functions[@]}" mde-relay)

echo "wrote $out ($(du -h "$out" | cut -f1)): host.json, ${functions[*]}, mde-relay" >&2
if command -v objdump >/dev/null; then
  glibc=$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1 || true)
  if [ -n "$glibc" ]; then
    echo "note: dynamically linked against glibc; needs $glibc or newer on the host" >&2
  else
    echo "note: no glibc symbol versions (static build)" >&2
  fi
fi
