/*
 * Tensor parallelism over NCCL: one process, one thread per GPU rank.
 *
 * Each rank is an ordinary CUDA backend built over its slice of the workspace (the
 * converter's per-rank splits: qkv/w13 by output rows, wo/w2 by input columns, KV heads
 * divided, vocabulary padded) and a communicator. Inside its forward pass a rank
 * all-reduces the residual stream after the attention output and FFN down projections
 * (rank 0 adds the residual, the others contribute their partial products only, so the
 * sum is the unsplit result) and all-gathers the LM head's vocabulary slices, so rank 0
 * holds full logits and samples. This wrapper drives the ranks in lock step: every call
 * runs on all rank threads at once, because NCCL collectives block until every rank
 * joins.
 *
 * Bootstrap: rank 0 makes an ncclUniqueId and every rank joins with it. Here the id is
 * shared in memory; a multi-process or multi-host launch would send the same 128 bytes
 * over any side channel (a file, TCP, MPI_Bcast) and call ig_cuda_rank_create with
 * nranks = total GPUs and each process's ranks. The public API does not offer that launch
 * (each process would also need rank 0's sampled tokens to schedule in lock step).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_tp.h"
#include "backend/cuda/nccl.h"
#include "core/error.h"

typedef enum { JOB_NONE, JOB_FORWARD, JOB_KV_INIT, JOB_KV_COPY, JOB_QUIT } job_kind;

typedef struct tp_backend tp_backend;

typedef struct rank_ctx {
    tp_backend *tp;
    int rank;
    pthread_t thread;
    ig_backend *b;
    ignis_status status;
    char error[512];
} rank_ctx;

struct tp_backend {
    ig_backend base;
    int n;
    rank_ctx *ranks;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;
    int pending;
    /* the current job */
    job_kind kind;
    const ig_batch *batch;
    int kv_block_len, kv_blocks, copy_dst, copy_src, copy_n;
    int n_threads;     /* worker threads running (ranks 1 .. n_threads) */
    ig_nccl_api *nccl; /* the id's maker; every rank holds its own table too */
};

static ignis_status run_job(tp_backend *t, int r, const ig_forward_out *out0)
{
    ig_backend *b = t->ranks[r].b;
    switch (t->kind) {
    case JOB_FORWARD: {
        /* only rank 0 returns logits or tokens; the others still run the collectives */
        ig_forward_out none = {NULL, NULL, NULL};
        return b->ops->forward(b, t->batch, r == 0 ? out0 : &none);
    }
    case JOB_KV_INIT: {
        int made = 0;
        return b->ops->kv_init(b, t->kv_block_len, t->kv_blocks, &made);
    }
    case JOB_KV_COPY:
        return b->ops->kv_copy_block(b, t->copy_dst, t->copy_src, t->copy_n);
    default:
        return IGNIS_OK;
    }
}

static void *rank_main(void *arg)
{
    rank_ctx *rc = arg;
    tp_backend *t = rc->tp;
    unsigned long seen = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->gen == seen)
            pthread_cond_wait(&t->go, &t->mu);
        seen = t->gen;
        if (t->kind == JOB_QUIT) break;
        pthread_mutex_unlock(&t->mu);
        rc->status = run_job(t, rc->rank, NULL);
        if (rc->status != IGNIS_OK) snprintf(rc->error, sizeof rc->error, "%s", ignis_last_error());
        pthread_mutex_lock(&t->mu);
        if (--t->pending == 0) pthread_cond_signal(&t->done);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Runs the current job on every rank (rank 0 on the caller's thread) and waits. */
static ignis_status run_all(tp_backend *t, const ig_forward_out *out0)
{
    pthread_mutex_lock(&t->mu);
    t->pending = t->n - 1;
    t->gen++;
    pthread_cond_broadcast(&t->go);
    pthread_mutex_unlock(&t->mu);
    t->ranks[0].status = run_job(t, 0, out0);
    if (t->ranks[0].status != IGNIS_OK) snprintf(t->ranks[0].error, sizeof t->ranks[0].error, "%s", ignis_last_error());
    pthread_mutex_lock(&t->mu);
    while (t->pending > 0)
        pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
    for (int r = 0; r < t->n; r++)
        if (t->ranks[r].status != IGNIS_OK)
            return ig_err(t->ranks[r].status, "tensor-parallel rank %d: %s", r, t->ranks[r].error);
    return IGNIS_OK;
}

static ignis_status tp_forward(ig_backend *base, const ig_batch *batch, const ig_forward_out *out)
{
    tp_backend *t = (tp_backend *)base;
    t->kind = JOB_FORWARD;
    t->batch = batch;
    return run_all(t, out);
}

static size_t tp_kv_block_bytes(const ig_backend *base, int block_len)
{
    const tp_backend *t = (const tp_backend *)base;
    return t->ranks[0].b->ops->kv_block_bytes(t->ranks[0].b, block_len);
}

/* Free memory of the tightest rank: model_open sizes the pool from it, and every rank
 * holds the same number of blocks. */
static ignis_status tp_mem_info(ig_backend *base, uint64_t *free_b, uint64_t *total_b)
{
    tp_backend *t = (tp_backend *)base;
    uint64_t fmin = UINT64_MAX, tmin = UINT64_MAX;
    for (int r = 0; r < t->n; r++) {
        uint64_t f, tot;
        IG_TRY(t->ranks[r].b->ops->mem_info(t->ranks[r].b, &f, &tot));
        if (f < fmin) fmin = f;
        if (tot < tmin) tmin = tot;
    }
    *free_b = fmin;
    *total_b = tmin;
    return IGNIS_OK;
}

static ignis_status tp_kv_init(ig_backend *base, int block_len, int n_blocks, int *n_made)
{
    tp_backend *t = (tp_backend *)base;
    t->kind = JOB_KV_INIT;
    t->kv_block_len = block_len;
    t->kv_blocks = n_blocks;
    IG_TRY(run_all(t, NULL));
    base->block_len = block_len;
    base->n_blocks = n_blocks;
    if (n_made) *n_made = n_blocks;
    return IGNIS_OK;
}

static ignis_status tp_kv_copy_block(ig_backend *base, int dst, int src, int n)
{
    tp_backend *t = (tp_backend *)base;
    t->kind = JOB_KV_COPY;
    t->copy_dst = dst;
    t->copy_src = src;
    t->copy_n = n;
    return run_all(t, NULL);
}

static void tp_destroy(ig_backend *base)
{
    tp_backend *t = (tp_backend *)base;
    if (!t) return;
    if (t->n_threads > 0) {
        pthread_mutex_lock(&t->mu);
        t->kind = JOB_QUIT;
        t->gen++;
        pthread_cond_broadcast(&t->go);
        pthread_mutex_unlock(&t->mu);
        for (int r = 1; r <= t->n_threads; r++)
            pthread_join(t->ranks[r].thread, NULL);
    }
    for (int r = 0; r < t->n; r++)
        if (t->ranks[r].b) t->ranks[r].b->ops->destroy(t->ranks[r].b);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->go);
    pthread_cond_destroy(&t->done);
    ig_nccl_close(t->nccl);
    free(t->ranks);
    free(t);
}

