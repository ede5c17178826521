#include "backend/cpu/cpu_ops.h"

#include <math.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void ig_cpu_embed(float *out, const ig_tensor *emb, const int32_t *tokens, int n_tokens)
{
    int64_t dim = emb->shape[1];
    size_t esz = ig_dtype_size(emb->dtype);
    for (int t = 0; t < n_tokens; t++)
        ig_to_f32(out + (size_t)t * dim, (const char *)emb->data + (size_t)tokens[t] * dim * esz, emb->dtype,
                  (size_t)dim);
}

void ig_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        float ss = 0.0f;
        for (int i = 0; i < dim; i++)
            ss += xr[i] * xr[i];
        float scale = 1.0f / sqrtf(ss / (float)dim + eps);
        for (int i = 0; i < dim; i++)
            o[i] = w[i] * (xr[i] * scale);
    }
}

void ig_cpu_add_rmsnorm(float *x, const float *delta, float *out, const float *w, int n, int dim, float eps)
{
    for (size_t i = 0; i < (size_t)n * dim; i++)
        x[i] += delta[i];
    ig_cpu_rmsnorm(out, x, w, n, dim, eps);
}

void ig_cpu_rope(float *v, int n_heads, int head_dim, int pos, const float *inv_freq)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        /* cos/sin of the fp32 angle evaluated in double, then rounded: what a correctly
         * rounded fp32 cos/sin (torch's) gives */
        float c = (float)cos((double)angle), s = (float)sin((double)angle);
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * head_dim;
            float a = p[i], b = p[i + half];
            p[i] = a * c - b * s;
            p[i + half] = b * c + a * s;
        }
    }
}

