#!/usr/bin/env bash
# The harness issue's GPU report, in stages that each fit one device call:
#
#   bash bench/gpu_report.sh prep   # build ignis and llama.cpp (llama-server), write the
#                                   # random llama2-7b GGUF, run `ctest -L gpu`, smoke-test
#                                   # llama-server through `ignis bench serving`
#   bash bench/gpu_report.sh ignis  # generation grid; ShareGPT replay in process and through
#                                   # `ignis serve` at concurrency 8, 64, 256, three times each
#   bash bench/gpu_report.sh llama  # the same replay against llama-server (same model shape,
#                                   # same token ids), three times (see the stage for its slots)
#   bash bench/gpu_report.sh build         # only ignis' build (JOBS, default 16)
#   bash bench/gpu_report.sh llama-build   # only llama.cpp's build and the GGUF
#   bash bench/gpu_report.sh ceiling       # the HTTP client's ceiling against the stand-in
#   bash bench/gpu_report.sh profile       # bench/profile_gpu.sh (the profiling issue's checks)
#   bash bench/gpu_report.sh profile-test  # test_profile_gpu alone
#
# Every stage first records the GPU's copy bandwidth and fp16 GEMM peak (kernel_bench), so
# figures can be given as a share of the ceiling measured in the same call. Results go to
# $R (default reports/gpu): report CSVs with per-request and timeline CSVs, logs.
# Environment: B (ignis build dir, default build-gpu), R, IGNIS_ASSETS (../shared/assets),
# IGNIS_PEERS (../shared/peers: llama.cpp's source tarball), IGNIS_GPU_WORK (/tmp/ignis-gpu:
# llama.cpp's build and the 13.5 GB GGUF), MODEL (synthetic:llama2-7b), NUM_PROMPTS (256),
# CONC (8,64,256), REPS (3), LLAMA_POINTS (concurrency:slot tokens, '8:1152 64:1152 256:512'),
# SNAP (a tarball of $R refreshed after each llama point).
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: bench/gpu_report.sh STAGE (see the header)}
B=${B:-build-gpu}
R=${R:-reports/gpu}
A=${IGNIS_ASSETS:-../shared/assets}
P=${IGNIS_PEERS:-../shared/peers}
W=${IGNIS_GPU_WORK:-/tmp/ignis-gpu}
N=${NUM_PROMPTS:-256}
CONC=${CONC:-8,64,256}
REPS=${REPS:-3}
M=${MODEL:-synthetic:llama2-7b}
# 256 sequences per step, as llama-server's 256 slots (ignis' default is LMDeploy's 128)
ENG=(--max-batch-size 256)
I=$B/ignis
GGUF=$W/llama2-7b-random.gguf
LCPP=$W/lcpp/build/bin
mkdir -p "$R" "$W"

# ShareGPT prompts (tokenized with Llama-2's tokenizer, sent as ids), 128 output tokens each;
# 8 unmeasured requests first (the first run after a server start was the slowest of three)
WL=(--dataset sharegpt --dataset-path "$A/workloads/ShareGPT_V3_with_answers_1489.json" --tokenizer "$A/tokenizers/llama2"
  --num-prompts "$N" --output-len 128 --concurrency "$CONC" --warmup 8 --no-progress)

run() {
  echo "+ $*" >&2
  "$@"
}

# 200 when the server answers /health (no curl: the carried libraries can break it)
wait_health() {
  for _ in $(seq "${2:-240}"); do
    env -u LD_LIBRARY_PATH python3 -c "import urllib.request as u; u.urlopen('$1', timeout=2)" 2>/dev/null && return 0
    sleep 1
  done
  echo "no answer from $1" >&2
  return 1
}

peaks() {
  "$B/kernel_bench" --only sample --reps 5 2>&1 | grep -E "^(device|peaks)" | tee "$R/peaks-$stage.txt"
}

build_ignis() {
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a >"$R/cmake.log" 2>&1 &&
    cmake --build "$B" -j "${1:-16}" >>"$R/cmake.log" 2>&1 || {
    grep -E "error|FAILED" "$R/cmake.log" | head -20
    return 1
  }
}

build_llama() {
  [ -d "$W/lcpp" ] || tar xzf "$P"/llama.cpp-*.tar.gz -C "$W" || return 1
  nice cmake -S "$W/lcpp" -B "$W/lcpp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF &&
    nice cmake --build "$W/lcpp/build" -j 10 --target llama-server llama-batched-bench
}

