#!/usr/bin/env bash
# Fuzz every parser and the C API for a bounded time, after replaying the committed corpora.
#   tests/fuzz/run.sh [--seconds N] [--merge] [native|managed|all|TARGET...]
# native:  the libFuzzer targets of build/sanitize (ASan + UBSan; ./build.sh test builds them)
# managed: the SharpFuzz targets of tests/Lookahead.Fuzz under afl-fuzz (published and instrumented here)
# TARGET:  one target by name (native-batches, native-model, safetensors, gguf, config, shard-index, trie,
#          tokenizer, tokenizer-json, chat-template, prompts, cli-args)
# --merge adds the inputs that reached new coverage to tests/fuzz/corpus (for developers; CI only reads it).
# Inputs that crash or hang are copied to build/fuzz-findings/<target>/ and fail the run; fix the bug, then
# commit the input to the target's corpus as a regression test. Ends with "N passed, N failed, N skipped"
# (the managed targets are skipped where afl-fuzz is not installed).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NATIVE_TARGETS=(batches model)
MANAGED_TARGETS=(safetensors gguf config shard-index trie tokenizer tokenizer-json chat-template prompts cli-args)
SECONDS_PER_TARGET=15
MERGE=0
native=()
managed=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then echo "error: --seconds needs a whole number of seconds" >&2; exit 2; fi
      SECONDS_PER_TARGET="$2"; shift 2 ;;
    --merge) MERGE=1; shift ;;
    all) native+=("${NATIVE_TARGETS[@]}"); managed+=("${MANAGED_TARGETS[@]}"); shift ;;
    native) native+=("${NATIVE_TARGETS[@]}"); shift ;;
    managed) managed+=("${MANAGED_TARGETS[@]}"); shift ;;
    native-batches|native-model) native+=("${1#native-}"); shift ;;
    safetensors|gguf|config|shard-index|trie|tokenizer|tokenizer-json|chat-template|prompts|cli-args) managed+=("$1"); shift ;;
    *) echo "error: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ ${#native[@]} -eq 0 ] && [ ${#managed[@]} -eq 0 ]; then native=("${NATIVE_TARGETS[@]}"); managed=("${MANAGED_TARGETS[@]}"); fi
CORPUS="$ROOT/tests/fuzz/corpus"
FINDINGS="$ROOT/build/fuzz-findings"
WORK="$(mktemp -d)"
# The managed targets' scratch folders go too (a killed child process cannot remove its own).
trap 'rm -rf "$WORK" "${TMPDIR:-/tmp}"/lookahead-fuzz-*' EXIT
passed=0
failed=0
skipped=0

log() { printf '==> %s\n' "$*" >&2; }
pass() { passed=$((passed + 1)); printf 'fuzz %s: ok (%s)\n' "$1" "$2"; }
fail() { failed=$((failed + 1)); printf 'fuzz %s: FAILED (%s)\n' "$1" "$2"; }
skip() { skipped=$((skipped + 1)); printf 'fuzz %s: skipped (%s)\n' "$1" "$2"; }

run_native() {
  local bin="$ROOT/build/sanitize/tests/fuzz/native"
  if [ ! -x "$bin/fuzz_batches" ]; then
    fail native "no build/sanitize/tests/fuzz/native/fuzz_batches: configure with clang and -DLK_FUZZ=ON (./build.sh test does)"
    return
  fi
  local target
  for target in "${native[@]}"; do
    local name="native-$target" corpus="$CORPUS/native-$target" scratch="$WORK/native-$target"
    mkdir -p "$scratch" "$FINDINGS/$name"
    log "$name: replaying $(ls "$corpus" | wc -l) inputs, then fuzzing ${SECONDS_PER_TARGET} s"
    # libFuzzer writes new inputs to the first folder and reads the others; a crash stops it with exit 1.
    if ! "$bin/fuzz_$target" -runs=0 "$corpus" >"$WORK/$name.replay" 2>&1; then
      fail "$name" "a corpus input fails: $(grep -m1 -E 'ERROR|runtime error' "$WORK/$name.replay")"
      continue
    fi
    if "$bin/fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$FINDINGS/$name/" "$scratch" "$corpus" >"$WORK/$name.log" 2>&1; then
      pass "$name" "$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$name.log" | grep -o '[0-9]*$') runs"
      if [ "$MERGE" = 1 ]; then "$bin/fuzz_$target" -merge=1 "$corpus" "$scratch" >/dev/null 2>&1; fi
    else
      fail "$name" "$(grep -m1 -E 'ERROR|runtime error' "$WORK/$name.log"); input saved in $FINDINGS/$name/"
    fi
  done
}

