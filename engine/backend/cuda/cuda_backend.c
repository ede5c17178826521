/* The CUDA backend's lifecycle: device selection and query, cuBLAS handle, KV pool,
 * memory info, teardown. Weights: weights.c; the forward pass: forward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_tp.h"

int ig_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver / no device: not sticky, clear it */
        return 0;
    }
    return n;
}

static size_t cuda_kv_block_bytes(const ig_backend *base, int block_len)
{
    const cuda_backend *b = (const cuda_backend *)base;
    return (size_t)b->n_layers * 2 * b->nkv * (size_t)block_len * b->D * ig_dtype_size(b->dt);
}

static ignis_status cuda_mem_info(ig_backend *base, uint64_t *free_b, uint64_t *total_b)
{
    cuda_backend *b = (cuda_backend *)base;
    IG_CK(cudaSetDevice(b->device));
    size_t f = 0, t = 0;
    IG_CK(cudaMemGetInfo(&f, &t));
    /* keep room for the step scratch, cuBLAS and graphs: they are allocated after the pool */
    size_t reserve = (size_t)1 << 30;
    *free_b = f > reserve ? f - reserve : 0;
    *total_b = t;
    return IGNIS_OK;
}

static ignis_status cuda_kv_init(ig_backend *base, int block_len, int n_blocks, int *n_made)
{
    cuda_backend *b = (cuda_backend *)base;
    if (block_len < 1) return ig_err(IGNIS_E_ARG, "cache_block_seq_len must be >= 1 (got %d)", block_len);
    IG_CK(cudaSetDevice(b->device));
    size_t bb = cuda_kv_block_bytes(base, block_len);
    if (n_blocks < 1) return ig_err(IGNIS_E_ARG, "KV cache: %d blocks asked for (at least 1)", n_blocks);
    if (b->kv_pool) {
        cudaFree(b->kv_pool);
        b->kv_pool = NULL;
    }
    ig_cuda_drop_graphs(b);
    /* + 1: the private padding block of graph buckets (cuda_internal.h) */
    size_t bytes = bb * ((size_t)n_blocks + 1);
    cudaError_t e = cudaMalloc(&b->kv_pool, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        b->kv_pool = NULL;
        return ig_err(IGNIS_E_DEVICE, "KV cache: cudaMalloc of %d blocks (%.2f GiB) on device %d failed: %s", n_blocks,
                      (double)bytes / 1073741824.0, b->device, cudaGetErrorString(e));
    }
    /* zeroed so that a stray read of an unwritten slot is finite (never NaN garbage) */
    IG_CK(cudaMemsetAsync(b->kv_pool, 0, bytes, b->st));
    IG_CK(cudaStreamSynchronize(b->st));
    b->kv_bytes = bytes;
    base->block_len = block_len;
    base->n_blocks = n_blocks;
    if (n_made) *n_made = n_blocks;
    return IGNIS_OK;
}

static ignis_status cuda_kv_copy_block(ig_backend *base, int dst, int src, int n)
{
    cuda_backend *b = (cuda_backend *)base;
    if (!b->kv_pool) return ig_err(IGNIS_E_STATE, "CUDA backend: kv_copy_block before kv_init");
    if (dst < 0 || dst >= base->n_blocks || src < 0 || src >= base->n_blocks || n < 0 || n > base->block_len)
        return ig_err(IGNIS_E_ARG, "kv_copy_block(%d <- %d, %d slots) out of range (%d blocks of %d)", dst, src, n,
                      base->n_blocks, base->block_len);
    IG_CK(cudaSetDevice(b->device));
    ig_kv_desc kv = {b->kv_pool, b->n_layers, b->nkv, b->D, base->block_len};
    IG_CK(ig_k_kv_copy(b->dt, kv, dst, src, n, b->st));
    IG_CK(cudaStreamSynchronize(b->st));
    return IGNIS_OK;
}

static void cuda_destroy(ig_backend *base)
{
    cuda_backend *b = (cuda_backend *)base;
    if (!b) return;
    cudaSetDevice(b->device);
    if (b->st) cudaStreamSynchronize(b->st);
    if (b->comm) b->nccl->CommDestroy(b->comm);
    ig_nccl_close(b->nccl);
    ig_cuda_drop_graphs(b);
    ig_cuda_free_step(b);
    if (b->cublas) cublasDestroy(b->cublas);
    cudaFree(b->cublas_ws);
    cudaFree(b->kv_pool);
    cudaFree(b->wbuf);
    if (b->st) cudaStreamDestroy(b->st);
    free(b->layers);
    cudaGetLastError();
    free(b);
}

