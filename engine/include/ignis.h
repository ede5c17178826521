/*
 * ignis.h — the public API of libignis: convert, load, evaluate, generate, tokenize,
 * and (through the request API) serve many requests at once.
 *
 * Conventions (SQLite-style):
 *  - every handle is opaque and prefixed ignis_;
 *  - every fallible call returns an ignis_status; on failure ignis_last_error() holds a
 *    one-line message saying what failed, where and why (per thread);
 *  - the library never exits the process and never prints except through callbacks,
 *    progress hooks and the log level the caller sets.
 *
 * A "model path" accepted by ignis_model_open() is one of:
 *  - a workspace written by ignis_convert() (a directory holding ignis.json),
 *  - a Hugging Face model directory (config.json + safetensors): converted in memory,
 *  - "synthetic:SHAPE" (tiny, llama2-7b, llama3-8b, internlm2-7b, qwen2-7b, llama2-70b):
 *    deterministic random weights of a real architecture's shape, generated in memory.
 */
#ifndef IGNIS_H
#define IGNIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IGNIS_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum ignis_status {
    IGNIS_OK = 0,
    IGNIS_E_ARG,         /* a caller's argument is invalid */
    IGNIS_E_IO,          /* file system or network I/O failed */
    IGNIS_E_FORMAT,      /* an input file is malformed (JSON, safetensors, protobuf, ...) */
    IGNIS_E_UNSUPPORTED, /* valid input that ignis does not handle (architecture, dtype, ...) */
    IGNIS_E_NOMEM,       /* host memory exhausted */
    IGNIS_E_DEVICE,      /* CUDA/cuBLAS/NCCL failure or no usable device */
    IGNIS_E_CAPACITY,    /* a request does not fit: session length, KV cache, batch */
    IGNIS_E_CANCELLED,   /* stopped on request */
    IGNIS_E_STATE,       /* call out of order, or on a closed/ended object */
    IGNIS_E_NOT_FOUND,   /* a named thing (file, tensor, session, template) does not exist */
    IGNIS_E_INTERNAL     /* a bug in ignis: please report */
} ignis_status;

/* Message of the last failure on the calling thread ("" if none). Valid until the next
 * failing ignis call on this thread. */
const char *ignis_last_error(void);
const char *ignis_status_name(ignis_status s);
const char *ignis_version(void);

typedef enum ignis_log_level { IGNIS_LOG_ERROR = 0, IGNIS_LOG_WARN, IGNIS_LOG_INFO, IGNIS_LOG_DEBUG } ignis_log_level;
/* Messages at or below `level` go to `fn` (default: stderr, level WARN). fn may be NULL
 * to silence the library. */
typedef void (*ignis_log_fn)(void *user, ignis_log_level level, const char *msg);
void ignis_set_log(ignis_log_level level, ignis_log_fn fn, void *user);

/* Long operations (convert, load) report progress: stage is a short label ("convert",
 * "load"), done/total in the stage's unit (bytes). Called from the working thread. */
typedef void (*ignis_progress_fn)(void *user, const char *stage, uint64_t done, uint64_t total);

typedef enum ignis_dtype {
    IGNIS_DTYPE_AUTO = 0, /* keep the source's dtype (fp32 stays fp32) */
    IGNIS_DTYPE_F32,
    IGNIS_DTYPE_F16,
    IGNIS_DTYPE_BF16
} ignis_dtype;
const char *ignis_dtype_name(ignis_dtype d);
/* Parses "auto", "fp32"/"float32", "fp16"/"float16"/"half", "bf16"/"bfloat16". */
ignis_status ignis_dtype_parse(const char *s, ignis_dtype *out);

/* ----------------------------------------------------------------- convert */

typedef struct ignis_convert_opts {
    const char *model_name;    /* LMDeploy-style name; picks the chat template */
    const char *hf_dir;        /* Hugging Face model directory */
    const char *dst_path;      /* NULL: "./workspace" */
    ignis_dtype dtype;         /* weight dtype written */
    int tp;                    /* tensor-parallel ranks to split for (>= 1) */
    const char *chat_template; /* NULL: chosen from model_name; else a name or a .json file */
    ignis_progress_fn progress;
    void *progress_user;
} ignis_convert_opts;
void ignis_convert_opts_init(ignis_convert_opts *o);
/* Writes the workspace atomically: on failure nothing is left at dst_path. */
ignis_status ignis_convert(const ignis_convert_opts *opts);

/* ------------------------------------------------------------------- model */

typedef enum ignis_backend_kind {
    IGNIS_BACKEND_AUTO = 0, /* CUDA when built with it and a device exists, else CPU */
    IGNIS_BACKEND_CPU,
    IGNIS_BACKEND_CUDA
} ignis_backend_kind;
const char *ignis_backend_name(ignis_backend_kind b);
ignis_status ignis_backend_parse(const char *s, ignis_backend_kind *out);

/* Knobs of the CUDA backend, per model (every rank of it). 0 in every field is the
 * measured best (bench/NOTES-cuda.md); the other values exist to compare and tune. The
 * library reads no environment variables: the `ignis` CLI maps IGNIS_CUDA_* onto these. */
