#include "rt_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

void (*rt_on_stuck)(void) = NULL;

void rt_collect(ignis_request *r, rt_out *o)
{
    memset(o, 0, sizeof *o);
    double last_t = -1;
    /* sanitizer builds run slower: ctest passes their timeout scale (tests/CMakeLists.txt) */
    const char *scale_env = getenv("IGNIS_TEST_TIMEOUT_SCALE");
    int scale = scale_env && atoi(scale_env) > 0 ? atoi(scale_env) : 1;
    for (;;) {
        ignis_event ev;
        TU_CHECK(ignis_request_poll(r, &ev, 60000 * scale));
        if (ev.type == IGNIS_EVENT_NONE) {
            if (rt_on_stuck) rt_on_stuck();
            fail_msg("no event within %d s (request stuck?)", 60 * scale);
        }
        if (ev.time_s < last_t) fail_msg("event times go backwards: %f after %f", ev.time_s, last_t);
        last_t = ev.time_s;
        if (ev.text_len) {
            o->text = realloc(o->text, o->text_len + ev.text_len + 1);
            memcpy(o->text + o->text_len, ev.text, ev.text_len);
            o->text_len += ev.text_len;
            o->text[o->text_len] = 0;
        }
        if (ev.type == IGNIS_EVENT_TOKEN) {
            if (ev.index != o->n) fail_msg("token event index: expected %d, got %d", o->n, ev.index);
            if (o->n < (int)(sizeof o->ids / sizeof o->ids[0])) o->ids[o->n] = ev.token;
            o->n++;
        } else if (ev.type == IGNIS_EVENT_FINISHED) {
            o->finish_reason = ev.finish_reason;
            break;
        } else if (ev.type == IGNIS_EVENT_ERROR) {
            o->finish_reason = IGNIS_FINISH_ERROR;
            o->status = ev.status;
            snprintf(o->error, sizeof o->error, "%s", ev.error);
            break;
        }
    }
    ignis_event ev;
    if (ignis_request_poll(r, &ev, 0) != IGNIS_E_STATE) fail_msg("poll after the last event should be IGNIS_E_STATE");
    if (!o->text) o->text = calloc(1, 1);
}

void rt_out_free(rt_out *o)
{
    free(o->text);
    o->text = NULL;
}

ignis_request_params rt_params(const int32_t *prompt, int n, int max_new, bool ignore_eos)
{
    ignis_request_params p;
    ignis_request_params_init(&p);
    p.prompt_ids = prompt;
    p.n_prompt_ids = n;
    p.max_new_tokens = max_new;
    p.ignore_eos = ignore_eos;
    return p;
}

void rt_run_one(ignis_engine *e, const int32_t *prompt, int n, int max_new, bool ignore_eos, rt_out *o)
{
    ignis_request_params p = rt_params(prompt, n, max_new, ignore_eos);
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(e, &p, &r));
    rt_collect(r, o);
    ignis_request_release(r);
}

void rt_wait_idle(ignis_engine *e)
{
    for (int i = 0; i < 30000; i++) {
        ignis_engine_stats st;
        TU_CHECK(ignis_engine_get_stats(e, &st));
        if (st.running == 0 && st.waiting == 0) return;
        usleep(1000);
    }
    fail_msg("engine not idle after 30 s");
}

void rt_expect_ids(const char *what, const int32_t *want, int n_want, const int32_t *got, int n_got)
{
    int n = n_want < n_got ? n_want : n_got;
    for (int i = 0; i < n; i++)
        if (want[i] != got[i])
            fail_msg("%s: ids differ at %d of %d/%d: expected %d, got %d", what, i, n_want, n_got, want[i], got[i]);
    if (n_want != n_got) fail_msg("%s: expected %d ids, got %d", what, n_want, n_got);
}
