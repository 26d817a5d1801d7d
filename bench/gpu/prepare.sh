#!/usr/bin/env bash
# Prepares what bench/gpu/check.sh needs from this (development) machine, since the GPU machine has no
# .NET, no GoogleTest and no network: a copy of the GoogleTest sources in .gpu/googletest and a trimmed
# self-contained publish of the CLI in .gpu/cli. .gpu/ is kept out of git (.git/info/exclude) and is
# carried to the GPU machine explicitly (the device tool's carry list: [".gpu"]; at most 64 MiB in all).
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
rm -rf "$GPU/googletest"
cp -r /usr/src/googletest "$GPU/googletest"

rm -rf "$GPU/cli"
dotnet publish "$ROOT/src/Lookahead.Cli" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true \
  -o "$GPU/cli" > "$GPU/publish.log" 2>&1 || { cat "$GPU/publish.log" >&2; exit 1; }
# The CUDA library is built on the GPU machine (check.sh points LOOKAHEAD_NATIVE_LIBRARY at it).
rm -f "$GPU"/cli/liblookahead.so "$GPU/publish.log"

size_mib=$(du -sm "$GPU" | cut -f1)
echo "prepared $GPU: googletest sources and a trimmed self-contained CLI, ${size_mib} MiB"
if [ "$size_mib" -gt 60 ]; then
  echo "warning: ${size_mib} MiB leaves little of the 64 MiB carry limit for the working tree" >&2
fi
