# Configuration only through the API: the CLI's mapping of environment variables onto
# ignis_engine_opts, and a check that the library itself calls getenv nowhere.
ignis_test(test_cli_env_opts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/config/test_cli_env_opts.c
           ${CMAKE_SOURCE_DIR}/engine/cli/env_opts.c TIMEOUT 60)
add_test(NAME test_library_reads_no_environment
         COMMAND sh -c "! grep -rnE '\\bgetenv[[:space:]]*\\(' engine kernels --include=*.c --include=*.h --include=*.cu --include=*.cuh | grep -v '^engine/cli/'"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_library_reads_no_environment PROPERTIES TIMEOUT 30)
