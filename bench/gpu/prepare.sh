#!/usr/bin/env bash
# Prepares what bench/gpu/check.sh needs from this (development) machine, since the GPU machine has no
# .NET, no GoogleTest and no network:
#   .gpu/googletest      the GoogleTest sources (the native tests build them there)
#   .gpu/app.tar.xz      the NUnit suite built as its own executable (Microsoft.Testing.Platform, so no SDK
#                        and no `dotnet test` is needed), which also holds the CLI (Lookahead.Cli.dll)
#   .gpu/dotnet.tar.xz   the .NET runtime that both run on
# .gpu/ is kept out of git (.git/info/exclude) and is carried to the GPU machine explicitly (the device
# tool's carry list: [".gpu"]; at most 64 MiB in all, about 40 MiB of it used here).
#   bash bench/gpu/prepare.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GPU="$ROOT/.gpu"
mkdir -p "$GPU"
grep -qx '/.gpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$ROOT/.git/info/exclude"

if [ ! -d /usr/src/googletest ]; then
  echo "error: /usr/src/googletest not found (Debian: apt-get install googletest)" >&2
  exit 1
fi
rm -rf "$GPU/googletest" "$GPU/cli"
cp -r /usr/src/googletest "$GPU/googletest"

# The suite and the CLI, framework-dependent for linux-x64. The CUDA library is built on the GPU machine
# (check.sh points LOOKAHEAD_NATIVE_LIBRARY at it), and code coverage is not collected there.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
echo "publishing the test runner and the CLI ..."
dotnet publish "$ROOT/tests/Lookahead.Tests" -c Release -r linux-x64 --self-contained false -p:LookaheadTestRunner=true \
  -o "$STAGE/app" > "$STAGE/publish.log" 2>&1 || { cat "$STAGE/publish.log" >&2; exit 1; }
rm -rf "$STAGE/app/Microsoft.CodeCoverage" "$STAGE"/app/liblookahead.so
tar -C "$STAGE" -cJf "$GPU/app.tar.xz" app

# The runtime the app was built against, once per version.
DOTNET_DIR="$(dirname "$(readlink -f "$(command -v dotnet)")")"
RUNTIME="$(ls "$DOTNET_DIR/shared/Microsoft.NETCore.App" | sort -V | tail -1)"
if [ "$(cat "$GPU/dotnet.version" 2>/dev/null)" != "$RUNTIME" ]; then
  echo "packing the .NET runtime $RUNTIME ..."
  tar -C "$DOTNET_DIR" -cJf "$GPU/dotnet.tar.xz" dotnet host "shared/Microsoft.NETCore.App/$RUNTIME"
  echo "$RUNTIME" > "$GPU/dotnet.version"
fi

size_mib=$(du -sm "$GPU" | cut -f1)
echo "prepared $GPU: googletest sources, the test runner with the CLI, the .NET $RUNTIME runtime; ${size_mib} MiB"
if [ "$size_mib" -gt 56 ]; then
  echo "warning: ${size_mib} MiB leaves little of the 64 MiB carry limit for the working tree" >&2
fi
