/* synthetic:SHAPE — deterministic random weights of a real architecture's shape (like
 * vLLM's dummy load format), for benchmarks and tests that need no checkpoint. */
#ifndef IG_SYNTHETIC_H
#define IG_SYNTHETIC_H

#include "model/model.h"

/* Fills d for "synthetic:NAME" (the prefix is optional). No weight bytes are allocated:
 * every tensor is described by its seed and scale (see synth_fn.h). dtype AUTO means fp16. */
ignis_status ig_synthetic_open(const char *name, ig_dtype dtype, int tp, ig_model_desc *d);
/* Comma-separated list of the shape names, for messages and --help. */
const char *ig_synthetic_names(void);
/* Writes tensor t's values (converted to t->dtype) for elements [begin, end) into dst. */
void ig_synth_fill(const ig_tensor *t, int64_t begin, int64_t end, void *dst);

#endif