typedef struct ignis_cuda_opts {
    int graphs;           /* decode steps replayed as CUDA graphs: 0 on, -1 off (each kernel launched) */
    int pdl;              /* programmatic dependent launch (a kernel starts while its predecessor
                             drains): 0 on, -1 off */
    int gemv_max_m;       /* largest token count served by the fused GEMV kernels instead of
                             cuBLAS: 0 = 4, -1 = none (cuBLAS for every step) */
    int split_cover;      /* decode attention split-K aims at this many blocks per SM: 0 = 4 */
    int decode_attn;      /* 0: the streaming kernel where the shape allows; 1: always the
                             shared-memory tile kernel */
    int nccl;             /* 1: run even one rank through the NCCL path (tests it on one GPU);
                             0: NCCL only for tp > 1 */
    const char *nccl_lib; /* libnccl to load for tp > 1 (read while the model opens); NULL:
                             libnccl.so.2 from the loader's path */
} ignis_cuda_opts;

/* Options for opening a model. Fields left at their init value take the workspace's
 * stored knobs (or built-in defaults for HF directories and synthetic models). */
typedef struct ignis_engine_opts {
    ignis_backend_kind backend;
    int threads;                  /* CPU backend worker threads; 0 = online cores */
    int device;                   /* first CUDA device ordinal */
    ignis_dtype dtype;            /* AUTO: workspace dtype (fp32 runs as fp16 on CUDA) */
    int tp;                       /* 0: 1 */
    int session_len;              /* 0: workspace value */
    int max_batch_size;           /* 0: workspace value */
    double cache_max_entry_count; /* 0: workspace value; < 1 fraction of free memory, >= 1 blocks */
    int cache_block_seq_len;      /* 0: workspace value */
    int max_prefill_token_num;    /* 0: workspace value */
    int enable_prefix_caching;    /* -1: workspace value, 0 off, 1 on */
    bool verify_checksums;        /* check every tensor's CRC32C while loading */
    const char *chat_template;    /* NULL: workspace's choice; else a name or a .json file */
    ignis_progress_fn progress;
    void *progress_user;
    ignis_cuda_opts cuda; /* CUDA backend knobs (all 0: defaults) */
} ignis_engine_opts;
void ignis_engine_opts_init(ignis_engine_opts *o);

typedef struct ignis_model ignis_model;

ignis_status ignis_model_open(const char *path, const ignis_engine_opts *opts, ignis_model **out);
void ignis_model_close(ignis_model *m);

typedef struct ignis_model_info {
    const char *architecture; /* "LlamaForCausalLM", ... */
    const char *source;       /* "workspace", "hf", "synthetic" */
    const char *backend;      /* "cpu", "cuda" */
    const char *weight_dtype; /* as stored/loaded on the backend */
    int vocab_size;
    int hidden_size;
    int num_layers;
    int num_heads;
    int num_kv_heads;
    int head_dim;
    int intermediate_size;
    int bos_token_id; /* -1 if none */
    int eos_token_id; /* first EOS id; -1 if none */
    int session_len;
    int max_batch_size;
    int cache_block_seq_len;
    int tp;
    uint64_t num_params;
    uint64_t weight_bytes; /* bytes one forward pass reads for the weights */
} ignis_model_info;
ignis_status ignis_model_get_info(const ignis_model *m, ignis_model_info *out);
/* Every id that ends generation (config's eos_token_id may be a list). */
int ignis_model_eos_ids(const ignis_model *m, const int32_t **ids);

/* --------------------------------------------------------------- sampling */

typedef struct ignis_sampling {
    float temperature;        /* <= 0: greedy (argmax) */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off; HF semantics over prompt + generated ids */
    uint64_t seed;            /* same seed, same model, same input: same output */
} ignis_sampling;
void ignis_sampling_init(ignis_sampling *s); /* greedy, no penalties, seed 0 */
/* IGNIS_E_ARG unless temperature is finite, top_p finite and > 0, repetition_penalty finite
 * and > 0 (NaN or infinity would silently turn sampling or a filter off). */
ignis_status ignis_sampling_validate(const ignis_sampling *s);

/* ------------------------------------------------ single sequence (direct path)
 * One sequence with its own KV cache, evaluated on the calling thread: logits for tests,
 * fidelity checks and kernel benchmarks; history stays cached between calls, so only new
 * tokens are computed. Generation with text (stop words, streamed text) goes through the
 * request API below, which `ignis generate`, `ignis chat`, the server and the harness use;
 * ignis_seq_generate applies the same end-of-generation rule on ids alone. */

typedef struct ignis_seq ignis_seq;

ignis_status ignis_seq_create(ignis_model *m, int max_len, ignis_seq **out); /* 0: session_len */
void ignis_seq_destroy(ignis_seq *s);
int ignis_seq_len(const ignis_seq *s); /* tokens held, a pending generated one included */
int ignis_seq_capacity(const ignis_seq *s);
/* Every token the sequence holds, in order (evaluated ones, then a generated token that
 * is still pending evaluation); *ids is valid until the next call on s. */
int ignis_seq_tokens(const ignis_seq *s, const int32_t **ids);
/* Drops tokens past `len` (0 resets the sequence). */
ignis_status ignis_seq_truncate(ignis_seq *s, int len);
/* Appends n tokens and runs them. logits (may be NULL) receives vocab_size floats for the
 * last token, or n * vocab_size floats (row per token) when all_logits is true. */
