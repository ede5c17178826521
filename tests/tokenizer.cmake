# Tokenizer suites: parity with llama.cpp's vectors and with the golden sets that
# tests/tokenizer/make_golden.py writes (HF tokenizers / sentencepiece), plus the API, the
# streaming decoder, error handling and `ignis tokenize`.
# The golden sets live in ${CMAKE_BINARY_DIR}/golden (or $IGNIS_GOLDEN_DIR at configure
# time); `cmake --build BUILD --target tokenizer_golden` (re)makes them.
set(IGNIS_GOLDEN_DIR "$ENV{IGNIS_GOLDEN_DIR}")
if(NOT IGNIS_GOLDEN_DIR)
  set(IGNIS_GOLDEN_DIR "${CMAKE_BINARY_DIR}/golden")
endif()

ignis_test(test_tokenizer_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer_golden.c TIMEOUT 120)
set_property(TEST test_tokenizer_golden APPEND PROPERTY ENVIRONMENT "IGNIS_GOLDEN_DIR=${IGNIS_GOLDEN_DIR}")

ignis_test(test_tokenizer_api SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer_api.c TIMEOUT 120) # ~6-30 s

find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  add_custom_target(tokenizer_golden
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer/make_golden.py --out ${IGNIS_GOLDEN_DIR}
            --assets ${IGNIS_TEST_ASSETS}
    COMMENT "golden tokenizer sets (needs pip: tokenizers sentencepiece transformers protobuf)"
    VERBATIM)
endif()
