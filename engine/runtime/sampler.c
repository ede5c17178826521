/*
 * The sampler: the one definition of how a token is drawn from a logits row. The CUDA
 * sampling kernel is its twin and must follow the same steps in the same order:
 *
 *  1. repetition penalty (HF semantics): for every distinct id in history,
 *     logit = logit > 0 ? logit / penalty : logit * penalty;
 *  2. temperature <= 0: greedy, the argmax with the lowest index on ties; done;
 *  3. logits /= temperature;
 *  4. candidates: with top_k > 0 or top_p < 1, sort ids by (logit desc, id asc) and keep
 *     the first top_k (if set); otherwise all ids in index order;
 *  5. probabilities p = softmax over the candidates (fp32, max subtracted, sum in fp32);
 *  6. top_p < 1: keep the shortest prefix of the sorted candidates whose cumulative p
 *     reaches top_p (at least one);
 *  7. draw u = ig_uniform01(seed, step) and return the first candidate whose running
 *     sum of p exceeds u * (sum of kept p); the last candidate if rounding leaves none.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ignis.h"
#include "model/synth_fn.h"

void ignis_sampling_init(ignis_sampling *s)
{
    memset(s, 0, sizeof *s);
    s->temperature = 0.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->repetition_penalty = 1.0f;
}

/* NaN compares false with everything, so an unchecked NaN silently turns a filter off
 * (top_p), sampling into greedy (temperature) or a penalty into none: every caller-given
 * value is checked here once, and the API entry points call this before queueing work. */
ignis_status ignis_sampling_validate(const ignis_sampling *s)
{
    if (!s) return ig_err(IGNIS_E_ARG, "sampling: NULL parameters");
    if (!isfinite(s->temperature))
        return ig_err(IGNIS_E_ARG, "sampling: temperature is %g; expected a finite number (<= 0: greedy)",
                      (double)s->temperature);
    if (!isfinite(s->top_p) || !(s->top_p > 0.0f))
        return ig_err(IGNIS_E_ARG, "sampling: top_p is %g; expected a finite number > 0 (>= 1: off)", (double)s->top_p);
    if (!isfinite(s->repetition_penalty) || !(s->repetition_penalty > 0.0f))
        return ig_err(IGNIS_E_ARG, "sampling: repetition_penalty is %g; expected a finite number > 0 (1: off)",
                      (double)s->repetition_penalty);
    return IGNIS_OK;
}

typedef struct cand {
    float v;
    int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t argmax(const float *v, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int32_t ignis_sample_logits(const float *logits, int vocab, const ignis_sampling *s, const int32_t *history,
                            int n_history, uint64_t step)
{
    if (vocab <= 0) return -1;
    if (ignis_sampling_validate(s) != IGNIS_OK) return -1;
    float *l = malloc(sizeof(float) * (size_t)vocab);
    if (!l) return argmax(logits, vocab); /* degrade to greedy rather than fail a step */
    memcpy(l, logits, sizeof(float) * (size_t)vocab);

    if (s->repetition_penalty != 1.0f && s->repetition_penalty > 0 && history) {
        /* mark first so a repeated id is penalized once */
        unsigned char *seen = calloc((size_t)vocab, 1);
        for (int i = 0; i < n_history; i++) {
            int32_t id = history[i];
            if (id < 0 || id >= vocab || (seen && seen[id])) continue;
            if (seen) seen[id] = 1;
            l[id] = l[id] > 0 ? l[id] / s->repetition_penalty : l[id] * s->repetition_penalty;
        }
        free(seen);
    }
    if (!(s->temperature > 0.0f)) {
        int32_t r = argmax(l, vocab);
        free(l);
        return r;
    }
    for (int i = 0; i < vocab; i++)
        l[i] /= s->temperature;

    bool sorted = s->top_k > 0 || s->top_p < 1.0f;
    int n = vocab;
    cand *c = malloc(sizeof(cand) * (size_t)vocab);
    if (!c) {
        int32_t r = argmax(l, vocab);
        free(l);
        return r;
    }
    for (int i = 0; i < vocab; i++) {
        c[i].v = l[i];
        c[i].id = i;
    }
    if (sorted) {
        qsort(c, (size_t)vocab, sizeof(cand), cand_cmp);
        if (s->top_k > 0 && s->top_k < n) n = s->top_k;
    }
    float mx = c[0].v;
    if (!sorted)
        for (int i = 1; i < n; i++)
            mx = c[i].v > mx ? c[i].v : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        c[i].v = expf(c[i].v - mx);
        sum += c[i].v;
    }
    if (s->top_p < 1.0f) {
        float cum = 0.0f, lim = s->top_p * sum;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].v;
            if (cum >= lim) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = cum;
    }
    float u = ig_uniform01(s->seed, step) * sum, run = 0.0f;
    int32_t pick = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        run += c[i].v;
        if (run > u) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    free(l);
    return pick;
}
