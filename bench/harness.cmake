# The benchmark harness behind `ignis bench` (bench/harness/): a static library over the
# public API, linked into the CLI (engine/cli/cmd_bench.c hands it argc/argv) and into the
# harness' tests (tests/bench.cmake).
file(GLOB IGNIS_HARNESS_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/harness/*.c)
add_library(ignis_harness STATIC ${IGNIS_HARNESS_SOURCES})
target_include_directories(ignis_harness PUBLIC ${CMAKE_SOURCE_DIR}/bench/harness)
target_compile_definitions(ignis_harness PRIVATE _GNU_SOURCE)
target_compile_options(ignis_harness PRIVATE ${IGNIS_WARN})
# The commit a report names, taken at every build (git describe, "-dirty" for local edits):
# bench/harness/git_commit.cmake rewrites the header only when it changes.
add_custom_target(ignis_git_commit
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${CMAKE_BINARY_DIR}/generated/git_commit.h
          -P ${CMAKE_SOURCE_DIR}/bench/harness/git_commit.cmake
  BYPRODUCTS ${CMAKE_BINARY_DIR}/generated/git_commit.h)
add_dependencies(ignis_harness ignis_git_commit)
target_include_directories(ignis_harness PRIVATE ${CMAKE_BINARY_DIR}/generated)
target_include_directories(ignis_harness PRIVATE ${CSV_INCLUDE})
target_link_libraries(ignis_harness PUBLIC ignis ${CSV_LIB} PkgConfig::CURL PkgConfig::JANSSON Threads::Threads m)
target_link_libraries(ignis_cli PRIVATE ignis_harness)
