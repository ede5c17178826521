/*
 * struct ignis_request: one submitted request as its caller sees it — its parameters
 * (copied at submit), what it has produced so far, its event stream and its timing.
 *
 * Locking: `mu` guards the results and the event queue; `cb_mu` is held while the
 * request's callback runs, so ignis_request_release can guarantee no callback runs after
 * it returns. Lock order: request mu, then engine mu (never the reverse).
 *
 * Lifetime: two references, the caller's (dropped by ignis_request_release) and the
 * engine's (dropped after the last event); the memory goes with the last one.
 */
#ifndef IG_REQUEST_H
#define IG_REQUEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_evnode {
    struct ig_evnode *next;
    ignis_event ev;
    char data[]; /* text or error message the event points to */
} ig_evnode;

struct ignis_request {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t cb_mu;
    atomic_int refs;
    atomic_bool cancel;
    struct ignis_engine *engine; /* NULL once done: never touched after that */
    uint64_t seqno;              /* submit order (FCFS) */

    /* parameters: immutable after submit */
    int32_t *prompt;
    int n_prompt;
    ignis_sampling sampling;
    int max_new_tokens;
    bool ignore_eos;
    int32_t *stop_ids;
    int n_stop_ids;
    char **stop_words;
    int n_stop_words;
    bool skip_special;
    uint64_t session_id;
    int session_rewind;
    int priority;
    ignis_event_fn on_event;
    void *user;

    /* results (under mu) */
    int32_t *ids;
    double *times;
    int n_ids, cap_ids;
    char *text;
    size_t text_len, text_cap;
    bool has_text;
    ignis_finish_reason finish_reason;
    ignis_status status;
    char *error;
    bool ended;      /* the last event was produced (results are final) */
    bool done;       /* ... and delivered: queued, or its callback returned */
    bool last_taken; /* ... and polled */
    bool released;
    ig_evnode *q_head, *q_tail;
    ig_evnode *polled; /* the node the last poll returned (its text is still in use) */
    double t_submit, t_admit, t_first, t_done;
    int cached_tokens;
    int preemptions;
};

/* Makes a request from validated parameters and a prompt (copied). refs = 2. */
ignis_status ig_request_new(const ignis_request_params *p, const int32_t *prompt, int n_prompt, bool has_text,
                            ignis_request **out);
void ig_request_unref(ignis_request *r);

/* Producer side (engine thread). Each builds the event and hands it to the callback or
 * the queue; token/finish text is also appended to the request's text. */
void ig_request_emit_token(ignis_request *r, int32_t id, int index, const char *text, size_t len, double now);
void ig_request_emit_finish(ignis_request *r, ignis_finish_reason reason, const char *text, size_t len, double now);
void ig_request_emit_error(ignis_request *r, ignis_status st, const char *msg, double now);
/* Timing/accounting updates. */
void ig_request_note_admit(ignis_request *r, double now, int cached_tokens, bool first);
void ig_request_note_preempt(ignis_request *r);

#endif
