#!/usr/bin/env bash
# Builds the x86-64 Linux binary and writes the Azure Functions deployment zip:
#
#   host.json                 the custom-handler host configuration (runs ./mde-relay serve)
#   <Function>/function.json  every function folder at the repo root (BlobCreated, Tail, ...)
#   mde-relay                 the executable, mode 0755
#
# Usage: scripts/package.sh [--target TRIPLE] [--profile NAME] [--binary PATH] [--out ZIP]
#
#   --target  Target to build with cargo-zigbuild. Default: x86_64-unknown-linux-gnu.2.28, a
#             binary that needs glibc 2.28 or newer, whatever this machine's glibc (the Flex
#             Consumption image decides which glibc there is). x86_64-unknown-linux-musl builds a
#             static binary when that Rust target is installed (rustup target add ...).
#   --profile Cargo profile (default release; the tests use dev to save minutes).
#   --binary  Package this already-built executable instead of building (no glibc check).
#   --out     Zip to write. Default: dist/mde-relay.zip.
#
# The toolchain (cargo-zigbuild and zig, pinned in scripts/zigbuild-requirements.txt) is
# installed from PyPI into target/zigbuild-venv on first use; zig's cache lives in
# target/zig-cache. If it cannot be installed, or the built binary needs a newer glibc than its
# target says, the script fails: it never falls back to this machine's glibc.
# CARGO_TARGET_DIR is honoured.
#
# Deploy the zip with:
#   az functionapp deployment source config-zip -g <rg> -n <app> --src dist/mde-relay.zip
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-unknown-linux-gnu.2.28
profile=release
binary=""
out="$root/dist/mde-relay.zip"

die() {
  echo "package.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a value}; shift 2 ;;
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
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

# Highest GLIBC_x.y symbol version an ELF file needs (empty: none, e.g. static musl).
max_glibc() {
  objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -Vu | tail -1 || true
}

# cargo-zigbuild + zig from PyPI into target/zigbuild-venv, reinstalled when the pins change.
zigbuild_toolchain() {
  local venv="$root/target/zigbuild-venv"
  local req="$root/scripts/zigbuild-requirements.txt"
  if ! cmp -s "$req" "$venv/.installed" || ! "$venv/bin/cargo-zigbuild" --version >/dev/null 2>&1; then
    echo "== installing cargo-zigbuild and zig from PyPI into $venv" >&2
    command -v python3 >/dev/null || die "python3 not found: it installs cargo-zigbuild and zig (apt-get install python3 python3-venv)"
    python3 -m venv "$venv" ||
      die "cannot create the virtualenv $venv (apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" ||
      die "cannot install cargo-zigbuild and ziglang from PyPI ($req); the package needs them to link against glibc 2.28"
    cp "$req" "$venv/.installed"
  fi
  "$venv/bin/python3" -m ziglang version >/dev/null 2>&1 ||
    die "zig (PyPI ziglang in $venv) does not run; delete $venv and retry"
  # cargo-zigbuild finds zig as `python3 -m ziglang` with the venv first on PATH.
  export PATH="$venv/bin:$PATH"
  export ZIG_GLOBAL_CACHE_DIR="$root/target/zig-cache" ZIG_LOCAL_CACHE_DIR="$root/target/zig-cache"
}

if [ -z "$binary" ]; then
  command -v objdump >/dev/null || die "objdump not found: apt-get install binutils (it checks the glibc the binary needs)"
  rust_target=${target%%.*}
  case "$target" in
    *-linux-gnu.*) want_glibc=${target#"$rust_target".} ;;
    *-linux-musl) want_glibc="" ;;
    *) die "unsupported target $target: use x86_64-unknown-linux-gnu.<glibc> or x86_64-unknown-linux-musl" ;;
  esac
  rustup target list --installed 2>/dev/null | grep -qx "$rust_target" ||
    die "Rust target $rust_target is not installed (rustup target add $rust_target)"
  zigbuild_toolchain
  echo "== cargo zigbuild --profile $profile --locked --target $target" >&2
  (cd "$root" && cargo zigbuild --profile "$profile" --locked --target "$target" --bin mde-relay) ||
    die "cargo zigbuild failed"
  case "$profile" in dev | test) dir=debug ;; bench) dir=release ;; *) dir=$profile ;; esac
  binary="${CARGO_TARGET_DIR:-$root/target}/$rust_target/$dir/mde-relay"
  [ -f "$binary" ] || die "cargo zigbuild did not produce $binary"
  have=$(max_glibc "$binary")
  if [ -z "$want_glibc" ]; then
    [ -z "$have" ] || die "$binary needs GLIBC_$have but a static musl binary was expected"
  elif [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$have" "$want_glibc" | sort -V | tail -1)" != "$want_glibc" ]; then
    die "$binary needs GLIBC_$have, newer than the $want_glibc it was built for"
  fi
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
  glibc=$(max_glibc "$binary")
  if [ -n "$glibc" ]; then
    echo "note: dynamically linked against glibc; needs GLIBC_$glibc or newer on the host" >&2
  else
    echo "note: no glibc symbol versions (static build)" >&2
  fi
fi
