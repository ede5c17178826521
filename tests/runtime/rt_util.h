/* Helpers shared by the runtime suites: run a request to its end through the poll
 * stream and check what came back. */
#ifndef IG_TEST_RT_UTIL_H
#define IG_TEST_RT_UTIL_H

#include <stdint.h>

#include "ignis.h"

typedef struct rt_out {
    int32_t ids[4096];
    int n;
    int finish_reason; /* IGNIS_FINISH_ERROR on an ERROR event */
    ignis_status status;
    char error[512];
    char *text; /* concatenated event text (malloc'd) */
    size_t text_len;
} rt_out;

/* Default request parameters but for the prompt (n ids), max_new tokens and ignore_eos. */
ignis_request_params rt_params(const int32_t *prompt, int n, int max_new, bool ignore_eos);
/* Polls r until its last event; checks indices are 0, 1, 2, ... and times increase. */
void rt_collect(ignis_request *r, rt_out *o);
void rt_out_free(rt_out *o);
/* Called when rt_collect times out (a suite may dump its engine's state). */
extern void (*rt_on_stuck)(void);
/* Submits and collects one greedy request (helper for "alone" runs). */
void rt_run_one(ignis_engine *e, const int32_t *prompt, int n, int max_new, bool ignore_eos, rt_out *o);
/* Waits until the engine is idle (nothing running or waiting). */
void rt_wait_idle(ignis_engine *e);
/* Fails with expected/got when the id arrays differ. */
void rt_expect_ids(const char *what, const int32_t *want, int n_want, const int32_t *got, int n_got);

#endif
