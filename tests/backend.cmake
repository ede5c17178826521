# Compute backends' host-side behaviour that needs no device (engine/backend, kernels/ bookkeeping).
ignis_test(test_cpu_backend_errors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/backend/test_cpu_backend_errors.c TIMEOUT 60)
ignis_test(test_kernel_dev_flags SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/backend/test_kernel_dev_flags.c TIMEOUT 60)
target_include_directories(test_kernel_dev_flags PRIVATE ${CMAKE_SOURCE_DIR}/kernels)
find_package(Threads REQUIRED)
target_link_libraries(test_kernel_dev_flags PRIVATE Threads::Threads)
