# Fidelity of the CPU reference engine against Hugging Face transformers.
ignis_test(test_fidelity SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fidelity/test_fidelity.c TIMEOUT 120) # ~1-10 s
# The LMDeploy tutorial's command forms (chat/generate turbomind, --model-name, list, clear errors).
ignis_test(test_model_forms SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fidelity/test_model_forms.c TIMEOUT 300)
add_dependencies(test_model_forms ignis_cli)
# First-generation InternLM / Qwen config.json parsing and Qwen's long-context numbers.
ignis_test(test_arch_configs SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fidelity/test_arch_configs.c TIMEOUT 60)