ignis_status ignis_seq_eval(ignis_seq *s, const int32_t *ids, int n, float *logits, bool all_logits);

/* Why a generation ended (one definition for ignis_seq_generate and the request API). */
typedef enum ignis_finish_reason {
    IGNIS_FINISH_NONE = 0,
    IGNIS_FINISH_LENGTH,    /* max_new_tokens reached */
    IGNIS_FINISH_STOP,      /* EOS or a stop id/word */
    IGNIS_FINISH_CALLBACK,  /* ignis_seq_generate: the token callback asked to stop */
    IGNIS_FINISH_CANCELLED, /* cancelled by the caller */
    IGNIS_FINISH_CAPACITY,  /* session length reached */
    IGNIS_FINISH_ERROR
} ignis_finish_reason;
/* "none", "length", "stop", "callback", "cancelled", "capacity", "error". */
const char *ignis_finish_reason_name(ignis_finish_reason r);

typedef struct ignis_gen_stats {
    int prompt_tokens;    /* tokens prefilled by this call */
    int generated_tokens; /* tokens produced */
    double prefill_s;     /* wall time of the prefill */
    double decode_s;      /* wall time from the first generated token to the last */
    ignis_finish_reason finish_reason;
} ignis_gen_stats;

/* Called with each generated token, before the next step. Return non-zero to stop. */
typedef int (*ignis_token_fn)(void *user, int32_t token);

typedef struct ignis_gen_opts {
    ignis_sampling sampling;
    int max_new_tokens;      /* <= 0: until EOS/stop or capacity */
    bool ignore_eos;         /* keep going past EOS (benchmarks) */
    const int32_t *stop_ids; /* extra ids that stop generation (included in output) */
    int n_stop_ids;
    ignis_token_fn on_token;
    void *user;
} ignis_gen_opts;
void ignis_gen_opts_init(ignis_gen_opts *o);

/* Prefills `prompt` after what the sequence already holds, then samples until a stop.
 * The generated tokens stay in the cache (except the last one, which was sampled but not
 * yet evaluated: it is evaluated first by the next eval/generate call). */
ignis_status ignis_seq_generate(ignis_seq *s, const int32_t *prompt, int n_prompt, const ignis_gen_opts *opts,
                                ignis_gen_stats *stats);

/* Deterministic sampler over a logits row, shared by all backends' host paths:
 * `history` feeds the repetition penalty; `step` picks the random draw for `seed`.
 * Returns -1 when vocab <= 0 or ignis_sampling_validate(s) fails (message set). */
int32_t ignis_sample_logits(const float *logits, int vocab, const ignis_sampling *s, const int32_t *history,
                            int n_history, uint64_t step);

/* ------------------------------------------------------------- request API
 * An ignis_engine schedules many concurrent requests over one model on its own thread:
 * persistent (continuous) batching — requests join and leave the running batch at every
 * step — with a paged KV cache, chunked prefill mixed with decode, preemption when the
 * cache runs out (the preempted sequence keeps its token ids and is recomputed later, so
 * no request is ever dropped or changed), optional prefix caching and interactive
 * sessions. It is what the OpenAI server, `ignis generate --batch` and the benchmark
 * harness use. Every function below may be called from any thread.
 *
 * One engine per model at a time: it takes its KV blocks from the model's pool (sized by
 * ignis_model_open), which a direct ignis_seq shares. */

typedef struct ignis_engine ignis_engine;
typedef struct ignis_request ignis_request;

/* opts NULL: the model's knobs. Of ignis_engine_opts, these take effect here (0 or -1:
 * the model's value): max_batch_size, max_prefill_token_num, enable_prefix_caching,
 * session_len, and cache_max_entry_count >= 1, which caps the
 * number of KV blocks this engine may hold (the pool itself and cache_block_seq_len are
 * fixed when the model is opened; other values must match or be 0). The model must
 * outlive the engine. */
ignis_status ignis_engine_create(ignis_model *m, const ignis_engine_opts *opts, ignis_engine **out);
/* Stops the scheduler: every unfinished request finishes with IGNIS_FINISH_CANCELLED,
 * every session ends. Request handles stay valid until released. */
void ignis_engine_destroy(ignis_engine *e);

typedef enum ignis_event_type {
    IGNIS_EVENT_NONE = 0, /* poll timed out */
    IGNIS_EVENT_TOKEN,    /* a generated token */
    IGNIS_EVENT_FINISHED, /* the request ended normally (see finish_reason); last event */
    IGNIS_EVENT_ERROR     /* the request failed (status, error); last event */
} ignis_event_type;

