# Profiler (engine/profile): the arithmetic on synthetic records and the API's clean "not
# available" path run on the CPU in CI; the GPU suite (label gpu, exit 77 without a device)
# checks CUPTI, NVML and the decode GEMV's GB/s against kernel_bench, and ncu_nvtx.sh finds
# the decode-step NVTX range with Nsight Compute.
set(PT ${CMAKE_CURRENT_SOURCE_DIR}/profile)
ignis_test(test_profile_math SOURCES ${PT}/test_profile_math.c TIMEOUT 60)
target_link_libraries(test_profile_math PRIVATE m)
ignis_test(test_profile_api SOURCES ${PT}/test_profile_api.c TIMEOUT 120)
if(IGNIS_HAVE_CUDA)
  ignis_test(test_profile_gpu SOURCES ${PT}/test_profile_gpu.c LABELS gpu TIMEOUT 900)
  add_test(NAME test_profile_ncu_nvtx COMMAND bash ${PT}/ncu_nvtx.sh $<TARGET_FILE:test_profile_gpu>)
  set_tests_properties(test_profile_ncu_nvtx PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS gpu)
endif()
# `ignis bench --kernels` on the CPU: NA profiling columns, the per-step CSV, TTFT parts
ignis_test(test_profile_bench SOURCES ${PT}/test_profile_bench.c ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_test_util.c
           TIMEOUT 300)
target_link_libraries(test_profile_bench PRIVATE ignis_harness)
target_include_directories(test_profile_bench PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
add_dependencies(test_profile_bench ignis_cli)
