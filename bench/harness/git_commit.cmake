# Run at every build (cmake -DSRC=... -DOUT=... -P git_commit.cmake): writes OUT, a header
# naming the commit the reports carry, and rewrites it only when that changed, so a commit
# (or a first edit after one) recompiles one file and nothing else.
# Without OUT, file(WRITE) below would take the header's text as a file name (a stray
# file named "#define IGNIS_GIT_COMMIT ..." once landed in the source tree that way).
if(NOT SRC OR NOT OUT)
  message(FATAL_ERROR "git_commit.cmake: run as cmake -DSRC=<source dir> -DOUT=<header> -P git_commit.cmake")
endif()
execute_process(COMMAND git describe --always --dirty --abbrev=12 WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT commit)
  set(commit "unknown")
endif()
set(text "#define IGNIS_GIT_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
