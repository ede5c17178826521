# The OpenAI-compatible server (engine/server/), with stories260K on the CPU backend:
#  - test_server_http:   raw HTTP through libcurl against an in-process server on a free
#                        loopback port (endpoints, errors, limits, disconnects, sessions);
#  - test_server_openai: the official `openai` client and prometheus_client against
#                        `ignis serve api_server` (concurrency, seeds, SIGTERM); needs the
#                        venv .ci/test makes at build/.venv (77 without it, unless
#                        IGNIS_REQUIRE_ASSETS=1).
if(NOT CURL_FOUND)
  message(WARNING "libcurl not found: the server tests are not built")
  return()
endif()
set(SRV ${CMAKE_CURRENT_SOURCE_DIR}/server)
ignis_test(test_server_http SOURCES ${SRV}/test_server_http.c ${SRV}/srv_util.c TIMEOUT 300)
target_link_libraries(test_server_http PRIVATE PkgConfig::CURL)

add_test(NAME test_server_openai COMMAND sh ${SRV}/run_openai_tests.sh)
set_tests_properties(test_server_openai PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
  ENVIRONMENT "IGNIS_ASSETS_DEFAULT=${IGNIS_TEST_ASSETS};IGNIS_BIN=$<TARGET_FILE:ignis_cli>;IGNIS_VENV=${CMAKE_SOURCE_DIR}/build/.venv")
