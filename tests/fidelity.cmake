# Fidelity of the CPU reference engine against Hugging Face transformers.
ignis_test(test_fidelity SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fidelity/test_fidelity.c TIMEOUT 60) # ~1 s
