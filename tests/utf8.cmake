# ignis_utf8_sanitize: text that may hold invalid UTF-8 made fit for JSON (the server's and
# `generate --batch`'s replies), checked against jansson's own UTF-8 validation.
ignis_test(test_utf8_sanitize SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/utf8/test_utf8_sanitize.c TIMEOUT 60)
