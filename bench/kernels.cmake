# CUDA benchmarks (built only with the CUDA backend): kernel_bench times every kernel and
# GEMM shape of Llama-2-7B with CUDA events; e2e_bench times prefill and batch-1 decode
# through the public API.
if(IGNIS_HAVE_CUDA)
  add_executable(e2e_bench ${CMAKE_SOURCE_DIR}/bench/e2e_bench.c ${CMAKE_SOURCE_DIR}/engine/cli/env_opts.c)
  target_compile_options(e2e_bench PRIVATE ${IGNIS_WARN})
  target_compile_definitions(e2e_bench PRIVATE _GNU_SOURCE)
  target_include_directories(e2e_bench PRIVATE ${CMAKE_SOURCE_DIR}/engine)
  target_link_libraries(e2e_bench PRIVATE ignis)
  set_target_properties(e2e_bench PROPERTIES LINKER_LANGUAGE CUDA)
  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/kernel_bench.cu)
    add_executable(kernel_bench ${CMAKE_SOURCE_DIR}/bench/kernel_bench.cu)
    target_include_directories(kernel_bench PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/kernels)
    target_compile_options(kernel_bench PRIVATE --expt-relaxed-constexpr -lineinfo)
    target_link_libraries(kernel_bench PRIVATE ignis)
  endif()
endif()
