#include "runtime/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "runtime/engine_internal.h"

/* The request whose callback this thread is running, so release from inside the callback
 * does not wait for itself. */
static _Thread_local ignis_request *tl_in_callback;

void ignis_request_params_init(ignis_request_params *p)
{
    memset(p, 0, sizeof *p);
    ignis_sampling_init(&p->sampling);
    p->skip_special = true;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void request_free(ignis_request *r)
{
    for (ig_evnode *n = r->q_head, *nx; n; n = nx) {
        nx = n->next;
        free(n);
    }
    free(r->polled);
    for (int i = 0; i < r->n_stop_words; i++)
        free(r->stop_words[i]);
    free(r->stop_words);
    free(r->stop_ids);
    free(r->prompt);
    free(r->ids);
    free(r->times);
    free(r->text);
    free(r->error);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->cb_mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

ignis_status ig_request_new(const ignis_request_params *p, const int32_t *prompt, int n_prompt, bool has_text,
                            ignis_request **out)
{
    *out = NULL;
    ignis_request *r = calloc(1, sizeof *r);
    if (!r) return ig_err(IGNIS_E_NOMEM, "out of memory for a request");
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->cb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, false);
    r->sampling = p->sampling;
    r->max_new_tokens = p->max_new_tokens;
    r->ignore_eos = p->ignore_eos;
    r->skip_special = p->skip_special;
    r->session_id = p->session_id;
    r->session_rewind = p->session_rewind;
    r->priority = p->priority;
    r->on_event = p->on_event;
    r->user = p->user;
    r->has_text = has_text;
    r->t_admit = r->t_first = r->t_done = -1;
    bool ok = true;
    r->n_prompt = n_prompt;
    if (n_prompt > 0) {
        r->prompt = malloc(sizeof(int32_t) * (size_t)n_prompt);
        if (r->prompt)
            memcpy(r->prompt, prompt, sizeof(int32_t) * (size_t)n_prompt);
        else
            ok = false;
    }
    if (ok && p->n_stop_ids > 0) {
        r->stop_ids = malloc(sizeof(int32_t) * (size_t)p->n_stop_ids);
        if (r->stop_ids) {
            memcpy(r->stop_ids, p->stop_ids, sizeof(int32_t) * (size_t)p->n_stop_ids);
            r->n_stop_ids = p->n_stop_ids;
        } else {
            ok = false;
        }
    }
    if (ok && p->n_stop_words > 0) {
        r->stop_words = calloc((size_t)p->n_stop_words, sizeof(char *));
        if (!r->stop_words) ok = false;
        for (int i = 0; ok && i < p->n_stop_words; i++) {
            if (!(r->stop_words[i] = dupstr(p->stop_words[i])))
                ok = false;
            else
                r->n_stop_words = i + 1;
        }
    }
    if (!ok) {
        request_free(r);
        return ig_err(IGNIS_E_NOMEM, "out of memory for a request's parameters");
    }
    r->t_submit = ig_now();
    *out = r;
    return IGNIS_OK;
}

void ig_request_unref(ignis_request *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) request_free(r);
}

static bool append_text(ignis_request *r, const char *text, size_t len)
{
    if (!len) return true;
    if (r->text_len + len + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + len + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t) return false;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, text, len);
    r->text_len += len;
    r->text[r->text_len] = 0;
    return true;
}

