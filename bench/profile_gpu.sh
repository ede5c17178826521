#!/usr/bin/env bash
# The profiling issue's GPU run in one command: the profiler's GPU checks (CUPTI vs GPU-busy,
# NVML energy, the decode GEMV's GB/s vs kernel_bench, ncu finding the "decode step" NVTX
# range), the NVTX cost with no tool attached, and two profiled reports of
# synthetic:llama2-7b — decode at batch 1 and a ShareGPT replay at concurrency 256 — with
# their per-kernel and per-step CSVs; nsys over the batch-1 window when nsys is installed.
#
#   bash bench/profile_gpu.sh [BUILD_DIR=build] [OUT_DIR=reports/profile]
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
OUT=${2:-reports/profile}
ASSETS=${IGNIS_ASSETS:-../shared/assets}
mkdir -p "$OUT"
IGNIS=$B/ignis
run() { echo; echo "+ $*"; "$@"; }

run bash -c "cd '$B' && ctest -L gpu -R profile --output-on-failure -V 2>&1 | grep -E -v '^(UpdateCTestConfiguration|Test project|Constructing|Checking test|Parse|Add Test|test [0-9]+$)'"
run "$B/nvtx_bench"

# decode at batch 1: one request at a time, 512 tokens each
run "$IGNIS" bench throughput --model synthetic:llama2-7b --concurrency 1 --num-prompts 8 --random-input-len 128 \
  --random-output-len 512 --ignore-eos --kernels --output "$OUT/decode-b1.csv" --requests-csv "$OUT/decode-b1-req.csv" \
  --no-progress
# ShareGPT (answers give the output lengths) at concurrency 256
run "$IGNIS" bench throughput --model synthetic:llama2-7b --dataset sharegpt \
  --dataset-path "$ASSETS/workloads/ShareGPT_V3_with_answers_1489.json" --tokenizer "$ASSETS/tokenizers/llama2" \
  --num-prompts 1000 --concurrency 256 --kernels --output "$OUT/sharegpt-c256.csv" \
  --requests-csv "$OUT/sharegpt-c256-req.csv" --no-progress

if command -v nsys >/dev/null; then
  run nsys profile --force-overwrite true --capture-range=cudaProfilerApi --capture-range-end=stop -t cuda,nvtx,cublas \
    -o "$OUT/decode-b1" "$IGNIS" bench throughput --model synthetic:llama2-7b --concurrency 1 --num-prompts 2 \
    --random-output-len 64 --ignore-eos --profile-window --no-progress
  run nsys stats --report nvtx_sum --report cuda_gpu_kern_sum "$OUT/decode-b1.nsys-rep"
else
  echo "nsys not installed: the Nsight Systems capture is skipped"
fi
echo
echo "reports, per-kernel and per-step CSVs in $OUT/"
ls -l "$OUT"
