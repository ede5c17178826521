/*
 * The engine's built-in knobs, in one place: what a model gets when neither its workspace
 * nor the caller's ignis_engine_opts say otherwise (LMDeploy's TurboMind defaults, so a
 * workspace behaves the same under both engines). ig_engine_cfg_default (model.c), the
 * request engine (engine.c) and the direct sequence path (seq.c) read them from here.
 */
#ifndef IG_ENGINE_DEFAULTS_H
#define IG_ENGINE_DEFAULTS_H

/* Tokens one sequence may hold when the model's config gives no max_position_embeddings. */
#define IG_DEFAULT_SESSION_LEN 4096
/* Sequences in one step of the scheduler. */
#define IG_DEFAULT_MAX_BATCH_SIZE 128
/* < 1: fraction of the backend's free memory (after weights) given to the KV cache. */
#define IG_DEFAULT_CACHE_MAX_ENTRY_COUNT 0.8
/* Tokens per KV block. */
#define IG_DEFAULT_CACHE_BLOCK_SEQ_LEN 64
/* Prompt tokens computed per step (longer prompts are prefilled in chunks). */
#define IG_DEFAULT_MAX_PREFILL_TOKEN_NUM 8192
/* Prefix caching is opt-in (LMDeploy: enable_prefix_caching=False). */
#define IG_DEFAULT_ENABLE_PREFIX_CACHING 0

#endif
