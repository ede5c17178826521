/* Tiny Hugging Face checkpoints written by the converter tests themselves: config.json
 * plus safetensors (single file or sharded), random values from a fixed seed. */
#ifndef TEST_CONVERT_FIXTURE_H
#define TEST_CONVERT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tc_arch { TC_LLAMA2, TC_LLAMA3, TC_QWEN2, TC_INTERNLM2 } tc_arch;

typedef struct tc_tensor {
    char name[128];
    char dtype[8]; /* safetensors dtype: "F32", "F16", "BF16", "I64" */
    int ndim;
    int64_t shape[2];
    unsigned char *data;
    size_t bytes;
    int shard; /* 0 or 1 when written sharded */
} tc_tensor;

typedef struct tc_model {
    tc_arch arch;
    int vocab, hidden, layers, heads, kv_heads, head_dim, inter;
    bool tie;
    const char *dtype; /* "F32", "F16" or "BF16" for every tensor */
    tc_tensor *t;
    int n;
} tc_model;

/* Defaults: vocab 51 (odd, so tp=2 pads), hidden 32, 2 layers, 4 heads, 2 KV heads
 * (MHA for llama2), head_dim 8, inter 48, F32; qwen2 tied. Generates the tensors. */
void tc_model_init(tc_model *m, tc_arch arch, uint64_t seed);
/* Same with every tensor stored as `dtype` ("F32", "F16", "BF16"). */
void tc_model_init_as(tc_model *m, tc_arch arch, uint64_t seed, const char *dtype);
void tc_model_free(tc_model *m);
tc_tensor *tc_find(tc_model *m, const char *name);
void tc_remove(tc_model *m, const char *name);
/* Values of tensor element i as float (F32/F16/BF16). */
float tc_value(const tc_tensor *t, int64_t i);

/* Writes dir/config.json (with extra JSON members spliced in, e.g. "\"rope_scaling\": {...}",
 * may be NULL) and the weights: one model.safetensors, or two shards + index when sharded. */
void tc_write(const tc_model *m, const char *dir, const char *extra_config, bool sharded);
void tc_write_config(const tc_model *m, const char *dir, const char *extra_config);
void tc_write_safetensors(const char *path, tc_tensor *const *t, int n);
void tc_write_text(const char *path, const char *text);

#endif
