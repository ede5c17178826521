/* struct ignis_model: a loaded model — its description, its backend, its tokenizer and
 * the KV block pool — shared by the direct sequence path and the scheduler. */
#ifndef IG_MODEL_HANDLE_H
#define IG_MODEL_HANDLE_H

#include "backend/backend.h"
#include "ignis.h"
#include "model/model.h"
#include "runtime/kv_pool.h"

struct ignis_model {
    ig_model_desc desc;
    ig_backend *backend;
    ignis_tokenizer *tok; /* NULL when the model has no tokenizer files */
    ig_kv_pool kv;        /* the backend's blocks */
    ignis_engine_opts opts;
    char chat_template[256];
    char backend_name[16];
};

/* The effective engine knobs (workspace values with the open-time overrides applied). */
static inline const ig_engine_cfg *ig_model_engine(const ignis_model *m) { return &m->desc.engine; }

#endif
