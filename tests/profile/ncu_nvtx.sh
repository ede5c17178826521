#!/usr/bin/env bash
# Nsight Compute finds ignis kernels by NVTX range: profiles a short decode inside
# --profile-window (test_profile_gpu --ncu-target) with only the "decode step" range
# included, and expects our decode kernels; a range that does not exist must match none
# (so the filter, not luck, selected them). Exit 77 without ncu or a GPU.
#   ncu_nvtx.sh PATH/test_profile_gpu
set -uo pipefail
bin=${1:?usage: ncu_nvtx.sh PATH/test_profile_gpu}
NCU=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
[ -x "$NCU" ] || { echo "ncu not found: skipped"; exit 77; }
"$bin" --probe >/dev/null 2>&1; [ $? -eq 77 ] && { echo "no CUDA device: skipped"; exit 77; }

run() { # $1: NVTX include expression
  "$NCU" --nvtx --nvtx-include "$1" --profile-from-start off --launch-count 40 \
    --metrics gpu__time_duration.sum --csv "$bin" --ncu-target 2>&1
}
set -x
out=$(run "decode step/")
set +x
echo "$out" | tail -n 20
n=$(echo "$out" | grep -c -E 'k_gemv|k_attn_decode')
none=$(run "no such range/" | grep -c -E 'k_gemv|k_attn_decode')
echo "kernels profiled inside \"decode step\": $n rows; inside a missing range: $none rows"
[ "$n" -gt 0 ] && [ "$none" -eq 0 ] && { echo PASS; exit 0; }
echo FAIL; exit 1
