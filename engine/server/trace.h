/* Hook points for profiler ranges around HTTP handling (issue 13 puts NVTX here). Today
 * they compile to nothing. */
#ifndef IG_SERVER_TRACE_H
#define IG_SERVER_TRACE_H

#define SRV_TRACE_PUSH(name) ((void)(name))
#define SRV_TRACE_POP() ((void)0)

#endif
