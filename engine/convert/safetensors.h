/* Reading Hugging Face safetensors checkpoints: one model.safetensors or shards listed by
 * model.safetensors.index.json. Files are mmap'd read-only; tensors point into the maps,
 * so reading a 14 GB checkpoint costs page-cache traffic, not a second copy in memory.
 *
 * Every header entry is validated when the file opens (dtype known, shape and byte count
 * agree, data inside the file, no two tensors overlapping), so later code can trust
 * `data` and `bytes` without re-checking. */
#ifndef IG_SAFETENSORS_H
#define IG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

#define IG_ST_MAX_DIMS 8

/* safetensors dtypes. Only F32/F16/BF16 carry weights ignis uses; the others are parsed
 * so that a checkpoint holding, say, an I64 buffer opens and the error (if that tensor is
 * needed) can name it. */
typedef enum ig_st_dtype {
    IG_ST_F32 = 0,
    IG_ST_F16,
    IG_ST_BF16,
    IG_ST_F64,
    IG_ST_I64,
    IG_ST_I32,
    IG_ST_I16,
    IG_ST_I8,
    IG_ST_U8,
    IG_ST_BOOL,
    IG_ST_U16,
    IG_ST_U32,
    IG_ST_U64,
    IG_ST_F8_E4M3,
    IG_ST_F8_E5M2
} ig_st_dtype;

const char *ig_st_dtype_name(ig_st_dtype t); /* "F32", "I64", ... as in the file */
size_t ig_st_dtype_size(ig_st_dtype t);

typedef struct ig_st_tensor {
    const char *name; /* points into the set's storage */
    const char *file; /* base name of the file holding it */
    ig_st_dtype dtype;
    int ndim;
    int64_t shape[IG_ST_MAX_DIMS];
    const void *data; /* inside the mmap */
    uint64_t bytes;
} ig_st_tensor;

typedef struct ig_st_file {
    char *path;
    char *base; /* file name without directory, for messages */
    void *map;
    size_t len;
} ig_st_file;

/* All tensors of one checkpoint, sorted by name. */
typedef struct ig_st_set {
    char dir[1024];
    char index_name[64]; /* "model.safetensors.index.json" or "" for a single file */
    ig_st_file *files;
    int n_files;
    ig_st_tensor *tensors;
    int n_tensors;
} ig_st_set;

/* Opens one safetensors file into `set` (zeroed by the caller before the first file),
 * appending its tensors. */
ignis_status ig_st_open_file(ig_st_set *set, const char *path);
/* Opens a checkpoint directory: model.safetensors.index.json if present (every shard it
 * names, and every tensor it maps must be in the named shard), else model.safetensors,
 * else the single *.safetensors file in the directory. */
ignis_status ig_st_open_dir(ig_st_set *set, const char *dir);
void ig_st_close(ig_st_set *set);
/* NULL when absent. */
const ig_st_tensor *ig_st_find(const ig_st_set *set, const char *name);
/* "model.safetensors" or "model.safetensors.index.json", for "not found" messages. */
const char *ig_st_where(const ig_st_set *set);

#endif