static const ig_backend_ops k_cuda_ops = {
    .name = "cuda",
    .kv_init = cuda_kv_init,
    .kv_block_bytes = cuda_kv_block_bytes,
    .forward = ig_cuda_forward,
    .kv_copy_block = cuda_kv_copy_block,
    .mem_info = cuda_mem_info,
    .destroy = cuda_destroy,
};

static ignis_status check_shape(const ig_model_desc *d)
{
    const ig_config *c = &d->cfg;
    if (c->head_dim % 8 != 0 || c->head_dim > 256)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: head_dim %d: the CUDA attention kernels need a multiple of 8 up to 256",
                      d->path, c->head_dim);
    if ((c->n_heads / c->n_kv_heads) * c->head_dim > 2048)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: %d query heads per KV head of dim %d exceed the decode kernel's 2048",
                      d->path, c->n_heads / c->n_kv_heads, c->head_dim);
    return IGNIS_OK;
}

/* Checked before any device is touched, so a bad value is reported as such everywhere. */
static ignis_status check_knobs(const ignis_cuda_opts *k)
{
    if (k->split_cover < 0)
        return ig_err(IGNIS_E_ARG, "cuda.split_cover %d: must be 0 (default 4) or a positive block count per SM",
                      k->split_cover);
    if (k->decode_attn != 0 && k->decode_attn != 1)
        return ig_err(IGNIS_E_ARG, "cuda.decode_attn %d: must be 0 (streaming where possible) or 1 (tiled)",
                      k->decode_attn);
    if (k->nccl != 0 && k->nccl != 1)
        return ig_err(IGNIS_E_ARG, "cuda.nccl %d: must be 0 (NCCL for tp > 1 only) or 1 (always)", k->nccl);
    return IGNIS_OK;
}

/* The measured defaults stand in for 0 (ignis.h documents each knob). */
static ignis_status apply_knobs(cuda_backend *b, const ignis_cuda_opts *k)
{
    IG_TRY(check_knobs(k));
    b->use_graphs = k->graphs >= 0;
    /* measured: ig_gemv beats cuBLAS up to 4 rows (bench/NOTES-cuda.md) */
    b->gemv_max_m = k->gemv_max_m == 0 ? 4 : k->gemv_max_m < 0 ? 0 : k->gemv_max_m;
    /* measured on H100: 189 vs 182 tok/s at batch 1 over 2 (NOTES-cuda.md) */
    b->split_cover = k->split_cover > 0 ? k->split_cover : 4;
    b->decode_attn = k->decode_attn == 1 ? IG_ATTN_DECODE_TILED : IG_ATTN_DECODE_AUTO;
    return IGNIS_OK;
}