typedef struct ignis_event {
    ignis_event_type type;
    int32_t token; /* TOKEN: the id */
    int index;     /* TOKEN: 0-based position among this request's generated tokens */
    /* TOKEN and FINISHED: output text that became final with this event (UTF-8, not
     * NUL-terminated, len may be 0; always empty without a tokenizer). The output is
     * decoded as a continuation of the sequence, so prompt text + output text reads as one
     * text (a first word keeps its leading space). Text that may
     * be the start of a stop word is held back until it is known not to be; a matched
     * stop word and what follows it are never delivered. Valid until the next poll of
     * this request (or, in a callback, until it returns). */
    const char *text;
    size_t text_len;
    double time_s;                     /* seconds from submit to this event */
    ignis_finish_reason finish_reason; /* FINISHED: why (ERROR: IGNIS_FINISH_ERROR) */
    ignis_status status;               /* ERROR: what failed */
    const char *error;                 /* ERROR: the message (same lifetime as text) */
} ignis_event;

/* Event callback, called on the engine's thread in order, one request at a time. It must
 * not block for long (it stalls every request) and must not destroy the engine; it may
 * submit, cancel and release. */
typedef void (*ignis_event_fn)(void *user, ignis_request *req, const ignis_event *ev);

typedef struct ignis_request_params {
    /* The prompt: ids, or UTF-8 text tokenized with the model's tokenizer (BOS added as
     * the tokenizer's config says, special tokens written in the text recognised). With
     * a session, the prompt is appended to what the session already holds. */
    const int32_t *prompt_ids;
    int n_prompt_ids;
    const char *prompt;
    ignis_sampling sampling;
    int max_new_tokens;      /* <= 0: until EOS/stop or the session length */
    bool ignore_eos;         /* keep going past EOS (benchmarks) */
    const int32_t *stop_ids; /* ids that end generation (kept in the output ids) */
    int n_stop_ids;
    const char *const *stop_words; /* strings that end generation, matched on the decoded
                                      output (needs a tokenizer); cut from the text */
    int n_stop_words;
    bool skip_special;   /* leave special tokens out of the text (default true) */
    uint64_t session_id; /* 0: none; else the interactive session to continue */
    /* With a session: drop this many tokens from the end of its history before the prompt
     * is appended (0: keep it all), like LMDeploy's `step`. A chat client that re-renders
     * the conversation sends only what differs from the history: the tokens past their
     * common prefix are dropped, the new ones appended. More than the history: ERROR. */
    int session_rewind;
    int priority; /* higher is admitted first and preempted last; ties FCFS */
    /* With on_event set, events go to the callback only; without, they queue for
     * ignis_request_poll. */
    ignis_event_fn on_event;
    void *user;
} ignis_request_params;
void ignis_request_params_init(ignis_request_params *p); /* greedy, no limit, skip_special */

/* Queues a request. Fails at once (and makes no handle) on bad parameters, a prompt that
 * can never fit (IGNIS_E_CAPACITY: longer than session_len, or prompt + max_new_tokens
 * larger than the whole KV cache), or a session that already has a request in flight
 * (IGNIS_E_STATE). Later failures arrive as an ERROR event. The handle is the caller's
 * until ignis_request_release. */
ignis_status ignis_engine_submit(ignis_engine *e, const ignis_request_params *p, ignis_request **out);

/* Waits up to timeout_ms (< 0: forever, 0: no wait) for the next event. On timeout
 * ev->type is IGNIS_EVENT_NONE. After the last event (FINISHED/ERROR) has been taken,
 * returns IGNIS_E_STATE. IGNIS_E_STATE too for a request that has a callback. */
ignis_status ignis_request_poll(ignis_request *r, ignis_event *ev, int timeout_ms);
/* Asks the engine to stop the request; it finishes with IGNIS_FINISH_CANCELLED at the
 * next step (tokens already delivered stay delivered). No-op once finished. */
void ignis_request_cancel(ignis_request *r);
/* True once the request has finished or failed (its last event is produced). */
bool ignis_request_done(ignis_request *r);
/* Waits until done; timeout_ms < 0: forever. Returns IGNIS_E_STATE on timeout. Does not
 * consume queued events. */
ignis_status ignis_request_wait(ignis_request *r, int timeout_ms);

typedef struct ignis_request_result {
    ignis_finish_reason finish_reason; /* IGNIS_FINISH_NONE while running */
    ignis_status status;               /* IGNIS_OK unless it failed */
    int prompt_tokens;                 /* prompt length of this request (not counting session history) */
    int cached_tokens;                 /* prompt + history tokens whose KV came from the prefix cache or
                                          the session instead of being computed (at first admission) */
    int generated_tokens;
    int preemptions; /* times this request was preempted and recomputed */
    double queue_s;  /* submit -> first scheduled */
    double ttft_s;   /* submit -> first token (-1: none yet) */
    double e2e_s;    /* submit -> finished (-1: not yet) */
} ignis_request_result;
/* A snapshot; safe while the request runs. */
void ignis_request_get_result(ignis_request *r, ignis_request_result *out);
/* Copies up to cap generated ids (and, when times != NULL, each token's seconds from
 * submit); returns how many tokens there are in all. */
int ignis_request_tokens(ignis_request *r, int32_t *ids, double *times, int cap);
/* The output text so far (malloc'd, NUL-terminated; release with free()), as delivered
 * in events: stop words cut, held-back text excluded until the end. NULL without a
 * tokenizer or on allocation failure. */
char *ignis_request_text(ignis_request *r);
/* The failure message of a request that ended with an ERROR event ("" otherwise). The
 * pointer stays valid until release. */