/* Called with r->mu held; releases it. Delivers to the callback or the queue. */
static void deliver_unlock(ignis_request *r, const ignis_event *ev, const char *data, size_t len)
{
    if (r->on_event) {
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_lock(&r->cb_mu);
        if (!r->released) {
            ignis_event e = *ev;
            tl_in_callback = r;
            r->on_event(r->user, r, &e);
            tl_in_callback = NULL;
        }
        pthread_mutex_unlock(&r->cb_mu);
        return;
    }
    if (r->released) { /* nobody will poll */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    ig_evnode *n = malloc(sizeof *n + len + 1);
    if (!n) {
        /* Losing a token event would silently corrupt the stream: record the failure as
         * the request's error instead (the final event will carry it). */
        if (r->status == IGNIS_OK) {
            r->status = IGNIS_E_NOMEM;
            free(r->error);
            r->error = dupstr("out of memory queueing an event");
        }
        pthread_mutex_unlock(&r->mu);
        return;
    }
    n->next = NULL;
    n->ev = *ev;
    if (len) memcpy(n->data, data, len);
    n->data[len] = 0;
    if (ev->type == IGNIS_EVENT_ERROR)
        n->ev.error = n->data;
    else
        n->ev.text = n->data;
    if (r->q_tail)
        r->q_tail->next = n;
    else
        r->q_head = n;
    r->q_tail = n;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void ig_request_emit_token(ignis_request *r, int32_t id, int index, const char *text, size_t len, double now)
{
    pthread_mutex_lock(&r->mu);
    if (r->n_ids == r->cap_ids) {
        int cap = r->cap_ids ? r->cap_ids * 2 : 64;
        int32_t *ids = realloc(r->ids, sizeof(int32_t) * (size_t)cap);
        if (ids) r->ids = ids;
        double *tm = realloc(r->times, sizeof(double) * (size_t)cap);
        if (tm) r->times = tm;
        if (ids && tm) r->cap_ids = cap;
    }
    if (r->n_ids < r->cap_ids) {
        r->ids[r->n_ids] = id;
        r->times[r->n_ids] = now - r->t_submit;
        r->n_ids++;
    } else if (r->status == IGNIS_OK) {
        r->status = IGNIS_E_NOMEM;
        free(r->error);
        r->error = dupstr("out of memory recording generated tokens");
    }
    if (r->t_first < 0) r->t_first = now;
    if (!append_text(r, text, len) && r->status == IGNIS_OK) {
        r->status = IGNIS_E_NOMEM;
        free(r->error);
        r->error = dupstr("out of memory recording the output text");
    }
    ignis_event ev = {.type = IGNIS_EVENT_TOKEN,
                      .token = id,
                      .index = index,
                      .text = text ? text : "",
                      .text_len = len,
                      .time_s = now - r->t_submit};
    deliver_unlock(r, &ev, text, len);
}

/* The last event: the engine lets go (cancel becomes a no-op at once). A queued event
 * makes the request done now; a callback's only once the callback has returned, so a
 * waiter never sees "done" while its callback still runs. */
static void finish_locked_common(ignis_request *r, double now)
{
    r->t_done = now;
    r->engine = NULL;
    r->ended = true;
    if (!r->on_event) {
        r->done = true;
        pthread_cond_broadcast(&r->cv);
    }
}

static void mark_done_after_callback(ignis_request *r)
{
    if (!r->on_event) return;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void ig_request_emit_finish(ignis_request *r, ignis_finish_reason reason, const char *text, size_t len, double now)
{
    pthread_mutex_lock(&r->mu);
    if (r->status != IGNIS_OK) { /* an earlier allocation failure turns the end into an error */
        pthread_mutex_unlock(&r->mu);
        char msg[256];
        snprintf(msg, sizeof msg, "%s", r->error ? r->error : "out of memory");
        ig_request_emit_error(r, r->status, msg, now);
        return;
    }
    append_text(r, text, len);
    r->finish_reason = reason;
    finish_locked_common(r, now);
    ignis_event ev = {.type = IGNIS_EVENT_FINISHED,
                      .text = text ? text : "",
                      .text_len = len,
                      .time_s = now - r->t_submit,
                      .finish_reason = reason};
    deliver_unlock(r, &ev, text, len);
    mark_done_after_callback(r);
}

void ig_request_emit_error(ignis_request *r, ignis_status st, const char *msg, double now)
{
    pthread_mutex_lock(&r->mu);
    r->status = st;
    r->finish_reason = IGNIS_FINISH_ERROR;
    free(r->error);
    r->error = dupstr(msg ? msg : "");
    finish_locked_common(r, now);
    const char *m = r->error ? r->error : "";
    ignis_event ev = {.type = IGNIS_EVENT_ERROR,
                      .text = "",
                      .time_s = now - r->t_submit,
                      .status = st,
                      .error = m,
                      .finish_reason = IGNIS_FINISH_ERROR};
    /* the queue copies the message; a callback reads r->error, alive until release */
    deliver_unlock(r, &ev, m, strlen(m));
    mark_done_after_callback(r);
}

void ig_request_note_admit(ignis_request *r, double now, int cached_tokens, bool first)
{
    pthread_mutex_lock(&r->mu);
    if (first) {
        r->t_admit = now;
        r->cached_tokens = cached_tokens;
    }
    pthread_mutex_unlock(&r->mu);
}

void ig_request_note_preempt(ignis_request *r)
{
    pthread_mutex_lock(&r->mu);
    r->preemptions++;
    pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------------- consumer side */

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

ignis_status ignis_request_poll(ignis_request *r, ignis_event *ev, int timeout_ms)
{
    if (!r || !ev) return ig_err(IGNIS_E_ARG, "ignis_request_poll: NULL argument");
    memset(ev, 0, sizeof *ev);
    ev->text = "";
    if (r->on_event) return ig_err(IGNIS_E_STATE, "ignis_request_poll: the request delivers to a callback");
    struct timespec dl;
    if (timeout_ms > 0) deadline_after(&dl, timeout_ms);
    pthread_mutex_lock(&r->mu);
    free(r->polled);
    r->polled = NULL;
    for (;;) {
        if (r->q_head) {
            ig_evnode *n = r->q_head;
            r->q_head = n->next;
            if (!r->q_head) r->q_tail = NULL;
            r->polled = n;
            *ev = n->ev;
            if (ev->type == IGNIS_EVENT_FINISHED || ev->type == IGNIS_EVENT_ERROR) r->last_taken = true;
            pthread_mutex_unlock(&r->mu);
            return IGNIS_OK;
        }
        if (r->last_taken || r->released) {
            pthread_mutex_unlock(&r->mu);
            return ig_err(IGNIS_E_STATE, "ignis_request_poll: the request has no more events");
        }
        if (timeout_ms == 0) break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->cv, &r->mu);
        } else if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
            if (r->q_head) continue;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    ev->type = IGNIS_EVENT_NONE;
    return IGNIS_OK;
}

void ignis_request_cancel(ignis_request *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    /* While not done the engine is alive: it finishes every request (taking this mutex)
     * before it goes away. */
    if (r->engine) {
        atomic_store(&r->cancel, true);
        ig_engine_wake(r->engine);
    }
    pthread_mutex_unlock(&r->mu);
}

bool ignis_request_done(ignis_request *r)
{
    pthread_mutex_lock(&r->mu);
    bool d = r->done;
    pthread_mutex_unlock(&r->mu);
    return d;
}

ignis_status ignis_request_wait(ignis_request *r, int timeout_ms)
{
    struct timespec dl;
    if (timeout_ms > 0) deadline_after(&dl, timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        if (timeout_ms == 0) break;
        if (timeout_ms < 0)
            pthread_cond_wait(&r->cv, &r->mu);
        else if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
            break;
    }
    bool d = r->done;
    pthread_mutex_unlock(&r->mu);
    return d ? IGNIS_OK : ig_err(IGNIS_E_STATE, "ignis_request_wait: not finished after %d ms", timeout_ms);
}

void ignis_request_get_result(ignis_request *r, ignis_request_result *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->mu);
    out->finish_reason = r->ended ? r->finish_reason : IGNIS_FINISH_NONE;
    out->status = r->status;
    out->prompt_tokens = r->n_prompt;
    out->cached_tokens = r->cached_tokens;
    out->generated_tokens = r->n_ids;
    out->preemptions = r->preemptions;
    out->queue_s = r->t_admit >= 0 ? r->t_admit - r->t_submit : -1;
    out->ttft_s = r->t_first >= 0 ? r->t_first - r->t_submit : -1;
    out->e2e_s = r->t_done >= 0 ? r->t_done - r->t_submit : -1;
    pthread_mutex_unlock(&r->mu);
}

int ignis_request_tokens(ignis_request *r, int32_t *ids, double *times, int cap)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n_ids;
    int k = n < cap ? n : cap;
    if (ids && k > 0) memcpy(ids, r->ids, sizeof(int32_t) * (size_t)k);
    if (times && k > 0) memcpy(times, r->times, sizeof(double) * (size_t)k);
    pthread_mutex_unlock(&r->mu);
    return n;
}

char *ignis_request_text(ignis_request *r)
{
    if (!r->has_text) return NULL;
    pthread_mutex_lock(&r->mu);
    char *t = malloc(r->text_len + 1);
    if (t) {
        if (r->text_len) memcpy(t, r->text, r->text_len);
        t[r->text_len] = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return t;
}

const char *ignis_request_error(ignis_request *r)
{
    pthread_mutex_lock(&r->mu);
    const char *e = r->ended && r->finish_reason == IGNIS_FINISH_ERROR && r->error ? r->error : "";
    pthread_mutex_unlock(&r->mu);
    return e;
}

void ignis_request_release(ignis_request *r)
{
    if (!r) return;
    if (tl_in_callback != r) pthread_mutex_lock(&r->cb_mu);
    pthread_mutex_lock(&r->mu);
    r->released = true;
    pthread_mutex_unlock(&r->mu);
    if (tl_in_callback != r) pthread_mutex_unlock(&r->cb_mu);
    ignis_request_cancel(r);
    pthread_mutex_lock(&r->mu);
    for (ig_evnode *n = r->q_head, *nx; n; n = nx) {
        nx = n->next;
        free(n);
    }
    r->q_head = r->q_tail = NULL;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    ig_request_unref(r);
}
