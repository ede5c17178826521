/*
 * struct ignis_engine and the scheduler's private state. The engine thread owns every
 * field below "scheduler-owned"; other threads only touch the fields under `mu`.
 */
#ifndef IG_ENGINE_INTERNAL_H
#define IG_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/grow.h"
#include "ignis.h"
#include "model/model.h"
#include "runtime/kv_manager.h"
#include "runtime/kv_pool.h"
#include "runtime/request.h"
#include "runtime/finish.h"
#include "runtime/stop_text.h"

/* A sequence's tokens and the KV blocks that hold the first n_computed of them. */
typedef struct ig_seqkv {
    int32_t *tokens;
    int n_tokens, cap_tokens;
    int n_computed; /* tokens whose K/V is in the blocks */
    int32_t *blocks;
    int n_blocks, cap_blocks;
    uint64_t *hashes; /* chain hash of each full block of tokens, computed lazily */
    int n_hashes, cap_hashes;
    int n_registered; /* leading blocks already offered to the prefix cache */
} ig_seqkv;

struct ig_active;

typedef struct ig_session {
    uint64_t id;
    ig_seqkv kv;
    struct ig_active *active; /* the request using it, or NULL when idle */
    uint64_t last_used;       /* step of last use: idle sessions are evicted oldest first */
    struct ig_session *next;
} ig_session;

/* A request inside the scheduler (waiting or running). */
typedef struct ig_active {
    ignis_request *req;
    uint64_t seqno;
    int priority;
    ig_seqkv own;
    ig_seqkv *kv; /* &own, or the session's */
    ig_session *sess;
    bool attached; /* prompt appended to kv (done at first admission) */
    bool admitted_once;
    bool running;          /* in e->running (else waiting) */
    uint64_t preempted_at; /* step_no + 1 of its last preemption */
    int prompt_end;        /* kv->n_tokens when the prompt ends */
    int n_gen;
    ig_finish_rule rule; /* when its generation ends (set at attach) */
    ig_stop_text text;   /* its output text (zeroed without a tokenizer) */
    /* this step */
    int n_new;
    int row; /* sampled row index, or -1 */
} ig_active;

/* What the engine runs on: a real model's parts, or a test's fake backend. */
typedef struct ig_engine_deps {
    ig_backend *backend;
    const ig_model_desc *desc;
    const ignis_tokenizer *tok; /* may be NULL */
    ig_kv_pool *pool;
} ig_engine_deps;

typedef struct ig_end_cmd {
    uint64_t session_id;
    uint64_t seqno; /* requests submitted before it are cancelled */
} ig_end_cmd;

typedef struct ig_sess_rec {
    uint64_t id;
    bool inflight;
    uint64_t seqno; /* the request in flight */
} ig_sess_rec;

struct ignis_engine {
    ig_engine_deps deps;
    int max_batch;
    int max_prefill;
    int session_len;
    int block_len;
    int seq_cap; /* most tokens one sequence may hold: min(session_len, quota tokens) */
    int vocab;
    const int32_t *eos;
    int n_eos;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    bool stop;
    bool wake;
    ignis_request **incoming;
    int n_incoming, cap_incoming;
    ig_end_cmd *ends;
    int n_ends, cap_ends;
    ig_sess_rec *sess_recs;
    int n_sess_recs, cap_sess_recs;
    uint64_t next_seqno;
    ignis_engine_stats stats;

    /* scheduler-owned */
    ig_kv_manager kvm;
    ig_active **waiting;
    int n_waiting, cap_waiting;
    ig_active **running;
    int n_running, cap_running;
    ig_session *sessions;
    int n_sessions;
    uint64_t step_no;
    ignis_engine_stats st; /* working copy, published to `stats` after each step */
    /* step buffers: per sequence [max_batch] (b_qstart [max_batch + 1]), allocated with
     * the engine; tokens and block table grown to the largest step */
    ig_active **sched;
    int32_t *b_tokens, *b_qstart, *b_kvlen, *b_table, *b_rows, *b_out;
    ig_sample_row *b_samp;
    int cap_b_tokens, cap_b_table;
    /* profiler step hook (engine/profile/step_hook.c; set under its lock, NULL: none) */
    struct ignis_profiler *prof;
};

ignis_status ig_engine_create_deps(const ig_engine_deps *deps, const ig_engine_cfg *model_cfg,
                                   const ignis_engine_opts *opts, ignis_engine **out);
/* Wakes the scheduler (a cancel arrived). Takes e->mu. */
void ig_engine_wake(ignis_engine *e);
/* The scheduler thread. */
void *ig_scheduler_main(void *arg);
/* Frees a scheduler-side request record (and its private KV) after it left the queues. */
void ig_active_free(ignis_engine *e, ig_active *a);

/* Tokens of a's step that compute prompt (or recomputed) positions: all n_new of them
 * unless the step is a plain decode — one new token, already generated, the last of its
 * sequence. Valid from scheduling until the step's results advance n_computed; the
 * statistics (scheduler.c) and the profiler's step events (profile/step_hook.c) count
 * with it. */
static inline int ig_active_prefill_tokens(const ig_active *a)
{
    bool decode = a->n_new == 1 && a->n_gen > 0 && a->kv->n_computed == a->kv->n_tokens - 1;
    return decode ? 0 : a->n_new;
}

/* Sequence KV state (seq_kv.c). */
static inline int ig_blocks_for(int tokens, int block_len) { return (tokens + block_len - 1) / block_len; }
/* Appends n token ids (false: out of memory). */
bool ig_seqkv_append(ig_seqkv *kv, const int32_t *ids, int n);
/* Drops every block reference; the tokens stay (so the sequence can be recomputed). */
void ig_seqkv_release_blocks(ignis_engine *e, ig_seqkv *kv);
void ig_seqkv_free(ignis_engine *e, ig_seqkv *kv);
/* Drops the last n tokens (n <= n_tokens) and the KV that can no longer be kept. */
void ig_seqkv_rewind(ignis_engine *e, ig_seqkv *kv, int n);
/* Offers the newly completed full blocks to the prefix cache. */
void ig_seqkv_register(ignis_engine *e, ig_seqkv *kv);
/* Starts a sequence without KV from its longest cached run of leading blocks; returns the
 * blocks found, *queries the blocks looked up. */
int ig_seqkv_match_prefix(ignis_engine *e, ig_seqkv *kv, int *queries);
/* Takes `need` more blocks (the caller made sure they are available; false if not). */
bool ig_seqkv_take_blocks(ignis_engine *e, ig_seqkv *kv, int need);

#endif
