# Model descriptions and the workspace loader (engine/model).
ignis_test(test_workspace_alignment SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model/test_workspace_alignment.c
           ${CMAKE_CURRENT_SOURCE_DIR}/test_convert_fixture.c TIMEOUT 60)
target_link_libraries(test_workspace_alignment PRIVATE PkgConfig::JANSSON)