const char *ignis_request_error(ignis_request *r);
/* Drops the caller's handle. An unfinished request is cancelled first; no callback runs
 * after this returns (unless called from that request's own callback). */
void ignis_request_release(ignis_request *r);

/* Frees the KV blocks a session holds and forgets its history. A request of the session
 * still in flight is cancelled. IGNIS_E_NOT_FOUND when the id is unknown. */
ignis_status ignis_engine_end_session(ignis_engine *e, uint64_t session_id);

typedef struct ignis_engine_stats {
    /* configuration */
    int max_batch_size;
    int max_prefill_token_num;
    int session_len;
    int cache_block_seq_len;
    int kv_blocks_total; /* blocks this engine may hold */
    bool prefix_caching;
    /* now */
    int running;          /* requests admitted (holding or computing KV) */
    int waiting;          /* requests queued, including preempted ones */
    int sessions;         /* live sessions */
    int kv_blocks_used;   /* referenced by running requests or sessions */
    int kv_blocks_cached; /* unreferenced prefix-cache blocks (reclaimable) */
    int kv_blocks_free;   /* total - used - cached */
    int kv_blocks_peak_used;
    int batch_size;   /* sequences in the last step */
    int batch_tokens; /* tokens in the last step */
    /* counters since creation */
    uint64_t steps;
    uint64_t requests_submitted;
    uint64_t requests_finished; /* FINISHED events, cancellations included */
    uint64_t requests_failed;   /* ERROR events */
    uint64_t preemptions;
    uint64_t prefill_tokens;       /* prompt/history tokens computed (recomputation included) */
    uint64_t decode_tokens;        /* tokens generated */
    uint64_t prefix_cache_queries; /* full prompt blocks looked up */
    uint64_t prefix_cache_hits;    /* of which found cached */
    double busy_s;                 /* time spent in steps */
} ignis_engine_stats;
ignis_status ignis_engine_get_stats(ignis_engine *e, ignis_engine_stats *out);

/* --------------------------------------------------------------- tokenizer
 * SentencePiece (tokenizer.model) and byte-level BPE (tokenizer.json, vocab.json +
 * merges.txt), with exact Hugging Face parity. Id arrays and strings returned through
 * out-pointers are malloc'd: release them with free(). */

typedef struct ignis_tokenizer ignis_tokenizer;

/* dir: a workspace, an HF model directory, or a directory holding only tokenizer files
 * (tokenizer.json wins over tokenizer.model / vocab.json + merges.txt). */
ignis_status ignis_tokenizer_open(const char *dir, ignis_tokenizer **out);
void ignis_tokenizer_free(ignis_tokenizer *t);
/* The tokenizer loaded with a model; NULL when the model has none (synthetic). */
const ignis_tokenizer *ignis_model_tokenizer(const ignis_model *m);

int ignis_tokenizer_vocab_size(const ignis_tokenizer *t);
int32_t ignis_tokenizer_bos(const ignis_tokenizer *t); /* -1 if none */
int32_t ignis_tokenizer_eos(const ignis_tokenizer *t); /* -1 if none */
/* Piece text of an id as stored in the vocabulary (NULL if out of range). */
const char *ignis_token_piece(const ignis_tokenizer *t, int32_t id);
/* Id of an exact piece or special token ("<|im_end|>"), -1 when absent. */
int32_t ignis_token_id(const ignis_tokenizer *t, const char *piece);
bool ignis_token_is_special(const ignis_tokenizer *t, int32_t id);

/* Encodes UTF-8 text (invalid bytes are handled, never a crash). add_special adds BOS/EOS
 * as the tokenizer's config says; parse_special matches special tokens written in text. */
ignis_status ignis_tokenize(const ignis_tokenizer *t, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **ids, int *n_ids);
ignis_status ignis_detokenize(const ignis_tokenizer *t, const int32_t *ids, int n, bool skip_special, char **text,
                              size_t *len);

/* Incremental detokenization for streaming: each push returns the bytes that became
 * final (never half a UTF-8 character; SentencePiece leading-space rules applied). */
typedef struct ignis_detok_stream ignis_detok_stream;
ignis_status ignis_detok_stream_create(const ignis_tokenizer *t, bool skip_special, ignis_detok_stream **out);
/* *piece points into the stream's buffer, valid until the next call. */
ignis_status ignis_detok_stream_push(ignis_detok_stream *s, int32_t id, const char **piece, size_t *len);
ignis_status ignis_detok_stream_flush(ignis_detok_stream *s, const char **piece, size_t *len);
void ignis_detok_stream_free(ignis_detok_stream *s);

/* Copies n bytes of text to out with each byte that does not belong to a valid UTF-8
 * sequence (stray, truncated, overlong, surrogate, > U+10FFFF) and each NUL replaced by
 * U+FFFD, one per byte, so the result is valid UTF-8 for JSON strings and C strings alike.
 * out has room for 3 * n bytes; returns the bytes written (no terminator added). */
size_t ignis_utf8_sanitize(const char *in, size_t n, char *out);

