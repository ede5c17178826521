# Compute backends' host-side behaviour that needs no device (engine/backend, kernels/ bookkeeping).
ignis_test(test_cpu_backend_errors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/backend/test_cpu_backend_errors.c TIMEOUT 60)
