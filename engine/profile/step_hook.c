/* The scheduler's step hook (step_hook.h). One process-wide read-write lock makes attach
 * and detach wait for a step in flight: the engine thread holds it for reading from
 * ig_prof_step_begin to ig_prof_step_end, so a profiler is never freed under a step. */
#include "profile/step_hook.h"

#include "core/clock.h"
#include "core/grow.h"
#include "profile/nvtx.h"
#include "profile/profiler_internal.h"
#include "runtime/engine_internal.h"

static pthread_rwlock_t g_attach = PTHREAD_RWLOCK_INITIALIZER;

void ig_prof_set_engine_hook(ignis_engine *e, ignis_profiler *p)
{
    pthread_rwlock_wrlock(&g_attach);
    e->prof = p;
    pthread_rwlock_unlock(&g_attach);
}

uint64_t ig_prof_now_ns(const ignis_profiler *p)
{
    if (p->cupti_ok && p->opts.kernels) return ig_cupti_now_ns();
    return (uint64_t)(ig_now() * 1e9);
}

static bool is_prefill_step(const ig_batch *b)
{
    for (int s = 0; s < b->n_seqs; s++)
        if (b->q_start[s + 1] - b->q_start[s] > 1) return true;
    return false;
}

void ig_prof_step_begin(ignis_engine *e, const ig_batch *b)
{
    IG_NVTX_PUSH(is_prefill_step(b) ? "prefill" : "decode step");
    pthread_rwlock_rdlock(&g_attach);
    ignis_profiler *p = e->prof;
    if (!p) return; /* the read lock stays held until ig_prof_step_end */
    p->cur_step = e->step_no;
    if (p->cupti_ok && p->opts.kernels) ig_cupti_push_step(e->step_no);
    p->cur_begin_ns = ig_prof_now_ns(p);
    p->cur_begin_s = ig_now();
}

static void record(ignis_profiler *p, ignis_engine *e, const ig_batch *b, uint64_t end_ns, double dur_s)
{
    /* TTFT parts of every request still waiting for its first token */
    for (int s = 0; s < b->n_seqs; s++) {
        const ig_active *a = e->sched[s];
        if (a->n_gen > 0) continue;
        ig_req_acc *r = ig_req_map_get(&p->reqs, a->req);
        if (!r) continue;
        double own = b->n_tokens > 0 ? dur_s * a->n_new / b->n_tokens : 0;
        r->own_s += own;
        r->shared_s += dur_s - own;
        r->steps++;
    }
    if (!p->in_window) return;
    int n_prefill = 0;
    for (int s = 0; s < b->n_seqs; s++)
        n_prefill += ig_active_prefill_tokens(e->sched[s]);
    double bytes = 0;
    if (p->have_shape) {
        ig_cost_step cs = {b->n_seqs, b->n_tokens, b->n_logits, b->q_start, b->kv_len, true};
        for (int i = 0; i < b->n_logits; i++)
            if (b->logit_rows[i] != i) cs.logit_rows_identity = false;
        bytes = ig_cost_step_add(&p->shape, &cs, p->decl.bytes, p->decl.flops);
    }
    if (!ig_grow((void **)&p->steps, &p->cap_steps, p->n_steps + 1, sizeof *p->steps)) {
        p->steps_oom = true;
        return;
    }
    p->steps[p->n_steps++] =
        (ig_step_ev){p->cur_step, b->n_seqs, b->n_tokens, n_prefill, p->cur_begin_ns, end_ns, bytes};
}

void ig_prof_step_end(ignis_engine *e, const ig_batch *b)
{
    ignis_profiler *p = e->prof;
    if (p) {
        if (p->cupti_ok && p->opts.kernels) ig_cupti_pop_step();
        uint64_t end_ns = ig_prof_now_ns(p);
        double dur_s = ig_now() - p->cur_begin_s;
        pthread_mutex_lock(&p->mu);
        record(p, e, b, end_ns, dur_s);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_rwlock_unlock(&g_attach);
    IG_NVTX_POP();
}
