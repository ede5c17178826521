# Chat templates (Jinja parity with transformers, LMDeploy built-ins) and `ignis chat`.
ignis_test(test_chat_templates SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat/test_chat_templates.c TIMEOUT 120) # ~10-30 s
ignis_test(test_chat_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat/test_chat_cli.c TIMEOUT 60) # ~6 s
target_link_libraries(test_chat_cli PRIVATE util) # forkpty
add_dependencies(test_chat_cli ignis_cli)
ignis_test(test_chat_encode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat/test_chat_encode.c TIMEOUT 60) # ~2 s
