# CUDA backend: each kernel vs its CPU twin, and end-to-end logits/ids vs the CPU backend.
# Label `gpu`; each suite exits 77 (skipped) when ig_cuda_device_count() == 0, so CI
# (nvcc, no GPU) builds them and skips.
if(IGNIS_HAVE_CUDA)
  set(CT ${CMAKE_CURRENT_SOURCE_DIR}/cuda)
  ignis_test(test_cuda_kernels SOURCES ${CT}/test_cuda_kernels.c LABELS gpu TIMEOUT 300)
  target_include_directories(test_cuda_kernels PRIVATE ${CMAKE_SOURCE_DIR}/kernels ${CT})
  ignis_test(test_cuda_e2e SOURCES ${CT}/test_cuda_e2e.c LABELS gpu TIMEOUT 600)
  target_include_directories(test_cuda_e2e PRIVATE ${CMAKE_SOURCE_DIR}/kernels ${CT})
  ignis_test(test_cuda_tp SOURCES ${CT}/test_cuda_tp.c LABELS gpu TIMEOUT 600)
  target_include_directories(test_cuda_tp PRIVATE ${CMAKE_SOURCE_DIR}/kernels ${CT})
  # no device needed: the knobs are checked before one is touched
  ignis_test(test_cuda_options SOURCES ${CT}/test_cuda_options.c TIMEOUT 60)
endif()