/* ---------------------------------------------------------- chat templates
 * Turns a conversation into the prompt text a chat model was trained on. Three kinds:
 *  - built-ins with LMDeploy's names and layout (system/meta_instruction/eosys/user/eoh/
 *    assistant/eoa/separator + stop words): "internlm2", "llama2", "llama3", "qwen"
 *    (ChatML, default system "You are a helpful assistant."), "chatml", "base" (contents
 *    concatenated, for base models);
 *  - a .json file in LMDeploy's ChatTemplateConfig format: "model_name" picks the
 *    built-in it starts from (else "base"), the other fields override it;
 *  - "hf": the Jinja chat_template of the model's tokenizer_config.json (or
 *    chat_template.jinja / chat_template.json), rendered exactly like transformers'
 *    apply_chat_template; a .jinja file is rendered the same way.
 * Strings returned through out-pointers are malloc'd: release them with free(). */

typedef struct ignis_chat_msg {
    const char *role; /* "system", "user", "assistant" (Jinja templates may accept others) */
    const char *content;
} ignis_chat_msg;

typedef struct ignis_chat_template ignis_chat_template;

/* name_or_file: a built-in name, a model name that maps to one (see below), a .json or
 * .jinja file, or "hf". model_dir_or_null: where "hf" looks (a workspace or HF directory
 * holding tokenizer_config.json); also supplies bos/eos tokens to Jinja templates. */
ignis_status ignis_chat_template_open(const char *name_or_file, const char *model_dir_or_null,
                                      ignis_chat_template **out);
void ignis_chat_template_free(ignis_chat_template *t);
/* "internlm2", "hf", the file's path, ... */
const char *ignis_chat_template_name(const ignis_chat_template *t);

/* Renders n messages; add_generation_prompt appends the assistant's opening so the model
 * answers next. Fails with IGNIS_E_ARG when the template rejects the conversation
 * (e.g. roles that do not alternate) or a role it does not know. */
ignis_status ignis_chat_render(const ignis_chat_template *t, const ignis_chat_msg *msgs, int n,
                               bool add_generation_prompt, char **out);
/* Same with an OpenAI-style JSON array of messages (content, tool_calls, ...) and an
 * optional JSON object of extra template variables ("tools", "enable_thinking", ...). */
ignis_status ignis_chat_render_json(const ignis_chat_template *t, const char *messages_json,
                                    const char *extra_vars_json, bool add_generation_prompt, char **out);
/* Words whose appearance ends the assistant's turn ("<|im_end|>", ...); *words points into t. */
int ignis_chat_stop_words(const ignis_chat_template *t, const char *const **words);
/* True when the rendered text should be encoded with the tokenizer's BOS (built-ins, as
 * LMDeploy does); false for Jinja templates, which write bos_token themselves. */
bool ignis_chat_template_wants_bos(const ignis_chat_template *t);
/* Encodes a rendered conversation as the model sees it: with the tokenizer's BOS when the
 * template wants it, special-token text parsed, and never two BOS in a row (a template that
 * writes BOS itself, as llama3's <|begin_of_text|> prefix, would otherwise get a second). */
ignis_status ignis_chat_encode(const ignis_chat_template *t, const ignis_tokenizer *tok, const char *text,
                               int32_t **ids, int *n);
/* The template's stop words for a request on tok: a word that is one special token becomes
 * a stop id (with special tokens skipped in the output it leaves no text to match), every
 * other word stays a stop word matched in the text. *ids and *words are malloc'd (free
 * both); the words point into t. */
ignis_status ignis_chat_stops(const ignis_chat_template *t, const ignis_tokenizer *tok, int32_t **ids, int *n_ids,
                              const char ***words, int *n_words);

/* The template a model chats with: `override` (name or file, e.g. --chat-template) when
 * given; else the built-in for `model_name` (e.g. --model-name); else a workspace's stored
 * choice; else the model directory's own Jinja template ("hf") when it has one; else the
 * built-in matching the directory's name; else "base". model_path: a workspace, an HF
 * directory or synthetic:SHAPE (no files: override/model_name/"base"). */
ignis_status ignis_chat_template_for_path(const char *model_path, const char *override, const char *model_name,
                                          ignis_chat_template **out);

/* Built-in template name for an LMDeploy-style model name or path ("internlm2-chat-7b",
 * "Meta-Llama-3-8B-Instruct", "Qwen2-7B-Instruct", ...); NULL when none matches. */
const char *ignis_chat_template_for_model(const char *model_name);

/* `ignis list`: the i-th built-in chat template name (i from 0), or the i-th LMDeploy
 * model name it knows with *tmpl set to the template that name picks; NULL past the end. */
const char *ignis_chat_builtin_name(int i);
const char *ignis_chat_model_name(int i, const char **tmpl);

/* ------------------------------------------------------------------ server
 * An OpenAI-compatible HTTP server over the request API (what `ignis serve api_server`
 * runs): /v1/models, /v1/completions, /v1/chat/completions, /v1/chat/interactive,
 * /v1/encode, /health, /metrics. engine/server/README.md documents the endpoints, their
 * parameters, errors and metrics. The server listens from ignis_server_start on; until a
 * model is attached every endpoint but /health and /metrics answers 503 (/health too). */

typedef struct ignis_server ignis_server;