write_gguf() {
  [ -d "$W/lcpp" ] || tar xzf "$P"/llama.cpp-*.tar.gz -C "$W" || return 1
  # numpy and PyYAML come with the device's PyTorch + transformers; gguf-py with llama.cpp
  PYTHONPATH=$W/lcpp/gguf-py env -u LD_LIBRARY_PATH python3 workloads/random_gguf.py \
    "$A/llama.cpp-vocab/ggml-vocab-llama-spm.gguf" "$GGUF.tmp" && mv "$GGUF.tmp" "$GGUF"
}

# --cache-ram 0: llama-server's host-RAM prompt cache (on by default, 8 GiB) copies a finished
# slot's KV (70-575 MiB here) to host memory on the main loop before the slot takes its next
# request; with distinct prompts that only stalls every running stream (the first H200 runs
# with it: 744 tok/s at concurrency 64, where llama-batched-bench decodes 6,868 tok/s at 64).
# Prefix reuse inside a slot's KV (--cache-prompt, as ignis' prefix cache) stays on.
start_llama_server() { # SLOTS CTX
  "$LCPP/llama-server" -m "$GGUF" -ngl 99 -fa on -np "$1" -c "$2" --cache-ram 0 --metrics --host 127.0.0.1 --port 8080 \
    >"$R/llama-server-np$1.log" 2>&1 &
  server=$!
  wait_health http://127.0.0.1:8080/health
}

# `ignis serve` on $M, then the replay through it REPS times (extra flags after NAME);
# reports to $R/replay-NAME.csv (one for all the runs of a stage's point list)
replay_ignis_server() { # NAME [bench flags...]
  local name=$1
  shift
  "$I" serve api_server "$M" "${ENG[@]}" --server-name 127.0.0.1 --server-port 23333 --no-access-log \
    >"$R/$name.log" 2>&1 &
  server=$!
  wait_health http://127.0.0.1:23333/health || return 1
  for k in $(seq "$REPS"); do
    run timeout 150 "$I" bench serving --base-url http://127.0.0.1:23333 --send-ids --scrape-metrics "${WL[@]}" "$@" \
      --output "$R/replay-${name%-c[0-9]*}.csv" --requests-csv "$R/$name-r$k-req.csv" \
      --timeline-csv "$R/$name-r$k-tl.csv" | grep -E "^(==|Output token)"
  done
  kill $server
  wait $server 2>/dev/null
}

case $stage in
prep)
  tar xzf "$P"/llama.cpp-*.tar.gz -C "$W" || exit 1
  (build_llama >"$R/lcpp-build.log" 2>&1 && echo "llama.cpp built" || echo "llama.cpp build FAILED") &
  lb=$!
  (write_gguf >"$R/gguf.log" 2>&1 && echo "GGUF written" || echo "GGUF FAILED") &
  gg=$!
  build_ignis 6 || exit 1
  peaks
  (cd "$B" && timeout 240 ctest -L gpu -E profile --output-on-failure) >"$R/ctest.log" 2>&1
  echo "ctest -L gpu: rc=$?"
  grep -E "tests passed|Failed|\*\*\*" "$R/ctest.log"
  wait $lb $gg
  tail -3 "$R/gguf.log"
  ls -l "$GGUF" || exit 1
  start_llama_server 8 9216 || {
    tail -20 "$R/llama-server-np8.log"
    exit 1
  }
  run "$I" bench serving --base-url http://127.0.0.1:8080 --model llama2-7b --send-ids "${WL[@]}" \
    --num-prompts 16 --concurrency 8 --output "$R/smoke-llama-server.csv"
  kill $server
  wait $server 2>/dev/null
  ;;
ignis)
  [ -x "$I" ] || build_ignis 16 || exit 1
  peaks
  run timeout 120 "$I" bench generation --model "$M" -b 1,8,64 -p 128,512 -n 128 -r 3 --no-progress \
    --output "$R/generation.csv"
  for k in $(seq "$REPS"); do
    run timeout 150 "$I" bench throughput --model "$M" "${ENG[@]}" "${WL[@]}" --output "$R/replay-inproc.csv" \
      --requests-csv "$R/inproc-r$k-req.csv" --timeline-csv "$R/inproc-r$k-tl.csv" | grep -E "^(==|Output token)"
  done
  replay_ignis_server ignis-server || exit 1
  ;;
build)
  build_ignis "${JOBS:-16}" || exit 1
  ;;
llama-build)
  # llama.cpp and the GGUF only (to overlap with other work of the same call)
  tar xzf "$P"/llama.cpp-*.tar.gz -C "$W" || exit 1
  [ -f "$GGUF" ] || write_gguf >"$R/gguf.log" 2>&1 &
  [ -x "$LCPP/llama-server" ] || build_llama >"$R/lcpp-build.log" 2>&1 || {
    tail -5 "$R/lcpp-build.log"
    exit 1
  }
  wait
  [ -f "$GGUF" ] || exit 1
  echo "llama.cpp and $GGUF ready"
  ;;
