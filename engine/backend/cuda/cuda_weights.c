/* Weight upload: every tensor of the model description lands in one device allocation.
 *
 *  - host tensors (mmap'd workspace files or owned buffers) stream through two pinned
 *    staging buffers with asynchronous copies, so the memcpy out of the page cache of
 *    chunk i+1 overlaps the DMA of chunk i; a dtype change (fp32 workspaces, or fp16 <->
 *    bf16) goes through a device scratch chunk and a conversion kernel;
 *  - synthetic tensors (data == NULL) are generated on the device with the same value
 *    function as the host (synth_fn.h), bit for bit, so a 7B model never exists on the host.
 * Progress is reported in bytes of device weights written. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define STAGE_BYTES ((size_t)32 << 20)

typedef struct upload {
    cuda_backend *b;
    const ig_backend_opts *o;
    void *pin[2];
    void *dscratch[2];
    cudaEvent_t ev[2];
    int cur;
    uint64_t done, total;
} upload;

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* Device bytes of a tensor: matrices in the storage dtype, vectors in fp32. */
static size_t dev_bytes(const cuda_backend *b, const ig_tensor *t, bool matrix)
{
    if (!ig_tensor_present(t)) return 0;
    return (size_t)ig_tensor_numel(t) * (matrix ? ig_dtype_size(b->dt) : 4);
}

/* The next tensor's address in the weight allocation. */
static void *take(char *base, size_t *off, size_t bytes)
{
    void *r = base + *off;
    *off += align256(bytes);
    return r;
}

static void progress(upload *u, uint64_t add)
{
    u->done += add;
    if (u->o && u->o->progress) u->o->progress(u->o->progress_user, "load", u->done, u->total);
}

static ignis_status put(upload *u, const ig_tensor *t, bool matrix, void *dst)
{
    cuda_backend *b = u->b;
    ig_dtype want = matrix ? b->dt : IG_F32;
    int64_t n = ig_tensor_numel(t);
    if (t->dtype != IG_F32 && t->dtype != IG_F16 && t->dtype != IG_BF16)
        return ig_err(IGNIS_E_UNSUPPORTED, "tensor of dtype %s cannot be loaded on the CUDA backend",
                      ig_dtype_str(t->dtype));
    if (!t->data) {
        IG_CK(
            ig_k_synth_map(t->dtype, want, dst, n, t->synth_seed, t->synth_scale, t->synth_bias, &t->synth_map, b->st));
        progress(u, (uint64_t)n * ig_dtype_size(want));
        return IGNIS_OK;
    }
    size_t esz = ig_dtype_size(t->dtype), osz = ig_dtype_size(want);
    int64_t per = (int64_t)(STAGE_BYTES / esz);
    for (int64_t i = 0; i < n; i += per) {
        int64_t cnt = n - i < per ? n - i : per;
        int k = u->cur;
        u->cur ^= 1;
        /* the staging buffer is free once the copy that last used it has completed */
        IG_CK(cudaEventSynchronize(u->ev[k]));
        memcpy(u->pin[k], (const char *)t->data + (size_t)i * esz, (size_t)cnt * esz);
        char *d = (char *)dst + (size_t)i * osz;
        if (t->dtype == want) {
            IG_CK(cudaMemcpyAsync(d, u->pin[k], (size_t)cnt * esz, cudaMemcpyHostToDevice, b->st));
        } else {
            IG_CK(cudaMemcpyAsync(u->dscratch[k], u->pin[k], (size_t)cnt * esz, cudaMemcpyHostToDevice, b->st));
            IG_CK(ig_k_convert(t->dtype, u->dscratch[k], want, d, cnt, b->st));
        }
        IG_CK(cudaEventRecord(u->ev[k], b->st));
        progress(u, (uint64_t)cnt * osz);
    }
    return IGNIS_OK;
}