/* One rank's backend over d->ranks[rank] on device dev (rank 0 of 1 without TP). */
static ignis_status create_rank(const ig_model_desc *d, int rank, int dev, const ig_backend_opts *o, ig_backend **out)
{
    *out = NULL;
    IG_TRY(check_shape(d));
    int n = ig_cuda_device_count();
    if (n == 0) return ig_err(IGNIS_E_DEVICE, "no CUDA device is available (cudaGetDeviceCount found none)");
    if (dev < 0 || dev >= n) return ig_err(IGNIS_E_DEVICE, "CUDA device %d does not exist (%d found)", dev, n);
    ig_dtype dt = o ? o->dtype : IG_F16;
    if (dt != IG_F16 && dt != IG_BF16) dt = d->weight_dtype == IG_BF16 ? IG_BF16 : IG_F16;

    cuda_backend *b = calloc(1, sizeof *b);
    if (!b) return ig_err(IGNIS_E_NOMEM, "out of memory");
    b->base.ops = &k_cuda_ops;
    b->base.desc = d;
    b->base.weight_dtype = dt;
    b->device = dev;
    b->dt = dt;
    const ig_config *c = &d->cfg;
    b->rank = rank;
    b->tp = d->tp;
    b->H = c->hidden;
    b->nh = c->n_heads / d->tp;
    b->nkv = c->n_kv_heads / d->tp;
    b->D = c->head_dim;
    b->inter = c->inter / d->tp;
    b->vocab = c->vocab_size;
    b->vocab_padded = d->vocab_padded;
    b->vslice = d->vocab_padded / d->tp;
    b->n_layers = c->n_layers;
    b->qkv_rows = ig_qkv_rows(c, d->tp);
    b->eps = c->norm_eps;
    b->scale = 1.0f / sqrtf((float)c->head_dim);
    ignis_status s = IGNIS_OK;
#define TRY_(x)                                                                                                        \
    do {                                                                                                               \
        if ((s = (x)) != IGNIS_OK) goto fail;                                                                          \
    } while (0)
    TRY_(apply_knobs(b, &o->cuda));
    {
        cudaError_t e = cudaSetDevice(dev);
        if (e != cudaSuccess) {
            s = ig_err(IGNIS_E_DEVICE, "cudaSetDevice(%d): %s", dev, cudaGetErrorString(e));
            goto fail;
        }
        struct cudaDeviceProp p;
        if ((e = cudaGetDeviceProperties(&p, dev)) != cudaSuccess) {
            s = ig_err(IGNIS_E_DEVICE, "cudaGetDeviceProperties(%d): %s", dev, cudaGetErrorString(e));
            goto fail;
        }
        if (p.major < 8) {
            s = ig_err(IGNIS_E_UNSUPPORTED, "CUDA device %d (%s) is compute capability %d.%d; ignis needs 8.0 or newer",
                       dev, p.name, p.major, p.minor);
            goto fail;
        }
        /* per device: launchers take only a stream (ig_kernels.h) */
        if ((e = ig_kernels_set_pdl(dev, o->cuda.pdl >= 0)) != cudaSuccess) {
            s = ig_err(IGNIS_E_DEVICE, "CUDA device %d: %s", dev, cudaGetErrorString(e));
            goto fail;
        }
        b->n_sms = p.multiProcessorCount;
        snprintf(b->device_name, sizeof b->device_name, "%s", p.name);
        if ((e = cudaStreamCreateWithFlags(&b->st, cudaStreamNonBlocking)) != cudaSuccess) {
            s = ig_err(IGNIS_E_DEVICE, "cudaStreamCreate: %s", cudaGetErrorString(e));
            goto fail;
        }
        cublasStatus_t bs = cublasCreate(&b->cublas);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            b->cublas = NULL;
            s = ig_err(IGNIS_E_DEVICE, "cublasCreate: %s", cublasGetStatusString(bs));
            goto fail;
        }
        /* a fixed workspace: cuBLAS must not allocate while a graph is being captured */
        b->cublas_ws_bytes = (size_t)32 << 20;
        if ((e = cudaMalloc(&b->cublas_ws, b->cublas_ws_bytes)) != cudaSuccess) {
            s = ig_err(IGNIS_E_DEVICE, "cudaMalloc(cuBLAS workspace): %s", cudaGetErrorString(e));
            goto fail;
        }
        if ((bs = cublasSetWorkspace(b->cublas, b->cublas_ws, b->cublas_ws_bytes)) != CUBLAS_STATUS_SUCCESS ||
            (bs = cublasSetStream(b->cublas, b->st)) != CUBLAS_STATUS_SUCCESS ||
            (bs = cublasSetMathMode(b->cublas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
            s = ig_err(IGNIS_E_DEVICE, "cuBLAS setup: %s", cublasGetStatusString(bs));
            goto fail;
        }
        ig_log(IGNIS_LOG_INFO, "CUDA: device %d %s (sm_%d%d, %d SMs, %.1f GiB), weights as %s", dev, p.name, p.major,
               p.minor, p.multiProcessorCount, (double)p.totalGlobalMem / 1073741824.0, ig_dtype_str(dt));
    }
    TRY_(ig_cuda_upload_weights(b, d, o));
    *out = &b->base;
    return IGNIS_OK;
fail:
    cuda_destroy(&b->base);
    return s;
#undef TRY_
}

ignis_status ig_cuda_rank_create(const ig_model_desc *d, int rank, int nranks, int device, const ncclUniqueId *id,
                                 const ig_backend_opts *o, ig_backend **out)
{
    IG_TRY(create_rank(d, rank, device, o, out));
    if (!id) return IGNIS_OK;
    cuda_backend *b = (cuda_backend *)*out;
    ignis_status s = ig_nccl_open(o->cuda.nccl_lib, &b->nccl);
    ncclResult_t r = ncclSuccess;
    if (s == IGNIS_OK) {
        cudaSetDevice(device);
        r = b->nccl->CommInitRank(&b->comm, nranks, *id, rank);
        if (r != ncclSuccess) {
            b->comm = NULL;
            s = ig_err(IGNIS_E_DEVICE, "NCCL: ncclCommInitRank(rank %d of %d) on device %d: %s", rank, nranks, device,
                       b->nccl->GetErrorString(r));
        }
    }
    if (s != IGNIS_OK) {
        cuda_destroy(*out);
        *out = NULL;
    }
    return s;
}

ignis_status ig_backend_cuda_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out)
{
    ig_backend_opts defaults = {.dtype = IG_F16};
    if (!o) o = &defaults;
    IG_TRY(check_knobs(&o->cuda));
    /* cuda.nccl = 1 runs even one rank through NCCL: the TP path, testable on one GPU */
    if (d->tp > 1 || o->cuda.nccl == 1) return ig_cuda_tp_create(d, o, out);
    return create_rank(d, 0, o->device, o, out);
}
