# ignis_tokbench: tokenizer encode throughput per family (compare with tokenizer_bench_hf.py).
add_executable(ignis_tokbench ${CMAKE_SOURCE_DIR}/bench/tokenizer_bench.c)
target_compile_options(ignis_tokbench PRIVATE ${IGNIS_WARN})
target_link_libraries(ignis_tokbench PRIVATE ignis)
if(IGNIS_HAVE_CUDA)
  set_target_properties(ignis_tokbench PROPERTIES LINKER_LANGUAGE CUDA)
endif()
