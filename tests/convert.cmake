# Converter, workspace format and online HF conversion (engine/convert, engine/model/workspace*).
ignis_test(test_convert SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_convert.c
           ${CMAKE_CURRENT_SOURCE_DIR}/test_convert_fixture.c TIMEOUT 90) # ~5-10 s
target_link_libraries(test_convert PRIVATE PkgConfig::JANSSON)
ignis_test(test_convert_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_convert_cli.c
           ${CMAKE_CURRENT_SOURCE_DIR}/test_convert_fixture.c TIMEOUT 30) # < 1 s
target_link_libraries(test_convert_cli PRIVATE PkgConfig::JANSSON)
