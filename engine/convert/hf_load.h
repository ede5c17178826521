/* Online conversion: a Hugging Face directory straight into an in-memory model desc. */
#ifndef IG_HF_LOAD_H
#define IG_HF_LOAD_H

#include "model/model.h"

/* Converts the checkpoint in hf_dir into d for `tp` ranks, writing no files. The weights
 * live in buffers owned by d (rank-invariant tensors are stored once and shared by the
 * ranks). dtype_or_auto: an ig_dtype for the matrices, or -1 to keep the checkpoint's.
 * d->tokenizer_dir = hf_dir. */
ignis_status ig_hf_open(const char *hf_dir, ig_dtype dtype_or_auto, int tp, ig_model_desc *d);

#endif
