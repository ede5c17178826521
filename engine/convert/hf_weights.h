/* Hugging Face tensors -> ignis' canonical per-rank layout (model.h).
 *
 * Conversion is split into a plan and a producer so the same code serves both callers:
 *  - ig_hf_plan() checks every source tensor the model needs (present, float dtype, shape)
 *    and lists the canonical tensors of every rank with their dtype and shape, before a
 *    byte is written;
 *  - ig_hf_produce() fills one canonical tensor's bytes, reading only the rows/columns of
 *    the source that rank needs. The workspace writer streams tensor by tensor (peak
 *    memory: the largest tensor), the online loader writes into buffers the desc owns.
 *
 * Rank slices (Megatron style):
 *  - wqkv rows: [q heads | k heads | v heads] of the rank (column parallel),
 *  - w13 rows: [gate rows | up rows] of the rank (column parallel),
 *  - wo, w2: the columns (input dim) of the rank (row parallel),
 *  - output: rows of the rank's vocab slice; the vocab is padded with zero rows to a
 *    multiple of tp,
 *  - tok_emb and the norms: whole on every rank. */
#ifndef IG_HF_WEIGHTS_H
#define IG_HF_WEIGHTS_H

#include "convert/safetensors.h"
#include "model/model.h"

typedef enum ig_role {
    IG_ROLE_TOK_EMB = 0,
    IG_ROLE_FINAL_NORM,
    IG_ROLE_OUTPUT,
    IG_ROLE_ATTN_NORM,
    IG_ROLE_WQKV,
    IG_ROLE_BQKV,
    IG_ROLE_WO,
    IG_ROLE_FFN_NORM,
    IG_ROLE_W13,
    IG_ROLE_W2,
    IG_ROLE_BO /* InternLM's o_proj bias */
} ig_role;

/* One canonical tensor of one rank. */
typedef struct ig_canon {
    char name[48]; /* workspace name: "tok_embeddings", "layers.3.wqkv", ... */
    int rank;
    int layer; /* -1 for model-level tensors */
    ig_role role;
    ig_dtype dtype;
    int ndim;
    int64_t shape[2];
} ig_canon;

/* An opened Hugging Face checkpoint: config plus mmap'd safetensors. */
typedef struct ig_hf_ckpt {
    char dir[1024];
    ig_config cfg;
    int src_dtype; /* config's torch_dtype as ig_dtype, or -1 */
    ig_st_set st;
} ig_hf_ckpt;

ignis_status ig_hf_ckpt_open(ig_hf_ckpt *ck, const char *dir);
void ig_hf_ckpt_close(ig_hf_ckpt *ck);

/* Validates the source tensors and lists the canonical tensors for `tp` ranks, rank by
 * rank. dtype_or_auto: an ig_dtype for the matrices, or -1 to keep the checkpoint's
 * (torch_dtype, else the embedding's stored dtype). *list is malloc'd. */
ignis_status ig_hf_plan(const ig_hf_ckpt *ck, int dtype_or_auto, int tp, ig_canon **list, int *n,
                        ig_dtype *matrix_dtype);
/* Writes t's bytes (ig_canon_bytes(t) of them) into dst. */
ignis_status ig_hf_produce(const ig_hf_ckpt *ck, int tp, const ig_canon *t, void *dst);
size_t ig_canon_bytes(const ig_canon *t);
/* True for tensors equal on every rank (tok_emb, norms). */
bool ig_canon_rank_invariant(ig_role r);
/* The desc's tensor a canonical tensor goes to. */
ig_tensor *ig_desc_slot(ig_model_desc *d, int rank, int layer, ig_role role);
/* Canonical name for (layer, role), as written in workspaces. */
void ig_canon_name(char *buf, size_t n, int layer, ig_role role);
/* Parses a canonical name back; 0 on success. */
int ig_canon_parse_name(const char *name, int *layer, ig_role *role);

#endif
