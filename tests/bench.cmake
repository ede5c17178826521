# The benchmark harness (`ignis bench`, bench/harness/):
#  - test_bench_stats:    percentiles, mean/stddev, TPOT/ITL/goodput, bootstrap CIs, the
#                         Poisson/gamma schedule, per-token times of multi-token SSE chunks;
#  - test_bench_datasets: ShareGPT/JSONL/multi-turn/random/sonnet loaders and their errors;
#  - test_bench_report:   CSV schema, append/refuse, atomic writes, quoting;
#  - test_bench_compare:  compare's exit codes on identical, noisy, regressed, invalid reports;
#  - test_bench_serving:  `bench serving` against a stand-in OpenAI server (multi-token chunks);
#  - test_bench_cli:      throughput/generation/default modes on synthetic:tiny, plots and the
#                         HTML page rendered in headless Chromium;
#  - test_bench_api_server: `bench serving` against `ignis serve api_server` (77 until it exists).
set(BT ${CMAKE_CURRENT_SOURCE_DIR}/bench)
add_executable(bench_standin_server ${BT}/standin_server.c)
target_compile_definitions(bench_standin_server PRIVATE _GNU_SOURCE)
target_compile_options(bench_standin_server PRIVATE ${IGNIS_WARN})
target_link_libraries(bench_standin_server PRIVATE PkgConfig::MHD PkgConfig::JANSSON)

foreach(t stats datasets report compare serving cli api_server)
  ignis_test(test_bench_${t} SOURCES ${BT}/test_bench_${t}.c ${BT}/bench_test_util.c TIMEOUT 600)
  target_link_libraries(test_bench_${t} PRIVATE ignis_harness)
  target_include_directories(test_bench_${t} PRIVATE ${BT})
  get_test_property(test_bench_${t} ENVIRONMENT _env)
  set_tests_properties(test_bench_${t} PROPERTIES ENVIRONMENT
                       "${_env};IGNIS_STANDIN=$<TARGET_FILE:bench_standin_server>")
  add_dependencies(test_bench_${t} bench_standin_server ignis_cli)
endforeach()
