#!/usr/bin/env bash
# The GPU device check, in one call on the GPU machine (nvcc, cmake, PyTorch + transformers; no dotnet,
# no network). Run from the repository root with the googletest source carried in .gpu/googletest (and
# optionally the test runner, CLI and .NET runtime in .gpu/*.tar.xz), made by bench/gpu/prepare.sh here:
#   bash bench/gpu/check.sh            (results in $OUT, else in ./gpu-results)
# Steps: build the native library for sm_90 with CUDA; native tests (CPU and CUDA: each kernel family's
# harness in tests/native/cuda/, the backend once per kernel variant, the device sampler against the CPU's);
# compute-sanitizer memcheck and racecheck on small cases; each kernel family's benchmark and the sampler's
# cost per node; the native benchmark at llama2-7b (also without CUDA graphs, and with the shared-prefix
# attention kernel), tinyllama-1.1b and stories260K shapes; per-kernel times from Nsight Compute at llama2-7b (for
# PROFILE.md); the NUnit `Gpu` category and lookahead vs greedy through the managed CLI on both backends
# (if packed into .gpu); the HF transformers baseline. Writes check.md (summary), check.log (everything) and the JSON results.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The device tool returns at most 8 files from $OUT: there the results are packed into results.tar.gz at exit,
# and check.md and check.log are written there as the steps go, so a run cut short still returns them;
# elsewhere everything stays in ./gpu-results.
if [ -n "${OUT:-}" ]; then
  RESULTS=/tmp/lk-gpu-results
  LOG="$OUT/check.log"
  SUMMARY="$OUT/check.md"
  trap 'cp "$SUMMARY" "$LOG" "$RESULTS/" 2>/dev/null; tar -C "$(dirname "$RESULTS")" -czf "$OUT/results.tar.gz" "$(basename "$RESULTS")"' EXIT
else
  RESULTS="$ROOT/gpu-results"
  LOG="$RESULTS/check.log"
  SUMMARY="$RESULTS/check.md"
fi
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
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
# The backend tests above ran once per kernel variant (Variants/Cuda.*/default, direct_launches,
# shared_prefix_attention, simt_matmul), so a graph failure can be told from a kernel failure.
run memcheck compute-sanitizer --tool memcheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='Variants/Cuda.VerificationBreaksExactTiesToTheLowestId/*:CudaContext.ReportsTheDeviceInSystemInfo'
# racecheck takes ~20 s per case: the default kernels and the shared-prefix attention (its shared memory).
run racecheck compute-sanitizer --tool racecheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='Variants/Cuda.VerificationBreaksExactTiesToTheLowestId/default:Variants/Cuda.VerificationBreaksExactTiesToTheLowestId/shared_prefix_attention'
# The tensor-core kernel's shared-memory staging and split-column sums, and the CUDA graph path.
run racecheck-mma timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='CudaMatmul.TensorCoreMatmulStagesManyInputsExactly:CudaAttention.TreeAttentionOfSmallBatchesForTheSanitizers'
run memcheck-mma-graphs timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='CudaMatmul.TensorCoreMatmulStagesManyInputsExactly:CudaAttention.TreeAttentionOfSmallBatchesForTheSanitizers:CudaContext.GraphsReplayTheDirectLaunchesBitForBit'
# The device sampler's shared-memory histograms and block reductions.
run racecheck-sampler timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='CudaSampler.DeviceSamplerOfSmallTreesForTheSanitizers'
run memcheck-sampler timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$TESTS" \
  --gtest_filter='CudaSampler.DeviceSamplerOfSmallTreesForTheSanitizers:Variants/Cuda.SampledDraftTreeStepsReproducePlainSampling/default'
# Each kernel family at llama2-7b's shapes against the copy rate (bench/native/cuda/).
run kernel-bench timeout 120 "$BUILD/bench/native/lookahead_cuda_kernel_bench"
sed -n '/==> kernel-bench/,/^==>/p' "$LOG" | grep -v '^==>' | sed 's/^/    /' >> "$SUMMARY"
# The sampler's cost per node, CPU and device (vocab 32,000 and 128,256; a 16-node tree in one launch).
run sampler-bench "$BUILD/bench/native/lookahead_sampler_bench"
sed -n '/==> sampler-bench/,/^==>/p' "$LOG" | grep -v '^==>' | sed 's/^/    /' >> "$SUMMARY"
BENCH="$BUILD/bench/native/lookahead_native_bench"
run bench-llama2-7b "$BENCH" --shape llama2-7b --backend cuda --context 1024 --json "$RESULTS/bench-llama2-7b.json"
# The same without CUDA graphs (a few hundred launches per step instead of one).
run bench-llama2-7b-direct "$BENCH" --shape llama2-7b --backend cuda --context 1024 --cuda-graphs off \
  --json "$RESULTS/bench-llama2-7b-direct.json"
run bench-llama2-7b-shared-attention "$BENCH" --shape llama2-7b --backend cuda --context 1024 --cuda-attention shared-prefix \
  --json "$RESULTS/bench-llama2-7b-shared-attention.json"
