# Runtime (scheduler, block manager, prefix cache, request API).
#  - test_runtime_kv:     block manager and prefix cache alone;
#  - test_runtime_sched:  the scheduler on a fake backend (bookkeeping, sessions, cancels,
#                         output text and stop words with the stories260K tokenizer);
#  - test_runtime_stress: 1,000 random requests with random cancels (also under valgrind
#                         when it is installed and the build is not sanitized);
#  - test_runtime_model:  real models on the CPU backend, and once more with
#                         IGNIS_TEST_BACKEND=cuda under the `gpu` label (77 without a device);
#  - test_runtime_cli:    `ignis generate` (one prompt, and --batch).
set(RT ${CMAKE_CURRENT_SOURCE_DIR}/runtime)
add_library(ignis_rt_testutil STATIC ${RT}/fake_backend.c ${RT}/rt_util.c)
target_compile_options(ignis_rt_testutil PRIVATE ${IGNIS_WARN})
target_include_directories(ignis_rt_testutil PUBLIC ${RT})
target_link_libraries(ignis_rt_testutil PUBLIC ignis_testutil m)

ignis_test(test_runtime_kv SOURCES ${RT}/test_runtime_kv.c TIMEOUT 30) # < 1 s
ignis_test(test_runtime_sched SOURCES ${RT}/test_runtime_sched.c TIMEOUT 60) # ~1 s
target_link_libraries(test_runtime_sched PRIVATE ignis_rt_testutil)
ignis_test(test_runtime_stress SOURCES ${RT}/test_runtime_stress.c TIMEOUT 120) # ~15 s
target_link_libraries(test_runtime_stress PRIVATE ignis_rt_testutil)
ignis_test(test_runtime_model SOURCES ${RT}/test_runtime_model.c TIMEOUT 120) # ~16 s
target_link_libraries(test_runtime_model PRIVATE ignis_rt_testutil)
ignis_test(test_runtime_cli SOURCES ${RT}/test_runtime_cli.c TIMEOUT 30) # ~1 s
target_link_libraries(test_runtime_cli PRIVATE ignis_rt_testutil)

get_test_property(test_runtime_model ENVIRONMENT IGNIS_RT_ENV)
add_test(NAME test_runtime_model_cuda COMMAND test_runtime_model)
set_tests_properties(test_runtime_model_cuda PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS gpu
                     ENVIRONMENT "${IGNIS_RT_ENV};IGNIS_TEST_BACKEND=cuda")

find_program(IGNIS_VALGRIND valgrind)
if(IGNIS_VALGRIND AND NOT IGNIS_SANITIZE)
  add_test(NAME test_runtime_stress_valgrind
           COMMAND ${IGNIS_VALGRIND} --error-exitcode=99 --suppressions=${CMAKE_CURRENT_SOURCE_DIR}/valgrind.supp
                   --leak-check=full --errors-for-leak-kinds=definite,indirect
                   --show-leak-kinds=definite,indirect $<TARGET_FILE:test_runtime_stress>)
  set_tests_properties(test_runtime_stress_valgrind PROPERTIES TIMEOUT 120 LABELS valgrind
                       ENVIRONMENT "${IGNIS_RT_ENV};IGNIS_STRESS_FAKE_ONLY=1")
endif()