llama)
  [ -x "$I" ] || build_ignis 16 || exit 1
  [ -x "$LCPP/llama-server" ] || build_llama >"$R/lcpp-build.log" 2>&1 || exit 1
  [ -f "$GGUF" ] || write_gguf >"$R/gguf.log" 2>&1 || exit 1
  peaks
  # the generation grid's counterpart: prefill (S_PP) and decode (S_TG) of static batches
  [ -x "$LCPP/llama-batched-bench" ] &&
    run timeout 150 "$LCPP/llama-batched-bench" -m "$GGUF" -ngl 99 -fa on -c 40960 -b 2048 -ub 512 \
      -npp 128,512 -ntg 128 -npl 1,8,64 2>&1 | grep -E "^\|" | tee "$R/llama-batched-bench.txt"
  # llama-server gives each of its -np slots a fixed share of -c; its unified pool (-kvu)
  # lets a sequence's attention span the whole pool. So each point gets its own server
  # without -kvu, -np = concurrency, a slot of 1,152 tokens (the longest ShareGPT prompt
  # kept, 1,024, + 128) where the KV fits on the GPU; at 256 slots it does not (144 GiB),
  # so that point runs with slots of 512 and prompts cut to 384 tokens — and ignis is
  # measured on that same workload through its server. Each point runs REPS times with
  # --scrape-metrics and once without (the scrape's cost: llama-server answers /metrics
  # between its decode steps).
  for pt in ${LLAMA_POINTS:-8:1152 64:1152 256:512}; do
    c=${pt%%:*} slot=${pt##*:}
    CUT=(--concurrency "$c" --max-prompt-len $((slot - 128)))
    start_llama_server "$c" $((c * slot)) || exit 1
    for k in $(seq "$REPS"); do
      run timeout 200 "$I" bench serving --base-url http://127.0.0.1:8080 --model llama2-7b --send-ids --scrape-metrics \
        "${WL[@]}" "${CUT[@]}" --output "$R/replay-llama-server.csv" \
        --requests-csv "$R/llama-server-c$c-r$k-req.csv" --timeline-csv "$R/llama-server-c$c-r$k-tl.csv" |
        grep -E "^(==|Output token)"
    done
    run timeout 200 "$I" bench serving --base-url http://127.0.0.1:8080 --model llama2-7b --send-ids "${WL[@]}" \
      "${CUT[@]}" --output "$R/replay-llama-server-noscrape.csv" | grep -E "^(==|Output token)"
    kill $server
    wait $server 2>/dev/null
    [ -n "${SNAP:-}" ] && tar czf "$SNAP" "$R"
    if [ "$slot" -lt 1152 ]; then
      replay_ignis_server "ignis-server-cut-c$c" "${CUT[@]}" || exit 1
      [ -n "${SNAP:-}" ] && tar czf "$SNAP" "$R"
    fi
  done
  ;;
ceiling)
  # the client's ceiling on this machine: the tests' stand-in streams as fast as it can
  "$B/tests/bench_standin_server" --port 0 --tokens-per-chunk 1 >"$R/standin.port" 2>&1 &
  server=$!
  sleep 1
  port=$(awk '/^port/ {print $2; exit}' "$R/standin.port")
  for k in $(seq "$REPS"); do
    run timeout 120 "$I" bench serving --base-url "http://127.0.0.1:$port" --tokenizer "$A/tokenizers/llama2" \
      --num-prompts 4000 --random-input-len 16 --output-len 256 --concurrency 256 --no-progress \
      --output "$R/client-ceiling.csv" | grep -E "^(==|Output token|Request)"
  done
  kill $server
  wait $server 2>/dev/null
  ;;
profile-test)
  [ -x "$I" ] || build_ignis "${JOBS:-16}" || exit 1
  (cd "$B" && timeout 120 ctest -R test_profile_gpu --output-on-failure) >"$R/profile-test.log" 2>&1
  echo "test_profile_gpu: rc=$?"
  grep -E "PASS|FAIL|overhead" "$R/profile-test.log"
  ;;
profile)
  # the profiling issue's checks and profiled reports (bench/profile_gpu.sh)
  [ -x "$I" ] || build_ignis 16 || exit 1
  timeout 300 bash bench/profile_gpu.sh "$B" "$R/prof" >"$R/prof.log" 2>&1
  echo "profile_gpu.sh: rc=$?"
  grep -E "PASS|FAIL|overhead|tok/s|ns per|Output token" "$R/prof.log" | head -40
  ;;
*)
  echo "bench/gpu_report.sh: unknown stage '$stage' (see the header)" >&2
  exit 2
  ;;
esac
