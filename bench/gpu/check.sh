#!/usr/bin/env bash
# The GPU device check, in one call on the GPU machine (nvcc, cmake, PyTorch + transformers; no dotnet,
# no network). Run from the repository root with the googletest source carried in .gpu/googletest (and
# optionally a CLI publish in .gpu/cli), both made by bench/gpu/prepare.sh on the development machine:
#   bash bench/gpu/check.sh            (results in $OUT, else ./gpu-results)
# Steps: build the native library for sm_90 with CUDA; native tests (CPU and CUDA); compute-sanitizer
# memcheck and racecheck on small cases; the native benchmark at tinyllama-1.1b (also with
# LK_CUDA_GRAPHS=1) and llama2-7b shapes (also with LK_CUDA_MATMUL=simt);
# per-kernel times from Nsight Compute; lookahead vs greedy through the managed CLI (if published into
# .gpu/cli); the HF transformers baseline. Writes check.md (summary), check.log (everything) and the JSON results.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RESULTS="${OUT:-$ROOT/gpu-results}"
mkdir -p "$RESULTS"
LOG="$RESULTS/check.log"
SUMMARY="$RESULTS/check.md"
BUILD="$ROOT/build/gpu"
: > "$LOG"
status() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
run() {  # run NAME COMMAND...: logs the output, records pass/fail and seconds in the summary
  local name="$1"; shift
  local start=$SECONDS
  echo "==> $name: $*" >> "$LOG"
  if "$@" >> "$LOG" 2>&1; then status "- $name: ok ($((SECONDS - start)) s)"; else status "- $name: FAILED (exit $?, $((SECONDS - start)) s)"; fi
}

: > "$SUMMARY"
status "# GPU check"
status ""
status "\`\`\`"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$SUMMARY"
nvcc --version | tail -1 | tee -a "$SUMMARY"
status "\`\`\`"
status ""
run configure cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLK_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLK_GTEST_SOURCE_DIR="$ROOT/.gpu/googletest" -DLK_WERROR=OFF
run build cmake --build "$BUILD" --parallel 16
run native-tests bash -c "cd '$BUILD' && ctest --output-on-failure --parallel 4 --timeout 300"
grep -E "tests passed|tests failed|Failed|\*\*\*" "$LOG" | tail -12 | sed 's/^/    /' >> "$SUMMARY"
TESTS="$BUILD/tests/native/lookahead_native_tests"
run memcheck compute-sanitizer --tool memcheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='Cuda.VerificationBreaksExactTiesToTheLowestId:Cuda.ReportsTheDeviceInSystemInfo'
run racecheck compute-sanitizer --tool racecheck --error-exitcode 9 "$TESTS" --gtest_filter='Cuda.VerificationBreaksExactTiesToTheLowestId'
# The tensor-core kernel (with column slices and batches past 64 inputs) and the CUDA graph path.
run memcheck-mma-graphs timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='CudaKernels.MatmulGivesEachInputRowTheSameBitsAloneAndInABatch:Cuda.GraphsReplayTheDirectLaunchesBitForBit'
BENCH="$BUILD/bench/native/lookahead_native_bench"
run bench-tinyllama "$BENCH" --shape tinyllama-1.1b --backend cuda --context 1024 --json "$RESULTS/bench-tinyllama.json"
# With CUDA graphs (one launch per forward pass instead of a few hundred).
run bench-tinyllama-graphs env LK_CUDA_GRAPHS=1 "$BENCH" --shape tinyllama-1.1b --backend cuda --context 1024 \
  --json "$RESULTS/bench-tinyllama-graphs.json"
run bench-llama2-7b "$BENCH" --shape llama2-7b --backend cuda --context 1024 --json "$RESULTS/bench-llama2-7b.json"
# The same with BF16 products on the CUDA-core kernel instead of the tensor cores, for comparison.
run bench-llama2-7b-simt env LK_CUDA_MATMUL=simt "$BENCH" --shape llama2-7b --backend cuda --context 1024 \
  --json "$RESULTS/bench-llama2-7b-simt.json"
grep -E "^(==> bench|shape|device copy|greedy step|forward cost|stages at)" "$LOG" | sed '/^==>/s/: .*//; s/^/    /' >> "$SUMMARY"
# Per-kernel times of about one greedy step at tinyllama shape (after the prefill's launches).
run ncu-kernels timeout 300 ncu --clock-control none --launch-skip 2400 --launch-count 300 --print-summary per-kernel \
  --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  "$BENCH" --shape tinyllama-1.1b --backend cuda --context 1024 --steps 4
sed -n '/==PROF==/,$p' "$LOG" | grep -E "^\s+[a-z_]+.*\(|gpu__time_duration|dram__throughput" | head -60 > "$RESULTS/ncu-kernels.txt"
# End to end through the managed layer, when a self-contained CLI was published into .gpu/cli beforehand
# (dotnet publish src/Lookahead.Cli -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -o .gpu/cli):
# lookahead vs greedy on the CUDA backend over the bundled prompts; any differing output fails the step.
if [ -x "$ROOT/.gpu/cli/Lookahead.Cli" ]; then
  export LOOKAHEAD_NATIVE_LIBRARY="$BUILD/native/liblookahead.so"
  run dotnet-bench-cuda "$ROOT/.gpu/cli/Lookahead.Cli" bench --backend cuda --decoding-length 8,16,64 --max-tokens 128 \
    --out "$RESULTS/dotnet-bench"
  run dotnet-bench-cuda-graphs env LK_CUDA_GRAPHS=1 "$ROOT/.gpu/cli/Lookahead.Cli" bench --backend cuda --decoding-length 8 \
    --max-tokens 128 --out "$RESULTS/dotnet-bench-graphs"
  grep -E "^(==> dotnet| *(greedy|lookahead) .* all )" "$LOG" | sed '/^==>/s/: .*//; s/^/    /' >> "$SUMMARY"
fi
run hf-baseline env PYTHONUNBUFFERED=1 python3 "$ROOT/bench/gpu/hf_baseline.py" --shape llama2-7b --context 1024 --out "$RESULTS/hf.json"
[ -f "$RESULTS/hf.json" ] && sed 's/^/    /' "$RESULTS/hf.json" >> "$SUMMARY"
echo "summary: $SUMMARY"