static const ig_backend_ops k_tp_ops = {
    .name = "cuda",
    .kv_init = tp_kv_init,
    .kv_block_bytes = tp_kv_block_bytes,
    .forward = tp_forward,
    .kv_copy_block = tp_kv_copy_block,
    .mem_info = tp_mem_info,
    .destroy = tp_destroy,
};

/* Rank creation runs on every rank's thread at once: ncclCommInitRank blocks until all
 * ranks have joined. */
typedef struct create_arg {
    const ig_model_desc *d;
    const ig_backend_opts *o;
    const ncclUniqueId *id;
    rank_ctx *rc;
    int n;
} create_arg;

static void *create_main(void *arg)
{
    create_arg *a = arg;
    a->rc->status = ig_cuda_rank_create(a->d, a->rc->rank, a->n, a->o->device + a->rc->rank, a->id, a->o, &a->rc->b);
    if (a->rc->status != IGNIS_OK) snprintf(a->rc->error, sizeof a->rc->error, "%s", ignis_last_error());
    return NULL;
}

ignis_status ig_cuda_tp_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out)
{
    *out = NULL;
    int n = d->tp;
    int have = ig_cuda_device_count();
    if (o->device + n > have)
        return ig_err(IGNIS_E_DEVICE, "--tp %d from device %d needs %d GPUs; %d visible", n, o->device, o->device + n,
                      have);
    ig_nccl_api *nccl;
    IG_TRY(ig_nccl_open(o->cuda.nccl_lib, &nccl));
    ncclUniqueId id;
    ncclResult_t nr = nccl->GetUniqueId(&id);
    if (nr != ncclSuccess) {
        ignis_status s = ig_err(IGNIS_E_DEVICE, "NCCL: ncclGetUniqueId: %s", nccl->GetErrorString(nr));
        ig_nccl_close(nccl);
        return s;
    }

    tp_backend *t = calloc(1, sizeof *t);
    if (t) t->ranks = calloc((size_t)n, sizeof *t->ranks);
    if (!t || !t->ranks) {
        free(t);
        ig_nccl_close(nccl);
        return ig_err(IGNIS_E_NOMEM, "out of memory");
    }
    t->nccl = nccl;
    t->base.ops = &k_tp_ops;
    t->base.desc = d;
    t->n = n;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->go, NULL);
    pthread_cond_init(&t->done, NULL);

    create_arg *args = calloc((size_t)n, sizeof *args);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    ignis_status s = IGNIS_OK;
    if (!args || !th) s = ig_err(IGNIS_E_NOMEM, "out of memory");
    int started = 0;
    for (int r = 0; s == IGNIS_OK && r < n; r++) {
        t->ranks[r].tp = t;
        t->ranks[r].rank = r;
        args[r] = (create_arg){d, o, &id, &t->ranks[r], n};
        if (pthread_create(&th[r], NULL, create_main, &args[r]) != 0)
            s = ig_err(IGNIS_E_INTERNAL, "cannot start the thread of rank %d", r);
        else
            started++;
    }
    for (int r = 0; r < started; r++)
        pthread_join(th[r], NULL);
    free(args);
    free(th);
    for (int r = 0; s == IGNIS_OK && r < n; r++)
        if (t->ranks[r].status != IGNIS_OK)
            s = ig_err(t->ranks[r].status, "tensor-parallel rank %d: %s", r, t->ranks[r].error);
    if (s != IGNIS_OK) {
        tp_destroy(&t->base);
        return s;
    }
    t->base.weight_dtype = t->ranks[0].b->weight_dtype;
    for (int r = 1; r < n; r++) {
        if (pthread_create(&t->ranks[r].thread, NULL, rank_main, &t->ranks[r]) != 0) {
            tp_destroy(&t->base);
            return ig_err(IGNIS_E_INTERNAL, "cannot start the worker thread of rank %d", r);
        }
        t->n_threads = r;
    }
    *out = &t->base;
    return IGNIS_OK;
}