typedef struct ignis_server_opts {
    const char *host;            /* address to bind (IPv4 or IPv6 literal); NULL: "0.0.0.0" */
    int port;                    /* 0: a free port, read back with ignis_server_port */
    const char *model_name;      /* served name (/v1/models, "model" checks); NULL: model_path's last part */
    const char *model_path;      /* where the model came from: finds its chat template */
    const char *chat_template;   /* NULL: the model's; else a name or a file (ignis_chat_template_for_path) */
    const char *const *api_keys; /* n_api_keys > 0: /v1/ requests need "Authorization: Bearer KEY" */
    int n_api_keys;
    size_t max_body_bytes; /* larger request bodies get 413; 0: 16 MiB */
    int max_waiting;       /* requests queued beyond this get 503 + Retry-After; 0: no limit */
    int max_connections;   /* concurrent connections; 0: 16384 (needs as many file descriptors) */
    int http_threads;      /* threads serving HTTP; 0: 1 */
    bool access_log;       /* one line per request through the log sink, level INFO */
} ignis_server_opts;
void ignis_server_opts_init(ignis_server_opts *o);

/* Binds and starts serving (503 until ignis_server_attach). Strings in opts are copied. */
ignis_status ignis_server_start(const ignis_server_opts *opts, ignis_server **out);
/* Creates the engine over m (engine opts as for ignis_engine_create; NULL: the model's)
 * and starts answering requests. m must outlive the server. */
ignis_status ignis_server_attach(ignis_server *s, ignis_model *m, const ignis_engine_opts *eo);
/* The port bound (the chosen one when opts.port was 0). */
int ignis_server_port(const ignis_server *s);
/* A snapshot of the attached engine's statistics (IGNIS_E_STATE before attach). */
ignis_status ignis_server_stats(ignis_server *s, ignis_engine_stats *out);
/* Graceful stop: stops accepting connections, ends in-flight requests (streams get their
 * finish_reason "abort" and [DONE]), waits up to drain_ms for responses to go out, then
 * frees everything (the engine included; the model stays the caller's). NULL is a no-op. */
void ignis_server_stop(ignis_server *s, int drain_ms);

/* ---------------------------------------------------------------- profiler
 * Where the time of a measured window went (`ignis bench --kernels`, `--profile-window`,
 * energy columns): CUPTI kernel/memcpy/memset timings aggregated per kernel and per
 * engine step, NVML telemetry (power, energy, clocks, throttling) sampled on a thread,
 * cudaProfilerStart/Stop around the window for Nsight, and each request's TTFT split
 * into queueing, its own prefill and prefill steps shared with other requests.
 *
 * Every part degrades to "not available" with a note instead of failing: without a CUDA
 * device (or built without CUDA), kernel figures are empty and summary.kernels_note says
 * why; without libnvidia-ml.so.1, telemetry is empty and telemetry_note says why. Figures
 * that could not be measured are NaN (write them as NA).
 *
 * Order: create (before the first CUDA context when kernels is on: CUPTI sizes its buffers
 * then; i.e. before ignis_model_open), attach to an engine (before submitting), start,
 * run the workload, stop, read the results; start/stop may repeat (each start clears the
 * previous window's results). One profiler per process when kernels is on (CUPTI is
 * process-wide). */

typedef struct ignis_profiler ignis_profiler;

typedef struct ignis_profiler_opts {
    bool kernels;           /* CUPTI activity records over the window */
    bool profile_window;    /* cudaProfilerStart/Stop around the window (nsys/ncu capture range) */
    int telemetry_ms;       /* NVML sampling period in ms; 0: no telemetry (default 100) */
    int device;             /* CUDA device ordinal the engine runs on */
    const char *nvml_lib;   /* NULL: libnvidia-ml.so.1 (a path for tests) */
    double peak_gbps;       /* 0: measured at the first start with kernels on (D2D copy, read + write) */
    double peak_tflops;     /* 0: measured likewise (fp16 cuBLAS GEMM 8192^3) */
    size_t cupti_buffer_kb; /* 0: 8192; size of each CUPTI activity buffer */
} ignis_profiler_opts;
void ignis_profiler_opts_init(ignis_profiler_opts *o);

ignis_status ignis_profiler_create(const ignis_profiler_opts *o, ignis_profiler **out);
/* Stops a running window and detaches from the engine first. */
void ignis_profiler_destroy(ignis_profiler *p);
/* Receives the engine's step events (per-step profile, TTFT breakdown). The engine must
 * outlive the profiler or be detached with ignis_profiler_attach(p, NULL). */
ignis_status ignis_profiler_attach(ignis_profiler *p, ignis_engine *e);
ignis_status ignis_profiler_start(ignis_profiler *p);
/* Ends the window: disables collection, flushes CUPTI, aggregates. */
ignis_status ignis_profiler_stop(ignis_profiler *p);