run_managed() {
  if ! command -v afl-fuzz >/dev/null 2>&1; then
    skip managed "afl-fuzz not found (Debian: apt-get install afl++)"
    return
  fi
  local out="$ROOT/build/fuzz-managed" tools="$ROOT/build/tools"
  log "managed: publishing tests/Lookahead.Fuzz and instrumenting the library"
  if [ ! -x "$tools/sharpfuzz" ] && ! dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >"$WORK/tool.log" 2>&1; then
    skip managed "could not install the sharpfuzz tool (SharpFuzz.CommandLine 2.3.0 from NuGet): $(tail -n 1 "$WORK/tool.log")"
    return
  fi
  rm -rf "$out"
  if ! dotnet publish "$ROOT/tests/Lookahead.Fuzz/Lookahead.Fuzz.csproj" -c Release -o "$out" --nologo -v quiet >"$WORK/publish.log" 2>&1 ||
     ! "$tools/sharpfuzz" "$out/Lookahead.dll" >>"$WORK/publish.log" 2>&1 ||
     ! "$tools/sharpfuzz" "$out/Lookahead.Cli.dll" >>"$WORK/publish.log" 2>&1; then
    fail managed "publish or instrumentation failed: $(tail -n 3 "$WORK/publish.log" | tr '\n' ' ')"
    return
  fi
  # Quiet, headless afl-fuzz that tolerates this machine's CPU governor and core-dump settings (and no
  # sanitizer options from the caller: afl-fuzz refuses ASAN_OPTIONS it did not set, and .NET needs none).
  unset ASAN_OPTIONS UBSAN_OPTIONS
  export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
  local target
  for target in "${managed[@]}"; do
    local corpus="$CORPUS/$target" results="$WORK/afl-$target"
    log "$target: replaying $(ls "$corpus" | wc -l) inputs, then fuzzing ${SECONDS_PER_TARGET} s"
    if ! dotnet "$out/Lookahead.Fuzz.dll" "$target" "$corpus" >"$WORK/$target.replay" 2>&1; then
      fail "$target" "a corpus input fails: $(grep -m1 -v '^ ' "$WORK/$target.replay")"
      continue
    fi
    timeout $((SECONDS_PER_TARGET + 120)) afl-fuzz -V "$SECONDS_PER_TARGET" -i "$corpus" -o "$results" -t 5000 -m none \
      -- dotnet "$out/Lookahead.Fuzz.dll" "$target" >"$WORK/$target.log" 2>&1
    local stats="$results/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
      fail "$target" "afl-fuzz did not start: $(grep -m1 -E 'PROGRAM ABORT|\[-\]' "$WORK/$target.log")"
      continue
    fi
    local crashes hangs execs
    crashes=$(find "$results/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
    hangs=$(find "$results/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
    execs=$(sed -n 's/^execs_done *: *//p' "$stats")
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
      mkdir -p "$FINDINGS/$target"
      cp "$results"/default/crashes/id:* "$results"/default/hangs/id:* "$FINDINGS/$target/" 2>/dev/null
      fail "$target" "$crashes crashes, $hangs hangs in $execs runs; inputs saved in $FINDINGS/$target/"
    else
      pass "$target" "$execs runs"
      if [ "$MERGE" = 1 ]; then
        # afl's queue holds the inputs that reached new coverage; the seeds in it (orig:) are there already.
        # Named by content: afl's names hold colons, which some file systems refuse.
        local input
        for input in "$results"/default/queue/id:*; do
          case "$input" in *orig:*) continue ;; esac
          cp -n "$input" "$corpus/$(sha1sum "$input" | cut -c1-16)"
        done
      fi
    fi
  done
}

[ ${#native[@]} -gt 0 ] && run_native
[ ${#managed[@]} -gt 0 ] && run_managed
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