void ig_cpu_silu_mul(float *out, const float *gu, int n, int inter)
{
    for (int r = 0; r < n; r++) {
        const float *g = gu + (size_t)r * 2 * inter, *u = g + inter;
        float *o = out + (size_t)r * inter;
        for (int j = 0; j < inter; j++)
            o[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    }
}

/* ---- matmul: parallel over output rows. Each worker converts a weight row to fp32 once
 * and dots it with every input row, so a prefill of n tokens reads the weights once. */

typedef struct mm_ctx {
    float *y;
    int ldy;
    const float *x;
    int n, in;
    const ig_tensor *w;
    const float *bias;
    float *rowbuf; /* [workers][in]: worker i converts into rowbuf + i * in */
} mm_ctx;

static float dot(const float *a, const float *b, int n)
{
    /* 8 independent partial sums: vectorizes and keeps rounding error low */
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    float t = 0.0f;
    for (; i < n; i++)
        t += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + t;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* fp16 -> fp32 with the F16C instructions: exact, like ig_f16_to_f32, 8 at a time. */
__attribute__((target("f16c,avx"))) static void f16_row_f16c(float *dst, const uint16_t *src, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = ig_f16_to_f32(src[i]);
}
/* Several matmul workers may ask at once: the cache is a relaxed atomic, so concurrent
 * first calls each store the same answer without a data race (no ordering is needed, as
 * nothing else is published through it). */
static bool have_f16c(void)
{
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}
#else
static bool have_f16c(void) { return false; }
static void f16_row_f16c(float *dst, const uint16_t *src, int n) { ig_to_f32(dst, src, IG_F16, (size_t)n); }
#endif

static void row_to_f32(float *dst, const void *src, ig_dtype t, int n)
{
    if (t == IG_F16 && have_f16c())
        f16_row_f16c(dst, src, n);
    else
        ig_to_f32(dst, src, t, (size_t)n);
}

static void mm_range(void *arg, int begin, int end, int worker)
{
    mm_ctx *c = arg;
    size_t esz = ig_dtype_size(c->w->dtype);
    for (int o = begin; o < end; o++) {
        const float *wr;
        const void *src = (const char *)c->w->data + (size_t)o * c->in * esz;
        if (c->w->dtype == IG_F32) {
            wr = src;
        } else {
            float *buf = c->rowbuf + (size_t)worker * c->in;
            row_to_f32(buf, src, c->w->dtype, c->in);
            wr = buf;
        }
        float b = c->bias ? c->bias[o] : 0.0f;
        for (int r = 0; r < c->n; r++)
            c->y[(size_t)r * c->ldy + o] = dot(c->x + (size_t)r * c->in, wr, c->in) + b;
    }
}

size_t ig_cpu_matmul_ws_floats(const ig_pool *pool, int in) { return (size_t)ig_pool_size(pool) * (size_t)in; }

ignis_status ig_cpu_matmul(ig_pool *pool, float *ws, size_t ws_floats, float *y, int ldy, const float *x, int n,
                           const ig_tensor *w, const float *bias)
{
    if (w->ndim != 2 || w->shape[0] > INT32_MAX || w->shape[1] > INT32_MAX || !w->data)
        return ig_err(IGNIS_E_INTERNAL, "CPU matmul: weight is not a present 2-D matrix");
    int out = (int)w->shape[0], in = (int)w->shape[1];
    if (ldy < out || n < 0)
        return ig_err(IGNIS_E_INTERNAL, "CPU matmul: output stride %d below the %d rows of the weight", ldy, out);
    if (w->dtype != IG_F32 && w->dtype != IG_F16 && w->dtype != IG_BF16)
        return ig_err(IGNIS_E_INTERNAL, "CPU matmul: weight dtype %s is not fp32, fp16 or bf16",
                      ig_dtype_str(w->dtype));
    if (w->dtype != IG_F32 && (!ws || ws_floats < ig_cpu_matmul_ws_floats(pool, in)))
        return ig_err(IGNIS_E_INTERNAL, "CPU matmul: %zu floats of workspace for %d workers of %d columns", ws_floats,
                      ig_pool_size(pool), in);
    mm_ctx c = {y, ldy, x, n, in, w, bias, ws};
    ig_pool_run(pool, out, 4, mm_range, &c);
    return IGNIS_OK;
}

/* ---- attention: one task per (token, head); online softmax in one pass over the
 * context, as the flash kernels do, but in plain fp32. */

typedef struct at_ctx {
    const ig_cpu_attn_args *a;
    float scale;
} at_ctx;

static void at_range(void *arg, int begin, int end, int worker)
{
    (void)worker;
    at_ctx *c = arg;
    const ig_cpu_attn_args *a = c->a;
    const ig_cpu_kv *kv = a->kv;
    int hd = a->head_dim, group = a->n_heads / a->n_kv_used;
    float acc[512];
    for (int task = begin; task < end; task++) {
        int t = task / a->n_heads, h = task % a->n_heads;
        int pos = a->pos0 + t, kvh = a->kv_head0 + h / group;
        const float *q = a->q + (size_t)t * a->ldq + (size_t)h * hd;
        float m = -INFINITY, l = 0.0f;
        for (int i = 0; i < hd; i++)
            acc[i] = 0.0f;
        for (int j = 0; j <= pos; j++) {
            int blk = a->table[j / kv->block_len], slot = j % kv->block_len;
            const float *k = ig_cpu_kv_at(kv, blk, a->layer, 0, kvh, slot);
            const float *v = ig_cpu_kv_at(kv, blk, a->layer, 1, kvh, slot);
            float s = dot(q, k, hd) * c->scale;
            if (s > m) {
                float corr = expf(m - s);
                l *= corr;
                for (int i = 0; i < hd; i++)
                    acc[i] *= corr;
                m = s;
            }
            float p = expf(s - m);
            l += p;
            for (int i = 0; i < hd; i++)
                acc[i] += p * v[i];
        }
        float *o = a->out + (size_t)t * a->ldo + (size_t)h * hd;
        for (int i = 0; i < hd; i++)
            o[i] = acc[i] / l;
    }
}

void ig_cpu_attention(ig_pool *pool, const ig_cpu_attn_args *a)
{
    at_ctx c = {a, 1.0f / sqrtf((float)a->head_dim)};
    ig_pool_run(pool, a->n_tok * a->n_heads, 1, at_range, &c);
}
