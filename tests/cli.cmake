# The command line's shared option handling: --name=value, NaN/infinite values refused,
# one-line errors (runs $IGNIS_BIN).
ignis_test(test_cli_options SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_options.c TIMEOUT 30) # ~1 s
add_dependencies(test_cli_options ignis_cli)
