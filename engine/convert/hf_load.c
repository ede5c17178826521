#include "convert/hf_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/hf_weights.h"
#include "core/error.h"

ignis_status ig_hf_open(const char *hf_dir, ig_dtype dtype_or_auto, int tp, ig_model_desc *d)
{
    memset(d, 0, sizeof *d);
    if (tp < 1) return ig_err(IGNIS_E_ARG, "tp must be >= 1 (got %d)", tp);
    ig_hf_ckpt ck;
    ig_canon *plan = NULL;
    int n = 0;
    ig_dtype md;
    ignis_status st = ig_hf_ckpt_open(&ck, hf_dir);
    if (st == IGNIS_OK) st = ig_hf_plan(&ck, (int)dtype_or_auto, tp, &plan, &n, &md);
    if (st == IGNIS_OK) st = ig_model_desc_init(d, &ck.cfg, tp);
    if (st == IGNIS_OK) {
        d->source = IG_SRC_HF;
        d->weight_dtype = md;
        snprintf(d->path, sizeof d->path, "%s", hf_dir);
        snprintf(d->tokenizer_dir, sizeof d->tokenizer_dir, "%s", hf_dir);
    }
    for (int i = 0; st == IGNIS_OK && i < n; i++) {
        const ig_canon *t = &plan[i];
        ig_tensor *slot = ig_desc_slot(d, t->rank, t->layer, t->role);
        slot->dtype = t->dtype;
        slot->ndim = t->ndim;
        slot->shape[0] = t->shape[0];
        slot->shape[1] = t->shape[1];
        if (t->rank > 0 && ig_canon_rank_invariant(t->role)) {
            slot->data = ig_desc_slot(d, 0, t->layer, t->role)->data;
            continue;
        }
        void *buf = ig_model_desc_alloc(d, ig_canon_bytes(t));
        if (!buf) {
            st = IGNIS_E_NOMEM;
            break;
        }
        st = ig_hf_produce(&ck, tp, t, buf);
        slot->data = buf;
    }
    if (st == IGNIS_OK) st = ig_model_desc_validate(d);
    free(plan);
    ig_hf_ckpt_close(&ck);
    if (st != IGNIS_OK) ig_model_desc_free(d);
    return st;
}
