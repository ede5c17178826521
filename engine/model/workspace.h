/* Workspaces: the directory `ignis convert` writes and ignis_model_open() loads.
 * The format is documented in WORKSPACE.md; this header holds the constants the writer
 * (convert/convert.c) and the loader (workspace.c) share. */
#ifndef IG_WORKSPACE_H
#define IG_WORKSPACE_H

#include <stdbool.h>

#include "model/model.h"

#define IG_WORKSPACE_FORMAT "ignis-workspace"
#define IG_WORKSPACE_VERSION 1
#define IG_WORKSPACE_CONFIG "ignis.json"
/* Tensor offsets in rank files are multiples of this: page-aligned for mmap, and far
 * beyond what vector loads and DMA engines need. */
#define IG_WORKSPACE_ALIGN 4096

/* Opens the workspace in dir: parses ignis.json, mmaps every rank file read-only and
 * points the tensors into the maps (no copies). With verify_checksums every tensor's
 * CRC32C is checked. d->engine comes from the "engine" section; d->tokenizer_dir is
 * DIR/tokenizer when it exists. */
ignis_status ig_workspace_open(const char *dir, bool verify_checksums, ig_model_desc *d);
/* True when dir holds an ignis.json whose "format" is "ignis-workspace". */
bool ig_is_workspace(const char *dir);

/* Names used in ignis.json for the enums (shared by writer and loader). */
const char *ig_rope_type_name(ig_rope_type t);
int ig_rope_type_from_name(const char *s, ig_rope_type *t); /* 0 on success */
const char *ig_arch_hf_name(ig_arch a);
int ig_arch_from_hf_name(const char *s, ig_arch *a); /* 0 on success */
/* HF's model_type of an architecture ("llama", "qwen2", ...), for configs that name none. */
const char *ig_arch_model_type(ig_arch a);

#endif