typedef struct ignis_profile_summary {
    bool kernels_available; /* CUPTI records were collected */
    char kernels_note[160]; /* why not, or "" */
    bool telemetry_available;
    char telemetry_note[160];
    double window_s;      /* host wall time between start and stop */
    double gpu_busy_s;    /* union of kernel, memcpy and memset intervals */
    double gpu_busy_frac; /* gpu_busy_s / window_s */
    double kernel_s;      /* sum of kernel durations (CUPTI start to end) */
    double kernel_excl_s; /* the time kernels add to gpu_busy_s: overlap with earlier activity
                             (programmatic dependent launch prologues) counted once */
    double memcpy_s, memset_s;
    uint64_t n_kernel_records;
    uint64_t records_dropped; /* CUPTI buffer overflows: figures are then low */
    double cupti_overhead_s;  /* CUPTI's own OVERHEAD records */
    double peak_gbps, peak_tflops;
    /* engine steps inside the window */
    uint64_t steps;
    uint64_t prefill_tokens, decode_tokens;
    double decode_step_bw_frac; /* decode-only steps: declared bytes / GPU-busy / peak_gbps */
    /* NVML */
    int telemetry_samples;
    double energy_j;      /* energy counter difference over the window (or integrated power) */
    double mean_w, max_w; /* board power */
    double power_limit_w; /* enforced limit */
    double mean_sm_mhz, mean_mem_mhz, mean_gpu_util_pct, max_mem_used_mb, max_temp_c;
    bool throttled;            /* a reason other than idle / application clocks was active */
    uint64_t throttle_reasons; /* OR of NVML clocks-event reasons seen */
    double tokens_per_joule;   /* (prefill + decode tokens) / energy_j */
} ignis_profile_summary;
ignis_status ignis_profiler_summary(const ignis_profiler *p, ignis_profile_summary *out);

/* One row per kernel family (ignis kernels by their function, cuBLAS GEMMs together) or,
 * for kernels of no known family, per kernel name. Sorted by total time, largest first. */
typedef struct ignis_kernel_row {
    const char *name;    /* family ("gemv_fused", "cublas_gemm", ...) or the kernel's name */
    const char *example; /* one full (mangled) kernel name of the row */
    uint64_t calls;
    double total_ms, mean_us, min_us, max_us; /* the kernels' own durations */
    double excl_ms;                           /* what they add to the GPU-busy time (see kernel_excl_s) */
    double share;                             /* excl_ms over all kernels' excl_ms, 0..1 */
    double bytes, flops;                      /* declared by the engine for these launches (0: none) */
    double gbps, tflops;                      /* achieved: bytes, flops over excl_ms (as back-to-back launches
                                                 measure it); NaN without declarations */
    double pct_peak_bw, pct_peak_flops;       /* of the measured peaks; NaN when unknown */
} ignis_kernel_row;
/* *rows is valid until the next start or destroy. */
int ignis_profiler_kernels(const ignis_profiler *p, const ignis_kernel_row **rows);

typedef struct ignis_step_row {
    uint64_t step;       /* engine step number */
    int batch_size;      /* sequences */
    int tokens;          /* tokens computed */
    int prefill_tokens;  /* of which prompt/recompute tokens */
    double t_s;          /* host start, seconds from the window's start */
    double host_s;       /* host time of the step (schedule excluded: forward call to return) */
    double host_gap_s;   /* host time since the previous step ended (NaN for the first) */
    double gpu_busy_s;   /* union of this step's kernel/memcpy/memset intervals (NaN without CUPTI) */
    double launch_gap_s; /* idle GPU time between this step's first start and last end */
    int n_kernels;
    double bytes;             /* declared bytes of the step's kernels */
    double gbps, pct_peak_bw; /* bytes / gpu_busy_s; NaN without CUPTI */
} ignis_step_row;
int ignis_profiler_steps(const ignis_profiler *p, const ignis_step_row **rows);

typedef struct ignis_telemetry_sample {
    double t_s; /* seconds from the window's start */
    double power_w;
    double energy_j; /* counter since the window's start; NaN if unsupported */
    double sm_mhz, mem_mhz;
    double gpu_util_pct, mem_util_pct;
    double mem_used_mb;
    double temp_c;
    uint64_t throttle_reasons; /* NVML clocks-event reason bits */
} ignis_telemetry_sample;
int ignis_profiler_telemetry(const ignis_profiler *p, const ignis_telemetry_sample **rows);

/* TTFT of one finished (or first-token-delivered) request, split: queue_s (submit ->
 * first admission), prefill_own_s (its share of the steps that computed its prompt, by
 * token count), prefill_shared_s (the rest of those steps: other requests' tokens in the
 * same steps), other_s (ttft - the three: steps without its tokens, host time). Needs the
 * profiler attached from the request's submission on; NaN parts otherwise. Reading a
 * request forgets it, so read each request once, before releasing it. */
typedef struct ignis_ttft_breakdown {
    double ttft_s, queue_s, prefill_own_s, prefill_shared_s, other_s;
    int prefill_steps;
} ignis_ttft_breakdown;
ignis_status ignis_profiler_ttft(ignis_profiler *p, ignis_request *r, ignis_ttft_breakdown *out);

/* The process-wide capture range for Nsight (what profile_window does at start/stop):
 * `nsys profile --capture-range=cudaProfilerApi` and `ncu --profile-from-start off`
 * record only between these. IGNIS_E_UNSUPPORTED without CUDA. */
ignis_status ignis_profile_range_begin(void);
ignis_status ignis_profile_range_end(void);

#ifdef __cplusplus
}
#endif
#endif /* IGNIS_H */
