# The benchmark harness behind `ignis bench` (bench/harness/): a static library over the
# public API, linked into the CLI (engine/cli/cmd_bench.c hands it argc/argv) and into the
# harness' tests (tests/bench.cmake).
file(GLOB IGNIS_HARNESS_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/harness/*.c)
add_library(ignis_harness STATIC ${IGNIS_HARNESS_SOURCES})
target_include_directories(ignis_harness PUBLIC ${CMAKE_SOURCE_DIR}/bench/harness)
target_compile_definitions(ignis_harness PRIVATE _GNU_SOURCE)
target_compile_options(ignis_harness PRIVATE ${IGNIS_WARN})
# The commit a report names: taken when CMake configures (re-run cmake after a commit, or
# the build of .ci/setup does it).
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                OUTPUT_VARIABLE IGNIS_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(IGNIS_GIT_COMMIT)
  set_property(SOURCE ${CMAKE_SOURCE_DIR}/bench/harness/report_fill.c APPEND PROPERTY COMPILE_DEFINITIONS
               IGNIS_GIT_COMMIT="${IGNIS_GIT_COMMIT}")
endif()
target_include_directories(ignis_harness PRIVATE ${CSV_INCLUDE})
target_link_libraries(ignis_harness PUBLIC ignis ${CSV_LIB} PkgConfig::CURL PkgConfig::JANSSON Threads::Threads m)
target_link_libraries(ignis_cli PRIVATE ignis_harness)
