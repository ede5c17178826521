#!/usr/bin/env bash
# Nsight Compute finds ignis kernels by NVTX range: profiles a short decode inside
# --profile-window (test_profile_gpu --ncu-target; decode steps replay CUDA graphs) with only
# the "decode step" push/pop range included, and expects our decode kernels; a range that
# does not exist must match none (so the filter, not luck, selected them). Exit 77 without
# ncu, a GPU or counter permissions.
#   ncu_nvtx.sh PATH/test_profile_gpu        (NCU=/path/to/ncu to pick one)
set -uo pipefail
bin=${1:?usage: ncu_nvtx.sh PATH/test_profile_gpu}
NCU=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
[ -x "$NCU" ] || { echo "ncu not found: skipped"; exit 77; }
"$bin" --probe >/dev/null 2>&1
[ $? -eq 77 ] && { echo "no CUDA device: skipped"; exit 77; }

run() { # $1: NVTX include expression
  "$NCU" --nvtx --nvtx-include "$1" --profile-from-start off --launch-count 40 \
    --metrics gpu__time_duration.sum --csv "$bin" --ncu-target 2>&1
}
echo "+ $NCU --nvtx --nvtx-include \"decode step/\" --profile-from-start off --launch-count 40" \
  "--metrics gpu__time_duration.sum --csv $bin --ncu-target"
out=$(run "decode step/")
echo "$out" | tail -n 12
if echo "$out" | grep -q ERR_NVGPUCTRPERM; then
  echo "ncu has no permission for GPU performance counters: skipped"
  exit 77
fi
n=$(echo "$out" | grep -c -E 'k_gemv|k_attn_decode')
none=$(run "no such range/" | grep -c -E 'k_gemv|k_attn_decode')
echo "kernels profiled inside \"decode step\": $n rows; inside a range that does not exist: $none rows"
if [ "$n" -gt 0 ] && [ "$none" -eq 0 ]; then
  echo PASS
  exit 0
fi
# diagnosis only: the same with eager launches (no CUDA graphs)
eager=$(IGNIS_CUDA_GRAPHS=0 run "decode step/" | grep -c -E 'k_gemv|k_attn_decode')
echo "diagnosis: with IGNIS_CUDA_GRAPHS=0 (eager launches) the range selects $eager rows"
echo FAIL
exit 1
