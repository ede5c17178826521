# The sampler (engine/runtime/sampler.c) against an independent reference written from
# Hugging Face's definitions: chi-square over many draws and exact boundary cases.
ignis_test(test_sampler SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/test_sampler.c TIMEOUT 30) # < 1 s
