#!/usr/bin/env bash
# Build, test and run Lookahead.
#   ./build.sh              build everything (native Release + managed Release)
#   ./build.sh test         build, run every test (ctest + NUnit, then the ASan/UBSan build's ctest and the
#                           fuzzers), end with "N passed, N failed"
#   ./build.sh run -- ARGS  build if needed, then run the CLI with ARGS
# Environment: BUILD_TYPE (default Release), JOBS (default: all cores), LK_CUDA (1: build the CUDA backend,
# 0: do not; default: build it when nvcc is on PATH), LK_HARDENING (0 skips the sanitizer build and the
# fuzzers), LK_FUZZ_SECONDS (time per fuzz target, default 15).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_TYPE="${BUILD_TYPE:-Release}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
NATIVE_BUILD="$ROOT/build/native"
NATIVE_OUT="$ROOT/artifacts/native"
CLI_DIR="$ROOT/src/Lookahead.Cli/bin/$BUILD_TYPE/net10.0"
CLI_DLL="$CLI_DIR/Lookahead.Cli.dll"
TEST_RESULTS="$ROOT/build/test-results"

log() { printf '==> %s\n' "$*" >&2; }

check_prerequisites() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=("cmake (3.22 or newer)")
  if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
    missing+=("a C++20 compiler (g++ 12 or clang 14 or newer)")
  fi
  if ! command -v dotnet >/dev/null 2>&1; then
    missing+=(".NET 10 SDK (dotnet was not found on PATH)")
  elif ! dotnet --list-sdks 2>/dev/null | grep -q '^10\.'; then
    missing+=(".NET 10 SDK (dotnet is installed but has no 10.x SDK: $(dotnet --list-sdks 2>/dev/null | cut -d' ' -f1 | tr '\n' ' '))")
  fi
  if [ "${1:-}" = test ] && ! find /usr /usr/local -name 'GTestConfig.cmake' -print -quit 2>/dev/null | grep -q .; then
    missing+=("GoogleTest development files (Debian: apt-get install libgtest-dev)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'error: missing prerequisites:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

# CMake arguments for the CUDA backend: on when asked (LK_CUDA=1) or when nvcc is found.
cuda_arguments() {
  local want="${LK_CUDA:-auto}"
  if [ "$want" = 0 ] || { [ "$want" = auto ] && ! command -v nvcc >/dev/null 2>&1; }; then
    echo "-DLK_CUDA=OFF"
    return
  fi
  if ! command -v nvcc >/dev/null 2>&1; then
    echo "error: LK_CUDA=1 but nvcc is not on PATH (Debian: apt-get install nvidia-cuda-toolkit)" >&2
    exit 1
  fi
  local major
  major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  # nvcc before 12 rejects g++ 12 as its host compiler: use clang 14 where present, else override its check.
  if [ "${major:-99}" -lt 12 ] && command -v clang++-14 >/dev/null 2>&1; then
    echo "-DLK_CUDA=ON -DCMAKE_CUDA_HOST_COMPILER=$(command -v clang++-14)"
  elif [ "${major:-99}" -lt 12 ]; then
    echo "-DLK_CUDA=ON -DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler"
  else
    echo "-DLK_CUDA=ON"
  fi
}

build_native() {
  local cuda
  cuda=$(cuda_arguments)
  log "native library ($BUILD_TYPE, $cuda)"
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$NATIVE_BUILD" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DLK_BUILD_TESTS="${1:-ON}" $cuda >/dev/null
  cmake --build "$NATIVE_BUILD" --parallel "$JOBS"
  cmake --install "$NATIVE_BUILD" --prefix "$NATIVE_OUT" >/dev/null
}

build_managed() {
  log "managed projects ($BUILD_TYPE)"
  dotnet build "$ROOT/Lookahead.sln" -c "$BUILD_TYPE" --nologo -v quiet -clp:NoSummary
  mkdir -p "$ROOT/artifacts/bin"
  # A 'lookahead' launcher (the CLI assembly cannot be named lookahead: see Lookahead.Cli.csproj).
  cat > "$ROOT/artifacts/bin/lookahead" <<LAUNCHER
#!/usr/bin/env bash
exec dotnet "$CLI_DLL" "\$@"
LAUNCHER
  chmod +x "$ROOT/artifacts/bin/lookahead"
}

build_all() {
  check_prerequisites "${1:-}"
  build_native
  build_managed
}

# Counts of a ctest log: sets ctest_passed, ctest_failed, ctest_skipped (skipped tests, such as the CUDA
# tests without a GPU, are counted apart: ctest counts them as passed).
count_ctest() {
  local summary
  summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -n 1 || true)
  ctest_skipped=0
  if [ -n "$summary" ]; then
    ctest_skipped=$(grep -cE '^[[:space:]]+[0-9]+ - .*\(Skipped\)' "$1" || true)
    ctest_failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
    ctest_passed=$(( $(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary") - ctest_failed - ctest_skipped ))
  else
    ctest_passed=0
    ctest_failed=1  # ctest did not run to its summary
  fi
}

# The hardening stage: a second build tree with clang, ASan and UBSan (any report fails its test), its ctest,
# then every fuzz target (tests/fuzz/run.sh: corpora replayed, then fuzzed for LK_FUZZ_SECONDS each).
# Sets hardening_passed, hardening_failed, hardening_skipped.
run_hardening() {
  hardening_passed=0 hardening_failed=0 hardening_skipped=0
  if [ "${LK_HARDENING:-1}" = 0 ]; then
    log "sanitizers and fuzzing skipped (LK_HARDENING=0)"
    return
  fi
  local cxx
  cxx=$(command -v clang++-14 || command -v clang++ || true)
  # clang without its sanitizer and libFuzzer runtimes cannot build the stage: probe for them first.
  local probe="$ROOT/build/sanitizer-probe"
  mkdir -p "$ROOT/build"
  if [ -z "$cxx" ] || ! printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' |
       "$cxx" -x c++ -fsanitize=fuzzer,address,undefined -o "$probe" - >/dev/null 2>&1; then
    log "sanitizers and fuzzing skipped: no clang++ with its sanitizer and libFuzzer runtimes (Debian: apt-get install clang-14 libclang-rt-14-dev)"
    hardening_skipped=1
    return
  fi
  rm -f "$probe"
  log "native library and tests with ASan + UBSan, and the fuzz targets ($cxx)"
  if ! cmake -S "$ROOT" -B "$ROOT/build/sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
         -DLK_FUZZ=ON -DLK_CUDA=OFF >/dev/null || ! cmake --build "$ROOT/build/sanitize" --parallel "$JOBS"; then
    hardening_failed=1
    return
  fi
  local log_file="$ROOT/build/ctest-sanitize.log"
  set +e
  (cd "$ROOT/build/sanitize" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure --parallel "$JOBS") 2>&1 | tee "$log_file"
  set -e
  count_ctest "$log_file"
  hardening_passed=$ctest_passed hardening_failed=$ctest_failed hardening_skipped=$ctest_skipped

  log "fuzzing (${LK_FUZZ_SECONDS:-15} s per target)"
  local fuzz_log="$ROOT/build/fuzz.log"
  set +e
  "$ROOT/tests/fuzz/run.sh" --seconds "${LK_FUZZ_SECONDS:-15}" all 2>&1 | tee "$fuzz_log"
  set -e
  local fuzz_summary
  fuzz_summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$fuzz_log" | tail -n 1 || true)
  if [ -n "$fuzz_summary" ]; then
    hardening_passed=$((hardening_passed + ${fuzz_summary%% passed*}))
    hardening_failed=$((hardening_failed + $(sed -E 's/.* ([0-9]+) failed, .*/\1/' <<<"$fuzz_summary")))
    hardening_skipped=$((hardening_skipped + $(sed -E 's/.* ([0-9]+) skipped$/\1/' <<<"$fuzz_summary")))
  else
    hardening_failed=$((hardening_failed + 1))
  fi
}

run_tests() {
  build_all test
  local native_passed=0 native_failed=0 native_skipped=0 managed_passed=0 managed_failed=0 managed_skipped=0
  log "native tests (ctest)"
  local ctest_log="$ROOT/build/ctest.log"
  set +e
  (cd "$NATIVE_BUILD" && ctest --output-on-failure --parallel "$JOBS") 2>&1 | tee "$ctest_log"
  set -e
  count_ctest "$ctest_log"
  native_passed=$ctest_passed native_failed=$ctest_failed native_skipped=$ctest_skipped

  log "managed tests (NUnit)"
  rm -rf "$TEST_RESULTS"
  set +e
  dotnet test "$ROOT/Lookahead.sln" -c "$BUILD_TYPE" --no-build --nologo \
    --logger "trx;LogFileName=managed.trx" --results-directory "$TEST_RESULTS"
  set -e
  local trx
  trx=$(find "$TEST_RESULTS" -name '*.trx' -print -quit 2>/dev/null || true)
  if [ -n "$trx" ]; then
    local counters
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    managed_passed=$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")
    managed_failed=$(( $(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters") + $(sed -E 's/.* error="([0-9]+)".*/\1/' <<<"$counters") ))
    # Ignored tests (the Gpu category without a GPU) are counted in total but not in executed.
    managed_skipped=$(( $(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$counters") - $(sed -E 's/.* executed="([0-9]+)".*/\1/' <<<"$counters") ))
  else
    managed_failed=1  # the test host did not produce results
  fi

  run_hardening

  local passed=$((native_passed + managed_passed + hardening_passed)) failed=$((native_failed + managed_failed + hardening_failed))
  local skipped=$((native_skipped + managed_skipped + hardening_skipped))
  log "native: $native_passed passed, $native_failed failed, $native_skipped skipped; managed: $managed_passed passed, $managed_failed failed, $managed_skipped skipped; sanitizers and fuzzing: $hardening_passed passed, $hardening_failed failed, $hardening_skipped skipped"
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

needs_build() {
  [ ! -f "$CLI_DLL" ] || [ ! -f "$NATIVE_OUT/liblookahead.so" ] && return 0
  [ -n "$(find "$ROOT/native" "$ROOT/src" "$ROOT/CMakeLists.txt" -newer "$CLI_DLL" -type f \
      -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]
}

case "${1:-build}" in
  build)
    build_all
    log "done: run the CLI with ./build.sh run -- generate --prompt \"Once upon a time\""
    ;;
  test)
    run_tests
    ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    if needs_build; then build_all >&2; fi
    exec dotnet "$CLI_DLL" "$@"
    ;;
  -h|--help|help)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    echo "error: unknown command '$1' (expected: build, test, run)" >&2
    exit 2
    ;;
esac