run bench-tinyllama "$BENCH" --shape tinyllama-1.1b --backend cuda --context 1024 --json "$RESULTS/bench-tinyllama.json"
# Host overhead of a small model's step (the device time is measured with CUDA events).
run bench-stories260K "$BENCH" --shape stories260K --dtype f32 --backend cuda --context 256 --json "$RESULTS/bench-stories260K.json"
grep -E "^(==> bench|shape|device copy|greedy step|forward cost|stages at)" "$LOG" | sed '/^==>/s/: .*//; s/^/    /' >> "$SUMMARY"
# The managed layer (the NUnit suite as its own executable, and the CLI), when bench/gpu/prepare.sh packed
# it with a .NET runtime into .gpu: the `Gpu` NUnit category, then lookahead vs greedy on the CUDA backend
# over the bundled prompts (any differing output fails the step).
if [ -f "$ROOT/.gpu/app.tar.xz" ] && [ -f "$ROOT/.gpu/dotnet.tar.xz" ]; then
  mkdir -p /tmp/lk-dotnet /tmp/lk-app-root
  tar -C /tmp/lk-dotnet -xJf "$ROOT/.gpu/dotnet.tar.xz" && tar -C /tmp/lk-app-root -xJf "$ROOT/.gpu/app.tar.xz"
  export DOTNET_ROOT=/tmp/lk-dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  export LOOKAHEAD_NATIVE_LIBRARY="$BUILD/native/liblookahead.so"
  APP=/tmp/lk-app-root/app
  run nunit-gpu timeout 120 "$APP/Lookahead.Tests" --filter "TestCategory=Gpu" --no-progress
  grep -E "^(failed|skipped) |total:|failed:|succeeded:|skipped:" "$LOG" | tail -8 | sed 's/^/    /' >> "$SUMMARY"
  CLI=("$DOTNET_ROOT/dotnet" "$APP/Lookahead.Cli.dll")
  run dotnet-bench-cuda timeout 150 "${CLI[@]}" bench --backend cuda --decoding-length auto,8,16,64 --max-tokens 128 \
    --out "$RESULTS/dotnet-bench"
  run dotnet-bench-cuda-device-time timeout 120 "${CLI[@]}" bench --backend cuda --decoding-length auto,8 --max-tokens 128 \
    --device-time --out "$RESULTS/dotnet-bench-device-time"
  run dotnet-bench-cuda-shared-attention timeout 150 "${CLI[@]}" bench --backend cuda --cuda-attention shared-prefix \
    --decoding-length 8,16,64 --max-tokens 128 --out "$RESULTS/dotnet-bench-shared-attention"
  # Sampling on the device: every mode checked against plain sampling at each temperature.
  run dotnet-bench-cuda-sampled timeout 150 "${CLI[@]}" bench --backend cuda --temperature 0,0.8,1 --decoding-length auto,16 \
    --max-tokens 128 --out "$RESULTS/dotnet-bench-sampled"
  run dotnet-bench-cpu timeout 150 "${CLI[@]}" bench --backend cpu --decoding-length auto,8,16,64 --max-tokens 128 --out "$RESULTS/dotnet-bench-cpu"
  grep -E "^(==> dotnet| *(greedy|lookahead) .* all |host overhead)" "$LOG" | sed '/^==>/s/: .*//; s/^/    /' >> "$SUMMARY"
fi
# Per-kernel times and limits at llama2-7b shape for PROFILE.md: one greedy step and one 64-node tree step
# (the bench brackets them with cudaProfilerStart/Stop), launched directly so that each kernel is seen.
run ncu-7b timeout 180 ncu --clock-control none --profile-from-start off --print-summary per-kernel \
  --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed \
  "$BENCH" --shape llama2-7b --backend cuda --context 1024 --steps 4 --cuda-graphs off
sed -n '/==> ncu-7b/,$p' "$LOG" | sed -n '/==PROF==/,$p' | grep -E "^\s+[a-zA-Z_].*\(|gpu__time|dram__|sm__" | head -120 > "$RESULTS/ncu-7b.txt"
# Why the greedy step's products and attention stop short of the bandwidth: occupancy, warp stalls and
# memory traffic of their first launches in the profiled greedy step (the next optimization's inputs).
run ncu-7b-detail timeout 150 ncu --clock-control none --profile-from-start off \
  --kernel-name regex:'mma_kernel|attention_chunk|attention_shared' --launch-count 6 \
  --section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
  "$BENCH" --shape llama2-7b --backend cuda --context 1024 --steps 4 --cuda-graphs off
sed -n '/==> ncu-7b-detail/,$p' "$LOG" | sed -n '/==PROF==/,$p' | grep -vE '^==PROF==' | head -400 > "$RESULTS/ncu-7b-detail.txt"
run hf-baseline timeout 120 env PYTHONUNBUFFERED=1 python3 "$ROOT/bench/gpu/hf_baseline.py" --shape llama2-7b --context 1024 --out "$RESULTS/hf.json"
[ -f "$RESULTS/hf.json" ] && sed 's/^/    /' "$RESULTS/hf.json" >> "$SUMMARY"
echo "summary: $SUMMARY"