static ignis_status upload_all(upload *u, const ig_model_desc *d)
{
    cuda_backend *b = u->b;
    const ig_weights *w = &d->ranks[b->rank];
    const ig_config *c = &d->cfg;
    /* layout pass: offsets in one allocation */
    size_t off = 0;
#define PLACE(t, matrix) (off += align256(dev_bytes(b, (t), (matrix))))
    PLACE(&w->tok_emb, true);
    PLACE(&w->final_norm, false);
    if (ig_tensor_present(&w->output)) PLACE(&w->output, true);
    for (int l = 0; l < c->n_layers; l++) {
        const ig_layer_weights *L = &w->layers[l];
        PLACE(&L->attn_norm, false);
        PLACE(&L->wqkv, true);
        PLACE(&L->bqkv, false);
        PLACE(&L->wo, true);
        PLACE(&L->bo, false);
        PLACE(&L->ffn_norm, false);
        PLACE(&L->w13, true);
        PLACE(&L->w2, true);
    }
    off += align256(sizeof(float) * (size_t)(c->head_dim / 2));
#undef PLACE
    b->wbytes = off;
    u->total = off;
    cudaError_t e = cudaMalloc(&b->wbuf, off);
    if (e != cudaSuccess) {
        cudaGetLastError();
        b->wbuf = NULL;
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return ig_err(IGNIS_E_DEVICE, "cannot allocate %.2f GiB for the weights on CUDA device %d (%.2f GiB free): %s",
                      (double)off / 1073741824.0, b->device, (double)fr / 1073741824.0, cudaGetErrorString(e));
    }
    char *p = b->wbuf;
    off = 0;
#define NEXT(t, matrix) take(p, &off, dev_bytes(b, (t), (matrix)))
    b->tok_emb = NEXT(&w->tok_emb, true);
    IG_TRY(put(u, &w->tok_emb, true, b->tok_emb));
    b->final_norm = (float *)NEXT(&w->final_norm, false);
    IG_TRY(put(u, &w->final_norm, false, b->final_norm));
    if (ig_tensor_present(&w->output)) {
        b->out_w = NEXT(&w->output, true);
        IG_TRY(put(u, &w->output, true, b->out_w));
    } else {
        b->out_w = b->tok_emb;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const ig_layer_weights *L = &w->layers[l];
        cuda_layer *D = &b->layers[l];
        D->attn_norm = (float *)NEXT(&L->attn_norm, false);
        IG_TRY(put(u, &L->attn_norm, false, D->attn_norm));
        D->wqkv = NEXT(&L->wqkv, true);
        IG_TRY(put(u, &L->wqkv, true, D->wqkv));
        if (ig_tensor_present(&L->bqkv)) {
            D->bqkv = (float *)NEXT(&L->bqkv, false);
            IG_TRY(put(u, &L->bqkv, false, D->bqkv));
        }
        D->wo = NEXT(&L->wo, true);
        IG_TRY(put(u, &L->wo, true, D->wo));
        if (ig_tensor_present(&L->bo)) {
            D->bo = (float *)NEXT(&L->bo, false);
            IG_TRY(put(u, &L->bo, false, D->bo));
        }
        D->ffn_norm = (float *)NEXT(&L->ffn_norm, false);
        IG_TRY(put(u, &L->ffn_norm, false, D->ffn_norm));
        D->w13 = NEXT(&L->w13, true);
        IG_TRY(put(u, &L->w13, true, D->w13));
        D->w2 = NEXT(&L->w2, true);
        IG_TRY(put(u, &L->w2, true, D->w2));
    }
#undef NEXT
    b->inv_freq = (float *)(p + off);
    float *inv = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
    if (!inv) return ig_err(IGNIS_E_NOMEM, "out of memory");
    ig_rope_inv_freq(c, 0, inv);
    e = cudaMemcpyAsync(b->inv_freq, inv, sizeof(float) * (size_t)(c->head_dim / 2), cudaMemcpyHostToDevice, b->st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(b->st);
    free(inv);
    if (e != cudaSuccess) return ig_err(IGNIS_E_DEVICE, "uploading the RoPE table: %s", cudaGetErrorString(e));
    return IGNIS_OK;
}

static ignis_status check_tensors(const cuda_backend *b, const ig_model_desc *d)
{
    const ig_weights *w = &d->ranks[b->rank];
    if (!ig_tensor_present(&w->tok_emb) || !ig_tensor_present(&w->final_norm))
        return ig_err(IGNIS_E_FORMAT, "%s: token embedding or final norm missing", d->path);
    for (int l = 0; l < d->cfg.n_layers; l++) {
        const ig_layer_weights *L = &w->layers[l];
        if (!ig_tensor_present(&L->wqkv) || !ig_tensor_present(&L->wo) || !ig_tensor_present(&L->w13) ||
            !ig_tensor_present(&L->w2) || !ig_tensor_present(&L->attn_norm) || !ig_tensor_present(&L->ffn_norm))
            return ig_err(IGNIS_E_FORMAT, "%s: layer %d is missing a weight", d->path, l);
        if (d->cfg.qkv_bias && !ig_tensor_present(&L->bqkv))
            return ig_err(IGNIS_E_FORMAT, "%s: layer %d has no qkv bias but the config asks for one", d->path, l);
    }
    (void)b;
    return IGNIS_OK;
}

ignis_status ig_cuda_upload_weights(cuda_backend *b, const ig_model_desc *d, const ig_backend_opts *o)
{
    IG_TRY(check_tensors(b, d));
    b->layers = calloc((size_t)d->cfg.n_layers, sizeof *b->layers);
    if (!b->layers) return ig_err(IGNIS_E_NOMEM, "out of memory");
    upload u;
    memset(&u, 0, sizeof u);
    u.b = b;
    u.o = o;
    ignis_status s = IGNIS_OK;
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < 2 && e == cudaSuccess; i++) {
        e = cudaMallocHost(&u.pin[i], STAGE_BYTES);
        if (e == cudaSuccess) e = cudaMalloc(&u.dscratch[i], STAGE_BYTES);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&u.ev[i], cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        s = ig_err(IGNIS_E_DEVICE, "allocating the weight staging buffers: %s", cudaGetErrorString(e));
    } else {
        s = upload_all(&u, d);
        if (s == IGNIS_OK && (e = cudaStreamSynchronize(b->st)) != cudaSuccess)
            s = ig_err(IGNIS_E_DEVICE, "loading weights: %s", cudaGetErrorString(e));
    }
    cudaStreamSynchronize(b->st);
    for (int i = 0; i < 2; i++) {
        if (u.pin[i]) cudaFreeHost(u.pin[i]);
        if (u.dscratch[i]) cudaFree(u.dscratch[i]);
        if (u.ev[i]) cudaEventDestroy(u.ev[i]);
    }
    if (s == IGNIS_OK)
        ig_log(IGNIS_LOG_INFO, "CUDA: %.2f GiB of weights on device %d", (double)b->wbytes / 1073741824.0, b->device);
    return s;
}
