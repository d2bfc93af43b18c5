#!/usr/bin/env bash
# Configures and builds moai. Usage: scripts/build.sh [--sanitize] [BUILD_DIR]
# Default build dir: build/ (build-asan/ with --sanitize). Tools land in BUILD_DIR/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=OFF
dir=""
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=ON ;;
    -h|--help) sed -n '2,3p' "$0"; exit 0 ;;
    *) dir="$arg" ;;
  esac
done
[ -n "$dir" ] || { [ "$sanitize" = ON ] && dir=build-asan || dir=build; }
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOAI_SANITIZE="$sanitize"
fi
cmake --build "$dir" -j "$(nproc)"
